"""WSGI entry point: ``gunicorn common.issuer.wsgi:app`` (settings from the environment)."""
from .app import create_issuer_app

app = create_issuer_app()
