"""WSGI entry point: ``gunicorn common.devtools.issuer.wsgi:app`` (settings from the environment)."""
from common import config

from .app import create_issuer_app

with config.exit_on_error("dev-token-issuer", code=config.GUNICORN_APP_LOAD_ERROR):
    app = create_issuer_app()
