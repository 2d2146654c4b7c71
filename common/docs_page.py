"""The API docs page (Swagger UI), served entirely from this machine.

flask-smorest renders the page; its JavaScript and CSS come from the installed
`swagger-ui-bundle` package (the Swagger UI distribution connexion uses), served under
`<prefix>/docs/assets/`, never from a CDN. The page and its assets carry a
Content-Security-Policy that allows nothing off this origin: users paste tokens into this
page, on the secrets service's own origin, so no third-party script may run there.
"""
from __future__ import annotations

from flask import Flask, abort, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from common import current

# What flask-smorest's swagger_ui.html loads; nothing else of the package is served.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"})
# The page's one inline script starts Swagger UI; styles are set inline by its React components.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'")
_ENDPOINTS = ("api-docs.openapi_swagger_ui", "docs_page_asset")
# Every route of the API's documents (page, assets, the OpenAPI document): no token needed.
DOCUMENT_ENDPOINTS = (*_ENDPOINTS, "api-docs.openapi_json")


def settings(url_prefix: str) -> dict:
    """flask-smorest options: the page at <prefix>/docs, its assets from this app."""
    return {
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": f"{url_prefix}/docs/assets/",
        # No "validator" badge: it would fetch an image from validator.swagger.io.
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
    }


def introduction(title: str) -> str:
    """The top of the docs page (the OpenAPI document's info.description, Markdown): how to get
    a token to try the routes with, which is what a newcomer needs first."""
    return f"""The {title}'s HTTP API. The contract: `docs/API.md` in the repository.

**A token first.** Every route but the status route needs an OAuth bearer token (a JWT) from the
token issuer. With `make run`, copy the admin token it prints (`export TOKEN=...`), or ask the
development issuer for one:

    curl -s -u privx-external:dev-oauth-secret -d grant_type=password -d username=admin \\
      -d password=dev-admin-secret http://127.0.0.1:8080/auth/api/v1/oauth/token

(the `access_token` of the answer; `make run` moves the port with `ISSUER_PORT`). Elsewhere, your
PrivX token issuer gives it, as the PrivX SDKs get theirs. Then press **Authorize** below, paste
the token, and **Try it out** on any route. The scopes a route needs are in the contract; a 403
names them."""


def install(app: Flask, url_prefix: str) -> None:
    @app.get(f"{url_prefix}/docs/assets/<name>", endpoint="docs_page_asset")
    def asset(name: str):
        if name not in ASSETS:
            abort(404)
        return send_from_directory(swagger_ui_path, name, max_age=3600)

    @app.after_request
    def _confine(response):
        if current.request().endpoint in _ENDPOINTS:
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response
