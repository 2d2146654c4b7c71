"""The HTTP helpers every view uses: our Blueprint (strict JSON bodies, authentication before
validation), the request's database, and the contract's response shapes. The app factory that
wires a service together is common.app_factory, which builds on this module."""
from __future__ import annotations

import functools
import os

from flask import Flask, current_app, request
from marshmallow import ValidationError
from marshmallow.decorators import POST_LOAD
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import resolve_schema_instance
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser

from common import auth, errors, fastdump, strict_json
from common.db import Database
from common.schemas import RequestBody
from common.timefmt import rfc3339

MAX_BODY_BYTES = 1024 * 1024


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["db"]


def status_body(app: Flask, *, healthy: bool, details: dict[str, str], message: str = "") -> dict:
    """The contract's status object."""
    return {
        "version": app.config.get("SERVICE_VERSION", "0.1.0"),
        "api_version": "v1",
        "status": "RUNNING" if healthy else "ERROR",
        "status_message": message or ("OK" if healthy else "a dependency is unavailable"),
        "app_id": f"{app.config['SERVICE_NAME']}-{os.getpid()}",
        "start_time": rfc3339(app.config["START_TIME"]),
        "status_details": [{"k": k, "v": v} for k, v in details.items()],
    }


def created(location: str, body: dict):
    """A 201 with a Location header, as the contract's creates return."""
    return body, 201, {"Location": location}


def empty():
    """The contract's "200 with an empty body" (a Response, so flask-smorest does not JSON-encode it)."""
    return current_app.response_class(b"", status=200, mimetype="text/plain")


def request_body(req) -> bytes:
    """The whole body, or 413: werkzeug stops a chunked body at the limit without saying so."""
    raw = req.get_data(cache=True)
    if req.content_length is None and len(raw) >= MAX_BODY_BYTES and req.environ["wsgi.input"].read(1):
        raise errors.PayloadTooLarge()
    return raw


class _StrictJsonParser(FlaskParser):
    """webargs' parser, but the body is JSON whatever its Content-Type (as HashiCorp Vault
    takes it: a body sent with curl's default form type must not be silently ignored), and
    bad or lax JSON of any kind is a 400 in our envelope, never a 500 (strict_json)."""

    def _raw_load_json(self, req):
        raw = request_body(req)
        if not raw:  # no body at all; whitespace alone is a body, and not one JSON value (400)
            return webargs_core.missing
        return strict_json.loads(raw)


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = _StrictJsonParser()

    def response(self, status_code, schema=None, **kwargs):
        if schema is not None:  # same body, dumped without marshmallow's generic path
            schema = fastdump.accelerate(resolve_schema_instance(schema))
        return super().response(status_code, schema, **kwargs)

    def arguments(self, schema, *args, **kwargs):
        # webargs builds a new instance of a schema class on every request (its __init__
        # is a tenth of a small write's time); one instance, made here, is reused.
        if isinstance(schema, type):
            schema = schema()
        if kwargs.get("location", "json") == "json" and not isinstance(schema, RequestBody):
            raise TypeError(f"{type(schema).__name__}: a JSON body schema must build on common.schemas.RequestBody")
        optional = schema.partial is True or not (getattr(schema, "REQUIRED_ONE_OF", ()) or any(f.required for f in schema.load_fields.values()))
        if kwargs.get("location", "json") == "json" and optional:
            kwargs.setdefault("required", False)  # nothing in it is required: no body at all is fine too
        parse = super().arguments(schema, *args, **kwargs)
        without_query = _defaults(schema) if kwargs.get("location") == "query" else None

        def decorator(view):
            parsing = parse(view)

            # Authentication comes before the request's shape: an anonymous caller gets 401
            # whatever it sent, never a validation error that describes the schema.
            @functools.wraps(parsing)
            def authenticated_first(*view_args, **view_kwargs):
                auth.current_principal()
                if without_query is not None and not request.environ.get("QUERY_STRING"):
                    # What webargs would make of no query at all, made once (issue 25).
                    return view(*view_args, dict(without_query), **view_kwargs)
                return parsing(*view_args, **view_kwargs)

            return authenticated_first

        return decorator


_IMMUTABLE = (str, int, float, bool, type(None), tuple, frozenset)


def _defaults(schema) -> dict | None:
    """What `schema` loads from an empty query, when that is always the same immutable values
    (None when it is an error, holds a value a view could change, or may differ from one load
    to the next: a default made by a function, a post_load hook)."""
    if any(callable(field.load_default) for field in schema.load_fields.values()):
        return None
    if type(schema).resolve_hooks().get(POST_LOAD):
        return None
    try:
        loaded = schema.load({})
    except ValidationError:
        return None
    if not isinstance(loaded, dict) or not all(isinstance(value, _IMMUTABLE) for value in loaded.values()):
        return None
    return loaded
