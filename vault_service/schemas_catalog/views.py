"""GET /schemas: JSON Schemas of common secret shapes, for clients building forms."""
from __future__ import annotations

from flask.views import MethodView

from common.auth import scoped
from common.web import Blueprint

blp = Blueprint("vault_schemas", __name__, description="Secret shapes")


def _object(properties: dict, required: list[str]) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": True,
    }


_TEXT = {"type": "string"}
_SECRET_TEXT = {"type": "string", "writeOnly": True}

SECRET_SHAPES = {
    "password": _object({"username": _TEXT, "password": _SECRET_TEXT, "url": {"type": "string", "format": "uri"}},
                        ["password"]),
    "ssh_key": _object({"username": _TEXT, "private_key": _SECRET_TEXT, "public_key": _TEXT, "passphrase": _SECRET_TEXT},
                       ["private_key"]),
    "api_key": _object({"key_id": _TEXT, "api_key": _SECRET_TEXT, "endpoint": {"type": "string", "format": "uri"}},
                       ["api_key"]),
    "certificate": _object({"certificate": _TEXT, "private_key": _SECRET_TEXT, "chain": {"type": "array", "items": _TEXT}},
                           ["certificate", "private_key"]),
    "database_credentials": _object({"host": _TEXT, "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                     "database": _TEXT, "username": _TEXT, "password": _SECRET_TEXT},
                                    ["username", "password"]),
    "note": _object({"text": _SECRET_TEXT}, ["text"]),
}


@blp.route("/schemas")
class Schemas(MethodView):
    @scoped("user", "admin")
    @blp.response(200)
    def get(self):
        """JSON Schemas of common secret shapes, keyed by name"""
        return SECRET_SHAPES
