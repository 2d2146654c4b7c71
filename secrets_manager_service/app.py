"""The Secrets Manager service's app factory."""
from __future__ import annotations

from flask import Flask
from werkzeug.routing import UnicodeConverter

from common import auth, config, ratelimit
from common.app_factory import add_converter, create_base_app
from secrets_manager_service import names, vault_client
from secrets_manager_service.account_secrets.views import blp as account_secrets_blp
from secrets_manager_service.hosts.views import blp as hosts_blp
from secrets_manager_service.policies.views import blp as policies_blp
from secrets_manager_service.script_templates.views import blp as templates_blp
from secrets_manager_service.status.views import blp as status_blp
from secrets_manager_service.target_domains.routes import blp as target_domains_blp
from secrets_manager_service.workflows import grants
from secrets_manager_service.workflows import service as workflow_service
from secrets_manager_service.workflows.views import blp as workflows_blp

URL_PREFIX = "/secrets-manager/api/v1"
WORKFLOW_PREFIX = "/workflow-engine/api/v1"
# PrivX clients look for the account-secret and checkout routes under the authorizer's prefix.
AUTHORIZER_PREFIX = "/authorizer/api/v1"

def create_app(settings: dict | None = None) -> Flask:
    """The Secrets Manager app; `settings` override the environment (tests). Raises ConfigError on bad settings."""
    app, api = create_base_app(
        __name__, service="secrets-manager", title="Secrets Manager", url_prefix=URL_PREFIX,
        settings=config.SECRETS_MANAGER, overrides=settings, migrations_package="secrets_manager_service",
    )
    app.extensions[auth.LEARN_HOOK] = workflow_service.learn_from_token  # approvers' names and mail for the workflow engine
    # Account names in URLs, documented by their rule (a bad one still reaches the view for its 400).
    add_converter(app, api, "account", UnicodeConverter, names.ACCOUNT_SCHEMA)
    app.extensions["vault_client"] = vault_client.from_settings(app.config)
    # Account access counts the workflow engine's live grants beside the token's roles.
    app.extensions[auth.GRANTS_HOOK] = grants.hook(app.extensions["db"])
    for blueprint in (status_blp, policies_blp, templates_blp, hosts_blp, account_secrets_blp):
        api.register_blueprint(blueprint, url_prefix=URL_PREFIX)
    api.register_blueprint(target_domains_blp, url_prefix=URL_PREFIX)
    api.register_blueprint(account_secrets_blp, url_prefix=AUTHORIZER_PREFIX, name="sm_authorizer_secrets",
                           tag="Account secrets and checkouts (PrivX authorizer paths)")
    api.register_blueprint(workflows_blp, url_prefix=WORKFLOW_PREFIX)
    ratelimit.exempt(app, f"{status_blp.name}.Status", f"{workflows_blp.name}.Status")  # no token needed
    return app
