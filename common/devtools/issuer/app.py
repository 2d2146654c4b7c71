"""Flask app of the development token issuer: PrivX's OAuth token endpoint plus its JWKS."""
from __future__ import annotations

import os

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant, ResourceOwnerPasswordCredentialsGrant
from flask import Flask, current_app, jsonify

from common import config

from .clients import load_clients
from .keys import ensure_signing_key, mint_token, public_jwks

EXTENSION = "dev_token_issuer"


def issuer_settings(overrides: dict | None = None) -> dict:
    """Each key from ``overrides``, else the environment variable of that name, else its default
    (validated by common.config: a bad value raises ConfigError)."""
    settings = dict(config.load(config.ISSUER, overrides))
    # Absolute, so a later chdir (gunicorn --chdir, tests) cannot move the key.
    settings["DATA_DIR"] = os.path.abspath(os.fspath(settings["DATA_DIR"]))
    return settings


class _AuthorizationServer(AuthorizationServer):
    """authlib's, with its refusal of the client's credentials in our words: authlib's names its
    own authentication methods ("cannot authenticate with methods: [...]"), which tells a user
    nothing about what to fix."""

    def authenticate_client(self, request, methods, endpoint="token"):
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as exc:
            if exc.description and exc.description.startswith("The client cannot authenticate"):
                exc.description = ("Wrong client secret, or no client credentials: send the OAuth client's id and "
                                   "secret in HTTP Basic (or as client_id and client_secret in the form).")
            raise


class _NarrowingScope:
    """Mixin: a requested ``scope`` only narrows what the subject holds; asking for none of it fails."""

    def validate_requested_scope(self):
        requested = self.request.payload.scope
        subject = self.request.user or self.request.client
        if requested and not subject.principal.narrow(requested):
            raise InvalidScopeError()


class PasswordGrant(_NarrowingScope, ResourceOwnerPasswordCredentialsGrant):
    # PrivX SDKs send the OAuth client in HTTP Basic; some tools post it in the form.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def authenticate_user(self, username, password):
        user = current_app.extensions[EXTENSION]["clients"].authenticate_api_client(username, password)
        if user is None:
            # RFC 6749 §5.2: bad resource-owner credentials are invalid_grant (authlib says invalid_request).
            raise InvalidGrantError("Invalid username or password.")
        return user


class ClientCredentials(_NarrowingScope, ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def _token_generator(settings: dict):
    """authlib's token-generator hook, answering exactly the four PrivX token fields."""

    def generate(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        principal = (user or client).principal  # password: the API client; client_credentials: the OAuth client
        scopes = principal.narrow(scope)
        ttl = settings["ISSUER_TOKEN_TTL"]
        token = mint_token(
            settings["DATA_DIR"],
            sub=principal.sub,
            scopes=scopes,
            roles=principal.roles,
            email=principal.email,
            name=principal.name,
            issuer=settings["AUTH_ISSUER"],
            audience=settings["AUTH_AUDIENCE"],
            ttl=ttl,
            client_id=client.client_id,
        )
        # No refresh token: clients simply repeat the grant, as PrivX clients do.
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": " ".join(scopes)}

    return generate


def create_issuer_app(config: dict | None = None) -> Flask:
    settings = issuer_settings(config)
    # Create the key now, so jwks.json exists for services before the first token is asked for.
    ensure_signing_key(settings["DATA_DIR"])
    clients = load_clients(settings["ISSUER_CLIENTS_FILE"])

    app = Flask(__name__)
    app.config.update(settings)
    app.extensions[EXTENSION] = {"clients": clients}

    # Tokens are self-contained JWTs, so there is nothing to store.
    server = _AuthorizationServer(app, query_client=clients.query_client, save_token=lambda token, request: None)
    server.register_token_generator("default", _token_generator(settings))
    server.register_grant(PasswordGrant)
    server.register_grant(ClientCredentials)

    @app.post("/auth/api/v1/oauth/token")
    def token():
        return server.create_token_response()

    @app.get("/auth/api/v1/oauth/jwks")
    @app.get("/.well-known/jwks.json")
    def jwks():
        return jsonify(public_jwks(settings["DATA_DIR"]))

    @app.get("/auth/api/v1/status")
    def status():
        return jsonify(status="RUNNING")

    return app
