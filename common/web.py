"""The HTTP helpers every view uses: our Blueprint (strict JSON bodies, authentication before
validation), the request's database, and the contract's response shapes. The app factory that
wires a service together is common.app_factory, which builds on this module."""
from __future__ import annotations

import functools
import os

from flask import Flask
from flask import views as flask_views
from marshmallow import ValidationError
from marshmallow.decorators import POST_LOAD
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import resolve_schema_instance, set_status_and_headers_in_response, unpack_tuple_response
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser
from werkzeug import Response as WerkzeugResponse

from common import auth, current, errors, fastdump, strict_json
from common.db import Database
from common.schemas import RequestBody
from common.timefmt import rfc3339

MAX_BODY_BYTES = 1024 * 1024


def database(app: Flask | None = None) -> Database:
    return (app or current.app()).extensions["db"]


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
    return current.app().response_class(b"", status=200, mimetype="text/plain")


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


class Dumped(dict):
    """A response body a view built in the form its response schema dumps to (the same keys in
    the same order, the same values): sent as it is, not dumped again (a v1 read's dump was a
    twentieth of its instructions, issue 25). tests/vault/test_recorded_responses.py holds the
    bytes."""


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = _StrictJsonParser()

    def response(self, status_code, schema=None, **kwargs):
        if schema is not None:  # same body, dumped without marshmallow's generic path
            schema = fastdump.accelerate(resolve_schema_instance(schema))
        documenting = super().response(status_code, schema, **kwargs)

        def decorator(view):
            documented = documenting(view)  # flask-smorest's wrapper: kept for the API document only

            # flask-smorest's wrapper, step for step, but with the app and `g` read from their
            # context, not through flask's proxies (common.current: four reads, a tenth of a read's
            # Python, issue 25). The answer is the same object with the same bytes.
            @functools.wraps(view)
            def responding(*args, **kwargs):
                app = current.app()
                result_raw, r_status_code, r_headers = unpack_tuple_response(app.ensure_sync(view)(*args, **kwargs))
                if isinstance(result_raw, WerkzeugResponse):
                    set_status_and_headers_in_response(result_raw, r_status_code, r_headers)
                    return result_raw
                result_dump = result_raw if schema is None or type(result_raw) is Dumped else schema.dump(result_raw)
                current.g().setdefault("_flask_smorest", {})["result_dump"] = result_dump  # what its ETags read
                resp = app.json.response(self._prepare_response_content(result_dump))
                set_status_and_headers_in_response(resp, r_status_code, r_headers)
                if r_status_code is None:
                    resp.status_code = status_code
                return resp

            responding._apidoc = documented._apidoc
            return responding

        return decorator

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
                if without_query is not None and not current.request().environ.get("QUERY_STRING"):
                    # What webargs would make of no query at all, made once (issue 25).
                    return view(*view_args, dict(without_query), **view_kwargs)
                return parsing(*view_args, **view_kwargs)

            return authenticated_first

        return decorator


class MethodView(flask_views.MethodView):
    """Flask's MethodView, but the request's method and the app are read from their context,
    not through flask's proxies (common.current: three reads a request, issue 25)."""

    @classmethod
    def as_view(cls, name: str, *class_args, **class_kwargs):
        view = super().as_view(name, *class_args, **class_kwargs)
        if not cls.init_every_request or cls.decorators:
            return view  # Flask's, as it is

        def view_function(**kwargs):
            # dispatch_request below is a plain function: Flask's ensure_sync would return it as is.
            return view_function.view_class(*class_args, **class_kwargs).dispatch_request(**kwargs)

        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(view_function, attribute, getattr(view, attribute))
        view_function.__dict__.update(view.__dict__)  # view_class, methods, provide_automatic_options
        return view_function

    def dispatch_request(self, **kwargs):
        method = current.request().method
        meth = getattr(self, method.lower(), None)
        # A HEAD without its own handler is a GET.
        if meth is None and method == "HEAD":
            meth = getattr(self, "get", None)
        assert meth is not None, f"Unimplemented method {method!r}"
        return current.app().ensure_sync(meth)(**kwargs)


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
