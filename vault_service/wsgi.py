"""`gunicorn vault_service.wsgi:app`"""
from vault_service.app import create_app

app = create_app()
