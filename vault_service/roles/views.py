"""GET /roles (ours): `{count, items: [{id, name}]}` sorted by name, with offset, limit and
keywords (each a substring of the id or the name, case-insensitive; all must match)."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, pre_load, validate

from common.auth import scoped
from common.schemas import MAX_PAGE, Integer, blank_is_unset
from common.web import Blueprint, database
from vault_service.secrets import store

blp = Blueprint("vault_roles", __name__, description="Roles")


class RoleArgs(Schema):
    offset = Integer(load_default=0, validate=validate.Range(min=0))
    limit = Integer(load_default=MAX_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    keywords = fields.String(load_default="", validate=validate.Length(max=1024),
                             metadata={"description": "comma or space separated; each a substring of the id or name"})

    @pre_load
    def _drop_unset(self, data, **kwargs):
        return blank_is_unset(data)


class KnownRole(Schema):
    id = fields.String()
    name = fields.String()


class RoleList(Schema):
    count = fields.Integer()
    items = fields.List(fields.Nested(KnownRole))


@blp.route("/roles")
class Roles(MethodView):
    @scoped("user", "admin", "vaultManage")
    @blp.arguments(RoleArgs, location="query")
    @blp.response(200, RoleList)
    def get(self, args):
        """List the roles the Vault knows (learnt from tokens), by name"""
        keywords = [k.lower() for k in args["keywords"].replace(",", " ").split() if k]
        count, rows = store.known_roles(database(), keywords=keywords, offset=args["offset"], limit=args["limit"])
        return {"count": count, "items": rows}
