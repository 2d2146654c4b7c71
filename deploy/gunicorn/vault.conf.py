"""Gunicorn configuration for the Vault service: gunicorn -c deploy/gunicorn/vault.conf.py

All settings are in shared.py; see its docstring for the environment variables.
"""
import importlib.util as _util
import os as _os

_spec = _util.spec_from_file_location(
    "secrets_suite_gunicorn_shared", _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "shared.py")
)
_shared = _util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)

globals().update(_shared.settings(name="vault", wsgi_app="vault_service.wsgi:app", default_port=8081))
