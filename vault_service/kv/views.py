"""/v1/...: one catch-all rule, so that every answer under /v1/ (an unknown path or method,
a body too large, a crash) is in Vault's shape; this module routes it to its endpoint."""
from __future__ import annotations

import logging

from flask import Blueprint, Flask
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from common import auth, current, errors
from vault_service.kv import access, engine, system
from vault_service.kv.inputs import parse_bool
from vault_service.kv.wire import KvError, envelope, error_response, translated

log = logging.getLogger(__name__)

PREFIX = "/v1"
# Methods Vault knows; POST and PUT are one write, HEAD is a GET without a body.
_OPERATION = {"GET": "GET", "HEAD": "GET", "POST": "PUT", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE",
              "LIST": "LIST"}
_VERB = {"GET": "get", "PUT": "put", "PATCH": "patch", "LIST": "list", "DELETE": "delete"}
_ROOTLESS = ("data", "metadata", "delete", "undelete", "destroy", "subkeys")

blp = Blueprint("vault_kv", __name__)


def install(app: Flask) -> None:
    """Serve /v1/ on `app` for the mount VAULT_KV_MOUNT (checked by common.config; "": every
    /v1/... is 404)."""
    app.extensions["kv_mount"] = app.config["VAULT_KV_MOUNT"]
    app.register_blueprint(blp)
    # Rules added directly, without a method list: every method reaches dispatch() (LIST too),
    # and the blueprint's name in the endpoint keeps Flask's per-blueprint handling.
    for rule in (PREFIX, f"{PREFIX}/", f"{PREFIX}/<path:rest>"):
        app.url_map.add(Rule(rule, endpoint=f"{blp.name}.dispatch", strict_slashes=False))
    app.view_functions[f"{blp.name}.dispatch"] = dispatch
    auth.accept_vault_token(app, f"{blp.name}.dispatch")


@blp.errorhandler(Exception)
def _in_vaults_shape(error: Exception):
    """Every error of a /v1 request, the app's own checks before the view included (URL
    length, rate limits), in Vault's shape."""
    if isinstance(error, KvError):
        return error_response(error)
    if isinstance(error, errors.ApiError):
        return error_response(translated(error))
    if isinstance(error, HTTPException):  # e.g. werkzeug's 413 for a body over MAX_CONTENT_LENGTH
        return error_response(KvError(413, "request body too large") if error.code == 413 else KvError(error.code or 500))
    # A 500 never carries a trace or a secret.
    log.error("unhandled exception", extra={"exception_type": type(error).__name__}, exc_info=errors._redacted(error))
    return error_response(KvError(500, "internal error"))


def dispatch(rest: str = ""):
    request = current.request()  # not flask.request: a read through it costs 8,000 instructions (issue 25)
    _refuse_help(request)
    mount = system.mount()
    if not mount:
        raise KvError(404)
    operation = _operation(request)
    _refuse_unsupported_headers(request.environ)
    if rest == mount or rest.startswith(mount + "/"):
        return _mount_endpoint(rest[len(mount) + 1:], operation)
    endpoints, path = _system_endpoint(rest)
    if endpoints is None:
        raise KvError(404, f'no handler for route "{rest}". route entry not found.')
    endpoint = endpoints.get(operation)
    if endpoint is None:
        raise _not_allowed(endpoints, operation)
    return endpoint(path)


def _refuse_help(request) -> None:
    """HashiCorp Vault answers any path with a non-empty `help` parameter (for a token) with the
    path's help text instead of doing the operation; this suite has no help text. The request must
    never be taken for the operation itself (a read would return the secret): after the token
    check (403, as everywhere under /v1/), it is a 400 on every path."""
    if request.environ.get("QUERY_STRING") and any(value != "" for value in request.args.getlist("help")):
        access.caller()
        raise KvError(400, "help is not supported")


def _not_allowed(endpoints: dict, operation: str | None) -> KvError:
    """405 with the methods the path takes (RFC 9110 wants them in Allow; Vault omits them). As
    Vault: an operation it knows is "unsupported" here; a method it does not know, no message."""
    # HTTP's methods: Vault's own LIST is GET in HTTP terms (GET with ?list=true), so a path that
    # only lists still names GET.
    methods = sorted({method for method, known in _OPERATION.items() if known in endpoints and method != "LIST"}
                     | ({"GET"} if "LIST" in endpoints else set()))
    messages = ("unsupported operation",) if operation else ()
    return KvError(405, *messages, headers={"Allow": ", ".join(methods)})


def _operation(request) -> str | None:
    """Vault's operation for the request's method; None for a method Vault does not know (a 405,
    once the path says which methods it takes)."""
    method = request.method.upper()
    if method not in _OPERATION:
        return None
    operation = _OPERATION[method]
    listing = request.args.get("list") if request.environ.get("QUERY_STRING") else None
    if operation == "GET" and listing not in (None, ""):
        parsed = parse_bool(listing)
        if parsed is None:
            raise KvError(400)
        if parsed:
            operation = "LIST"
    return operation


def _refuse_unsupported_headers(environ: dict) -> None:
    if environ.get("HTTP_X_VAULT_WRAP_TTL", "").strip():
        raise KvError(400, "response wrapping is not supported")
    if environ.get("HTTP_X_VAULT_NAMESPACE", "").strip().strip("/") not in ("", "root"):
        raise KvError(400, "namespaces are not supported")


def _mount_endpoint(sub: str, operation: str):
    family, _, path = sub.partition("/")
    endpoints = engine.ENDPOINTS.get(family)
    if endpoints is None or (family == "config" and path):
        raise KvError(404, body=envelope(None, warnings=[
            "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to "
            f"use. If using the Vault CLI, use 'vault kv {_VERB.get(operation, 'get')}' for this operation."]))
    endpoint = endpoints.get(operation)
    if family in _ROOTLESS and not path.strip("/") and operation != "LIST":
        if operation is None:  # a method Vault does not know: 405 on every path, a root too
            raise _not_allowed({known: served for known, served in endpoints.items() if known == "LIST"}, None)
        raise KvError(404, body=envelope(None, warnings=[
            "Non-listing operations on the root of a K/V v2 mount are not supported."]))
    if endpoint is None:
        raise _not_allowed(endpoints, operation)
    return endpoint(path)


def _system_endpoint(rest: str):
    if rest in system.ENDPOINTS:
        return system.ENDPOINTS[rest], ""
    for prefix, endpoints in system.ENDPOINTS.items():
        if prefix.endswith("/") and rest.startswith(prefix):
            return endpoints, rest[len(prefix):]
    return None, ""
