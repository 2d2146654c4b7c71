"""What every service's app factory shares: config, API docs, errors, auth, database, logs.

Separate from common.web (the HTTP helpers views import) so the audit views, which are views
like any other, can build on those helpers while this factory registers them."""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from inspect import iscoroutinefunction
from itertools import chain

from flask import Flask
from flask.globals import _cv_request
from flask.json.provider import DefaultJSONProvider
from flask.signals import request_tearing_down
from flask_smorest import Api
from werkzeug.routing import UnicodeConverter

from common import audit_pump, auth, config, current, docs_page, errors, logs, metrics, openapi, programs, ratelimit, strict_json
from common.audit_views import audit_blueprint
from common.schemas import ErrorEnvelope
from common.timefmt import Rfc3339
from common.web import MAX_BODY_BYTES

MAX_URL_BYTES = 8 * 1024
_NOT_GIVEN = object()  # Flask's default of do_teardown_request's exc: take the one being handled
_REQUEST_ID_MAX = 128


def create_base_app(import_name: str, *, service: str, title: str, url_prefix: str,
                    settings: config.Group, overrides: dict | None, migrations_package: str | None) -> tuple[Flask, Api]:
    """A Flask app with its Api, settings, database and token validator wired in.

    The settings are validated here, before anything else: a bad one raises ConfigError."""
    app = _Flask(import_name, static_folder=None)
    settings = config.load(settings, overrides)
    app.config.update(settings)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=url_prefix,
        OPENAPI_JSON_PATH="openapi.json",
        **docs_page.settings(url_prefix),  # Swagger UI from the installed package, never a CDN
        SERVICE_NAME=service,
        START_TIME=datetime.now(timezone.utc),
    )
    app.json = _JsonProvider(app)
    app.json.sort_keys = False
    logs.configure(app.config["LOG_LEVEL"])
    config.announce(settings)

    api = _Api(app, spec_kwargs={
        "info": {"description": docs_page.introduction(title)},  # the docs page opens with it
        "marshmallow_plugin": openapi.GoZeroPlugin(),  # bodies' optional fields take Go's zero values
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearer": []}],
    })
    api.register_field(Rfc3339, "string", "date-time")
    docs_page.install(app, url_prefix)
    add_converter(app, api, "uuid_text", UnicodeConverter, {"type": "string", "format": "uuid"})
    errors.register_error_handlers(app)  # after Api: ours must win

    app.extensions["db"] = programs.database_from(app.config, service=service, migrations_package=migrations_package)
    app.extensions["token_validator"] = auth.TokenValidator(
        _jwks_source(app.config),
        issuer=app.config["AUTH_ISSUER"],
        audience=app.config["AUTH_AUDIENCE"],
        leeway=app.config["AUTH_LEEWAY_SECONDS"],
        max_lifetime=app.config["AUTH_MAX_TOKEN_LIFETIME_SECONDS"],
    )
    _install_request_checks(app)
    metrics.install(app)
    ratelimit.install(app)  # after metrics, so 429s are counted too
    ratelimit.exempt(app, metrics.ENDPOINT, *docs_page.DOCUMENT_ENDPOINTS)  # no token needed (status: its app's)
    audit_pump.install(app, app.extensions["db"])
    api.register_blueprint(audit_blueprint(f"{service.replace('-', '_')}_audit"), url_prefix=url_prefix)
    return app, api


def add_converter(app: Flask, api: Api, name: str, base: type, schema: dict) -> None:
    """A URL converter `name` that matches what `base` matches and is documented as `schema`
    (e.g. user and host ids: UUIDs by the contract, yet a malformed one must reach the view
    for its 400 or 403 rather than be a routing 404). Call before registering blueprints."""
    converter = type(f"{name.title().replace('_', '')}Converter", (base,), {})
    app.url_map.converters[name] = converter
    api.register_converter(converter, lambda _converter: dict(schema))


class _Flask(Flask):
    """Flask, but whether a hook or view is a coroutine function is asked once per function, not
    on every request for each of the ten or so a request runs through (issue 25); and the steps
    of a request read the request from its context, not through flask.request (common.current:
    each read through the proxy costs about 8,000 instructions). What each step does is Flask's
    (3.1), with the hooks of the request's blueprints found once per blueprint."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._coroutine_functions: dict = {}
        self._blueprint_chains: dict = {}

    def ensure_sync(self, func):
        # A method view's bound method is new on every request: its function is the key.
        key = getattr(func, "__func__", func)
        coroutine = self._coroutine_functions.get(key)
        if coroutine is None:
            coroutine = self._coroutine_functions[key] = iscoroutinefunction(func)
        return self.async_to_sync(func) if coroutine else func

    def _blueprints_of(self, request) -> tuple:
        """request.blueprints, as a tuple kept per blueprint name."""
        name = request.blueprint
        chain_ = self._blueprint_chains.get(name)
        if chain_ is None:
            chain_ = self._blueprint_chains[name] = tuple(request.blueprints)
        return chain_

    def preprocess_request(self):
        request = _cv_request.get().request
        names = (None, *reversed(self._blueprints_of(request)))
        for name in names:
            if name in self.url_value_preprocessors:
                for url_func in self.url_value_preprocessors[name]:
                    url_func(request.endpoint, request.view_args)
        for name in names:
            if name in self.before_request_funcs:
                for before_func in self.before_request_funcs[name]:
                    rv = self.ensure_sync(before_func)()
                    if rv is not None:
                        return rv
        return None

    def dispatch_request(self):
        req = _cv_request.get().request
        if req.routing_exception is not None:
            self.raise_routing_exception(req)
        rule = req.url_rule
        if getattr(rule, "provide_automatic_options", False) and req.method == "OPTIONS":
            return self.make_default_options_response()
        return self.ensure_sync(self.view_functions[rule.endpoint])(**req.view_args)

    def process_response(self, response):
        ctx = _cv_request.get()
        for func in ctx._after_request_functions:
            response = self.ensure_sync(func)(response)
        for name in chain(self._blueprints_of(ctx.request), (None,)):
            if name in self.after_request_funcs:
                for func in reversed(self.after_request_funcs[name]):
                    response = self.ensure_sync(func)(response)
        if not self.session_interface.is_null_session(ctx._session):
            self.session_interface.save_session(self, ctx._session, response)
        return response

    def do_teardown_request(self, exc=_NOT_GIVEN):
        if exc is _NOT_GIVEN:
            exc = sys.exc_info()[1]
        for name in chain(self._blueprints_of(_cv_request.get().request), (None,)):
            if name in self.teardown_request_funcs:
                for func in reversed(self.teardown_request_funcs[name]):
                    self.ensure_sync(func)(exc)
        request_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)


class _JsonProvider(DefaultJSONProvider):
    """Flask's JSON, but a response body is written by an encoder made once: json.dumps makes
    a new one for every body (a third of what a small body's text costs, issue 25). The
    same text: the encoder is the one json.dumps makes for Flask's settings (compact
    separators, ASCII, Flask's `default`), without the cycle check (a body never holds itself:
    without it one would fail as deep recursion instead, a 500 either way)."""

    def __init__(self, app: Flask):
        super().__init__(app)
        encoder = json.encoder.c_make_encoder
        self._default = self.default  # what the encoder calls; another set later means Flask's path
        self._encode = None if encoder is None else encoder(
            None, self._default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)

    def response(self, *args, **kwargs):
        fast = (self._encode is not None and self.ensure_ascii and not self.sort_keys and self.compact is not False
                and not (self.compact is None and self._app.debug) and self.default is self._default)
        if not fast:
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(f"{''.join(self._encode(obj, 0))}\n", mimetype=self.mimetype)


class _Api(Api):
    # The documented error body is the contract's envelope, not flask-smorest's default.
    ERROR_SCHEMA = ErrorEnvelope
    # Tags the docs page lists after every other (the service's own resources come first).
    LAST_TAGS = ("Audit trail",)

    def register_blueprint(self, blp, *, parameters=None, tag: str | None = None, **options):
        """flask-smorest's, but the routes are documented under `tag`, a name for the docs page's
        readers (default: the blueprint's description, e.g. "Shared secrets"), not under the
        blueprint's name, which is internal (`vault_secrets`) and stays the endpoints' prefix."""
        blp_name = options.get("name", blp.name)
        tag = tag or blp.description or blp_name
        super().register_blueprint(blp, parameters=parameters, **options)
        # flask-smorest tags with the blueprint's name (it also finds the endpoints by it): renamed
        # in apispec's lists of tags and paths, which it keeps in the order they came.
        self.spec._tags[:] = [entry for entry in self.spec._tags if entry["name"] != blp_name]
        for operations in self.spec._paths.values():
            for operation in operations.values():
                if isinstance(operation, dict) and operation.get("tags") == [blp_name]:
                    operation["tags"] = [tag]
        self.add_tag(tag)

    def add_tag(self, name: str) -> None:
        """A tag of the docs page, in the order of coming, but the LAST_TAGS after every other."""
        if not any(entry["name"] == name for entry in self.spec._tags):
            self.spec.tag({"name": name})
        self.spec._tags.sort(key=lambda entry: entry["name"] in self.LAST_TAGS)  # stable: the rest keep their order


def _jwks_source(settings: dict) -> auth.JwksSource:
    if settings["AUTH_JWKS_URL"] or settings["AUTH_JWKS_FILE"]:
        return auth.JwksSource(file=settings["AUTH_JWKS_FILE"], url=settings["AUTH_JWKS_URL"])
    # Development: trust the key set the development issuer publishes where the settings say
    # (read on the first token, so the issuer may start after this service).
    return auth.JwksSource(file=config.development_jwks_file(settings["DATA_DIR"]))


def _install_request_checks(app: Flask) -> None:
    """The request id and the URL checks: one hook before and one after each request."""
    @app.before_request
    def _request_id_and_url_checks():
        request = current.request()
        environ = request.environ
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        # Accept a proxy's id only when it is short and printable; never echo arbitrary bytes.
        if incoming and len(incoming) <= _REQUEST_ID_MAX and incoming.isprintable():
            current.g().request_id = incoming
        else:
            current.g().request_id = os.urandom(16).hex()  # the shape of uuid4().hex, at a fraction of its cost
        _check_url(request, environ)

    @app.after_request
    def _return_request_id(response):
        response.headers["X-Request-ID"] = current.g().get("request_id", "")
        return response


def _check_url(request, environ: dict) -> None:
    # The contract's 8 KiB URL limit (the servers in front allow a little more).
    url_bytes = len(environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path)
    if url_bytes > MAX_URL_BYTES:
        raise errors.ApiError(f"the URL is longer than {MAX_URL_BYTES} bytes", code="BAD_REQUEST").with_status(414)
    # Path and query text reaches PostgreSQL too; a NUL there is a 400, not a driver error.
    # Only a NUL byte of the path or a NUL or %-escape in the query can make one: werkzeug
    # decodes invalid UTF-8 by replacing it, never into a lone surrogate. Without them the
    # query is not parsed here (most requests have none, issue 25).
    query = environ.get("QUERY_STRING", "")
    if "\x00" not in environ.get("PATH_INFO", "") and "%" not in query and "\x00" not in query:
        return
    # Names first: a name that is not storable must not be echoed into the error as a value's.
    for name in request.args:
        if not strict_json.is_storable(name):
            raise strict_json.bad_value("query", "a query parameter name contains a NUL character")
    for name, value in [*(request.view_args or {}).items(), *request.args.items(multi=True)]:
        if isinstance(value, str) and not strict_json.is_storable(value):
            raise strict_json.bad_value(name, f"{name} must not contain NUL characters")
