"""What every service's app factory shares: config, API docs, errors, auth, database, logs.

Separate from common.web (the HTTP helpers views import) so the audit views, which are views
like any other, can build on those helpers while this factory registers them."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from inspect import iscoroutinefunction

from flask import Flask, g, request
from flask_smorest import Api
from werkzeug.routing import UnicodeConverter

from common import audit_pump, auth, config, docs_page, errors, logs, metrics, openapi, programs, ratelimit, strict_json
from common.audit_views import audit_blueprint
from common.schemas import ErrorEnvelope
from common.timefmt import Rfc3339
from common.web import MAX_BODY_BYTES

MAX_URL_BYTES = 8 * 1024
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
    _install_request_id(app)
    _install_url_checks(app)
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
    on every request for each of the ten or so a request runs through (issue 25)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._coroutine_functions: dict = {}

    def ensure_sync(self, func):
        # A method view's bound method is new on every request: its function is the key.
        key = getattr(func, "__func__", func)
        coroutine = self._coroutine_functions.get(key)
        if coroutine is None:
            coroutine = self._coroutine_functions[key] = iscoroutinefunction(func)
        return self.async_to_sync(func) if coroutine else func


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


def _install_request_id(app: Flask) -> None:
    @app.before_request
    def _assign_request_id():
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
        # Accept a proxy's id only when it is short and printable; never echo arbitrary bytes.
        if incoming and len(incoming) <= _REQUEST_ID_MAX and incoming.isprintable():
            g.request_id = incoming
        else:
            g.request_id = os.urandom(16).hex()  # the shape of uuid4().hex, at a fraction of its cost

    @app.after_request
    def _return_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response


def _install_url_checks(app: Flask) -> None:
    @app.before_request
    def _url_within_contract():
        environ = request.environ
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
        for name, value in [*(request.view_args or {}).items(), *request.args.items(multi=True)]:
            if isinstance(value, str) and not strict_json.is_storable(value):
                raise strict_json.bad_value(name, f"{name} must not contain NUL characters")
        for name in request.args:
            if not strict_json.is_storable(name):
                raise strict_json.bad_value("query", "a query parameter name contains a NUL character")
