"""Routes of the v1 secret API: shared, personal, metadata and search."""
from __future__ import annotations

import uuid

from flask import request

from common import errors
from common.auth import current_principal, scoped
from common.schemas import ErrorEnvelope, merged_paging, split_keywords
from common.web import Blueprint, MethodView, created, empty
from vault_service.secrets import schemas, service
from vault_service.secrets.store import SHARED

shared = Blueprint("vault_secrets", __name__, description="Shared secrets")
personal = Blueprint("vault_personal", __name__, description="Personal secrets")
search = Blueprint("vault_search", __name__, description="Secret search")


@shared.route("/secrets")
class Secrets(MethodView):
    @scoped("user", "admin", "vaultManage")
    @shared.arguments(schemas.SecretPageArgs, location="query")
    @shared.response(200, schemas.SecretList)
    def get(self, args):
        """List the shared secrets the caller can see"""
        principal = current_principal()
        return service.list_page(principal, owners=None, shared=True, args=args, with_data=True)

    @scoped("admin", "vaultAdd", "vaultManage")
    @shared.arguments(schemas.SecretCreate)
    @shared.response(201, schemas.NameOnly)
    @shared.alt_response(409, schema=ErrorEnvelope)
    def post(self, body):
        """Create a shared secret"""
        principal = current_principal()
        name = service.create(principal, SHARED, body)
        return created(service.secret_location(SHARED, name), {"name": name})


@shared.route("/secrets/<secret_name:name>")
class Secret(MethodView):
    @scoped("user", "admin")
    @shared.response(200, schemas.Secret)
    def get(self, name):
        """Read a shared secret with its data"""
        principal = current_principal()
        return service.read(principal, SHARED, name)

    @scoped("user", "admin", "vaultManage")
    @shared.arguments(schemas.SecretUpdate)
    @shared.response(200)
    def put(self, body, name):
        """Update a shared secret's data (a new version) or roles"""
        principal = current_principal()
        service.update(principal, SHARED, name, body)
        return empty()

    @scoped("admin", "vaultManage", "user")
    @shared.response(200)
    def delete(self, name):
        """Delete a shared secret and all its versions"""
        principal = current_principal()
        service.delete(principal, SHARED, name)
        return empty()


@shared.route("/metadata/secrets/<secret_name:name>")
class SecretMetadata(MethodView):
    @scoped("user", "admin", "vaultManage")
    @shared.response(200, schemas.Secret)
    def get(self, name):
        """Read a shared secret without its data"""
        principal = current_principal()
        return service.metadata(principal, SHARED, name)


@personal.route("/user/<uuid_text:user_id>/secrets")
class PersonalSecrets(MethodView):
    @scoped("vaultManage", owner="user_id")
    @personal.arguments(schemas.SecretPageArgs, location="query")
    @personal.response(200, schemas.SecretList)
    def get(self, args, user_id):
        """List a user's personal secrets"""
        principal = current_principal()
        return service.list_page(principal, owners=[_owner(user_id)], shared=False, args=args, with_data=True)

    @scoped("admin", "vaultAdd", "vaultManage", owner="user_id")
    @personal.arguments(schemas.SecretCreate)
    @personal.response(201, schemas.NameOnly)
    @personal.alt_response(409, schema=ErrorEnvelope)
    def post(self, body, user_id):
        """Create a personal secret"""
        principal = current_principal()
        name = service.create(principal, _owner(user_id), body)
        return created(service.secret_location(user_id, name), {"name": name})


@personal.route("/user/<uuid_text:user_id>/secrets/<secret_name:name>")
class PersonalSecret(MethodView):
    @scoped("admin", owner="user_id")
    @personal.response(200, schemas.Secret)
    def get(self, user_id, name):
        """Read a personal secret (the owner gets data, an admin metadata only)"""
        principal = current_principal()
        if principal.sub == user_id:
            return service.read(principal, user_id, name)
        return service.metadata(principal, user_id, name)

    @scoped(owner="user_id")
    @personal.arguments(schemas.SecretUpdate)
    @personal.response(200)
    def put(self, body, user_id, name):
        """Update a personal secret (owner only)"""
        principal = current_principal()
        service.update(principal, user_id, name, body)
        return empty()

    @scoped("admin", "vaultManage", owner="user_id")
    @personal.response(200)
    def delete(self, user_id, name):
        """Delete a personal secret"""
        principal = current_principal()
        service.delete(principal, user_id, name)
        return empty()


@personal.route("/user/<uuid_text:user_id>/metadata/secrets/<secret_name:name>")
class PersonalSecretMetadata(MethodView):
    @scoped("admin", "vaultManage", owner="user_id")
    @personal.response(200, schemas.Secret)
    def get(self, user_id, name):
        """Read a personal secret without its data"""
        principal = current_principal()
        return service.metadata(principal, user_id, name)


@search.route("/search/secrets")
class SearchSecrets(MethodView):
    @scoped("user", "admin", "vaultManage")
    @search.arguments(schemas.SearchBody)
    @search.response(200, schemas.SecretList)
    def post(self, body):
        """Search secrets by name keywords, owner and access"""
        principal = current_principal()
        args = merged_paging(request.args.to_dict(), body, schemas.SecretPageArgs)
        keywords = split_keywords(body["keywords"])
        filter_ = body["filter"]
        return service.list_page(
            principal, owners=body["owner_id"] or None,
            shared={"personal": False, "shared": True}.get(filter_),
            args=args, filter=filter_, keywords=keywords, with_data=False,
        )


def _owner(user_id: str) -> str:
    """A user id of a path that can own secrets: a UUID, as token subjects are (the contract)."""
    try:
        uuid.UUID(user_id)
    except ValueError:
        raise errors.ApiError("user_id must be a UUID", code="VALUE_INCORRECT_FORMAT",
                              property="user_id").with_status(400) from None
    return user_id
