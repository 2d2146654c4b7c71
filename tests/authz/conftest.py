"""The Secrets Manager's fixtures (a real issuer and a real Vault under gunicorn, the app on its own
database), shared with tests/secrets_manager rather than written twice."""
from tests.secrets_manager.conftest import (  # noqa: F401
    issuer_url, sm_app, sm_client_secret, sm_config, sm_db, sm_vault_db, token_url, vault_url,
)
