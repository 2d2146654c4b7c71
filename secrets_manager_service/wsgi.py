"""`gunicorn secrets_manager_service.wsgi:app`"""
from secrets_manager_service.app import create_app

app = create_app()
