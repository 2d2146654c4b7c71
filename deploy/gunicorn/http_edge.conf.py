"""Only the HTTP edge of the services' gunicorn settings (shared.http_edge: header limits above
the contract's, gunicorn's own refusals in the JSON envelope), for a server whose every other
setting comes from the command line, as the tests' live servers (tests/support.py) do:
gunicorn -c deploy/gunicorn/http_edge.conf.py --bind ... app
"""
import importlib.util as _util
import os as _os

_spec = _util.spec_from_file_location(
    "secrets_suite_gunicorn_shared", _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "shared.py")
)
_shared = _util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)

globals().update(_shared.http_edge())
