"""Routes of the versioned API (`/secret/...`), after HashiCorp's KV v2."""
from __future__ import annotations


from common import errors
from common.auth import current_principal
from common.web import Blueprint, MethodView, empty
from vault_service.acl import access as acl
from vault_service.acl.access import scoped
from vault_service.versioned import schemas, service

blp = Blueprint("vault_versioned", __name__, description="Versioned secrets")


def _allowed(operation: acl.Operation, path: str):
    """The caller, if its scopes or else its ACL policies allow `operation` on `path`."""
    principal = current_principal()
    acl.authorize(principal, operation, path)
    return principal


@blp.route("/secret/data/<secret_name:path>")
class SecretData(MethodView):
    @scoped(acl.READ_DATA)
    @blp.arguments(schemas.VersionArgs, location="query")
    @blp.response(200, schemas.ReadResponse)
    def get(self, args, path):
        """Read the newest live version, or the version given"""
        principal = current_principal()
        return service.read(principal, path, args.get("version"))

    @scoped(acl.WRITE_DATA)
    @blp.arguments(schemas.WriteBody)
    @blp.response(200, schemas.VersionMeta)
    def post(self, body, path):
        """Write a new version (check-and-set with options.cas), or generate a password into one"""
        principal = current_principal()
        options = body["options"]
        return service.write(principal, path, body.get("data", {}), options.get("cas"),
                             description=options["description"], spec=body.get("password_payload_specification"))

    @blp.response(200)
    def delete(self, path):
        """Soft-delete the newest version"""
        principal = _allowed(acl.DELETE_DATA, path)
        service.delete_latest(principal, path)
        return empty()


def _versions_route(rule: str, summary: str, body_schema=schemas.VersionsBody):
    """POST {versions: [...], ...options} routes differ only in what they do to each version."""
    @scoped(acl.VERSION_OPERATIONS[rule])
    @blp.arguments(body_schema)
    @blp.response(200)
    def post(self, body, path):
        principal = current_principal()
        options = {key: value for key, value in body.items() if key != "versions"}
        service.change_versions(principal, path, body["versions"], rule, **options)
        return empty()

    post.__doc__ = summary
    view = type(f"Secret{rule.title().replace('-', '')}", (MethodView,), {"post": post})
    blp.route(f"/secret/{rule}/<secret_name:path>")(view)


_versions_route("delete", "Soft-delete versions")
_versions_route("undelete", "Restore soft-deleted versions")
_versions_route("destroy", "Destroy versions for good")
_versions_route("schedule-destroy", "Schedule versions for destruction after a pending period (unreadable at once)",
                schemas.ScheduleDestroyBody)
_versions_route("cancel-destroy", "Cancel scheduled destructions: the versions return to their state before")


@blp.route("/secret/metadata/<secret_name:path>")
class SecretMetadata(MethodView):
    @blp.response(200, schemas.MetadataResponse)
    def get(self, path):
        """Read a secret's settings and version list"""
        principal = _allowed(acl.READ_METADATA, path)
        return service.metadata(principal, path)

    @scoped(acl.WRITE_METADATA)
    @blp.arguments(schemas.MetadataBody)
    @blp.response(200, schemas.MetadataResponse)
    def post(self, body, path):
        """Change max_versions, delete_version_after, cas_required, custom_metadata"""
        principal = current_principal()
        return service.set_metadata(principal, path, body)

    @blp.response(200)
    def delete(self, path):
        """Delete the secret and every version"""
        principal = _allowed(acl.DELETE_METADATA, path)
        service.delete_metadata(principal, path)
        return empty()


@blp.route("/secret/keys", defaults={"path": None}, endpoint="SecretKeysRoot")
@blp.route("/secret/keys/<secret_name:path>")
class SecretKeys(MethodView):
    @blp.response(200, schemas.KeysResponse)
    def get(self, path):
        """List the direct children of a path"""
        principal = current_principal()
        policy = acl.authorize(principal, acl.LIST_METADATA, path or "")
        keys = acl.visible_keys(policy, path or "", service.keys(principal, path)["keys"])
        if not keys:
            raise errors.NotFound("no secrets under this path")
        return {"keys": keys}


@blp.route("/secret/versions/<secret_name:path>")
class SecretVersions(MethodView):
    @scoped(acl.LIST_VERSIONS)
    @blp.arguments(schemas.VersionPageArgs, location="query")
    @blp.response(200, schemas.VersionPage)
    def get(self, args, path):
        """List versions newest first, a page at a time"""
        principal = current_principal()
        return service.list_versions(principal, path, args["page_size"], args.get("page_token"))


@blp.route("/secret/live/<secret_name:path>")
class SecretLiveVersions(MethodView):
    @scoped(acl.READ_LIVE_DATA)
    @blp.response(200, schemas.LiveVersions)
    def get(self, path):
        """Read every live version's data at once, newest first (the service scope only)"""
        principal = current_principal()
        return service.read_live(principal, path)
