"""`gunicorn vault_service.wsgi:app`: bad settings stop the start with one line each, no traceback."""
from common import config
from vault_service.app import create_app

with config.exit_on_error("vault", code=config.GUNICORN_APP_LOAD_ERROR):
    app = create_app()
