"""The Vault service's app factory."""
from __future__ import annotations

from flask import Flask
from werkzeug.routing import PathConverter

from common import auth, config, crypto, hsm, ratelimit
from common.app_factory import add_converter, create_base_app
from vault_service import names
from vault_service.roles.views import blp as roles_blp
from vault_service.schemas_catalog.views import blp as schemas_blp
from vault_service.secrets import service as secrets_service
from vault_service.secrets.service import URL_PREFIX
from vault_service.secrets.views import personal, search, shared
from vault_service.status.views import blp as status_blp
from vault_service.versioned.views import blp as versioned_blp
from vault_service.kv import views as kv
from vault_service.kv import openapi as kv_openapi
from vault_service.acl.cache import PolicyCache
from vault_service.grants.cache import GrantCache
from vault_service.grants.views import blp as grants_blp


# What the contract allows as a secret name or path (vault_service.names checks it). The example
# shows that a name in a path may hold '/' (sent as is or as %2F): without one, Schemathesis takes
# a '/' in a path parameter for a misrouted URL and drops such values.
NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": names.MAX_NAME_LENGTH,
               "pattern": names.PATTERN, "example": "team/db/password"}


def create_app(settings: dict | None = None) -> Flask:
    """The Vault app; `settings` override the environment (tests). Raises ConfigError on bad settings."""
    app, api = create_base_app(
        __name__, service="vault", title="Vault", url_prefix=URL_PREFIX,
        settings=config.VAULT, overrides=settings, migrations_package="vault_service",
    )
    app.extensions[auth.LEARN_HOOK] = secrets_service.learn_roles_of  # GET /roles lists the roles tokens carried
    app.extensions["keyring"] = keyring_from(app.config)
    app.extensions["acl_cache"] = PolicyCache(app.extensions["db"])  # the callers' compiled ACL policies
    # The workflow engine's live grants count as the caller's roles (the Secrets Manager sends them).
    app.extensions["grant_cache"] = GrantCache(app.extensions["db"])
    app.extensions[auth.ROLES_HOOK] = app.extensions["grant_cache"].with_grants
    add_converter(app, api, "secret_name", PathConverter, NAME_SCHEMA)
    for blueprint in (status_blp, shared, personal, search, versioned_blp, schemas_blp, roles_blp, grants_blp):
        api.register_blueprint(blueprint, url_prefix=URL_PREFIX)
    ratelimit.exempt(app, f"{status_blp.name}.Status")  # no token needed
    kv.install(app)  # HashiCorp Vault's KV v2 API at /v1/
    kv_openapi.document(api, app.config["VAULT_KV_MOUNT"], NAME_SCHEMA)  # ... in the docs too
    return app


def keyring_from(settings) -> crypto.Keyring:
    """The configured master keys: an HSM's (PKCS#11), the environment's, or both while data keys
    move from one to the other (`vault-admin rewrap`); the HSM's first key is active unless
    VAULT_ACTIVE_MASTER_KEY names another. Without either (development mode only: config refuses
    it otherwise), a generated development keyring under DATA_DIR."""
    providers, active = [], settings["VAULT_ACTIVE_MASTER_KEY"]
    hsm_keys = hsm.from_settings(settings)
    if hsm_keys:
        providers.append(hsm_keys)
    if settings["VAULT_MASTER_KEYS"]:
        providers.append(crypto.environment_keys(settings["VAULT_MASTER_KEYS"]))
    if not providers:
        keys, active = crypto.development_keys(settings["DATA_DIR"])
        providers.append(keys)
    return crypto.Keyring(providers, active or providers[0].key_ids[0],
                          cache_size=settings.get("VAULT_DATA_KEY_CACHE_SIZE", crypto.UNWRAPPED_KEYS_CACHED))
