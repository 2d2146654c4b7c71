"""Routes of the versioned API (`/secret/...`), after HashiCorp's KV v2."""
from __future__ import annotations

from flask.views import MethodView

from common.auth import current_principal, require_scopes, scoped
from common.web import Blueprint, empty
from vault_service.versioned import schemas, service
from vault_service.versioned.service import DATA, MANAGE

blp = Blueprint("vault_versioned", __name__, description="Versioned secrets")


@blp.route("/secret/data/<secret_name:path>")
class SecretData(MethodView):
    @scoped(*DATA)
    @blp.arguments(schemas.VersionArgs, location="query")
    @blp.response(200, schemas.ReadResponse)
    def get(self, args, path):
        """Read the newest live version, or the version given"""
        principal = current_principal()
        return service.read(principal, path, args.get("version"))

    @scoped(*DATA)
    @blp.arguments(schemas.WriteBody)
    @blp.response(200, schemas.VersionMeta)
    def post(self, body, path):
        """Write a new version (check-and-set with options.cas)"""
        principal = current_principal()
        return service.write(principal, path, body["data"], body["options"].get("cas"))

    @blp.response(200)
    def delete(self, path):
        """Soft-delete the newest version"""
        principal = require_scopes(*MANAGE)
        service.delete_latest(principal, path)
        return empty()


def _versions_route(rule: str, summary: str):
    """POST {versions: [...]} routes differ only in what they do to each version."""
    _, scopes = service.VERSION_ACTIONS[rule]

    @scoped(*scopes)
    @blp.arguments(schemas.VersionsBody)
    @blp.response(200)
    def post(self, body, path):
        principal = current_principal()
        service.change_versions(principal, path, body["versions"], rule)
        return empty()

    post.__doc__ = summary
    view = type(f"Secret{rule.capitalize()}", (MethodView,), {"post": post})
    blp.route(f"/secret/{rule}/<secret_name:path>")(view)


_versions_route("delete", "Soft-delete versions")
_versions_route("undelete", "Restore soft-deleted versions")
_versions_route("destroy", "Destroy versions for good")


@blp.route("/secret/metadata/<secret_name:path>")
class SecretMetadata(MethodView):
    @blp.response(200, schemas.MetadataResponse)
    def get(self, path):
        """Read a secret's settings and version list"""
        principal = require_scopes(*MANAGE)
        return service.metadata(principal, path)

    @scoped(*MANAGE)
    @blp.arguments(schemas.MetadataBody)
    @blp.response(200, schemas.MetadataResponse)
    def post(self, body, path):
        """Change max_versions, delete_version_after, cas_required, custom_metadata"""
        principal = current_principal()
        return service.set_metadata(principal, path, body)

    @blp.response(200)
    def delete(self, path):
        """Delete the secret and every version"""
        principal = require_scopes(*MANAGE)
        service.delete_metadata(principal, path)
        return empty()


@blp.route("/secret/keys", defaults={"path": None}, endpoint="SecretKeysRoot")
@blp.route("/secret/keys/<secret_name:path>")
class SecretKeys(MethodView):
    @blp.response(200, schemas.KeysResponse)
    def get(self, path):
        """List the direct children of a path"""
        principal = require_scopes(*MANAGE)
        return service.keys(principal, path)


@blp.route("/secret/versions/<secret_name:path>")
class SecretVersions(MethodView):
    @scoped(*MANAGE)
    @blp.arguments(schemas.VersionPageArgs, location="query")
    @blp.response(200, schemas.VersionPage)
    def get(self, args, path):
        """List versions newest first, a page at a time"""
        principal = current_principal()
        return service.list_versions(principal, path, args["page_size"], args.get("page_token"))
