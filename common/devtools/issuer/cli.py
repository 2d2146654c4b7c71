"""``dev-token-issuer``: mint a token, print the JWKS, or serve the issuer over HTTP."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import config, programs

from .app import issuer_settings

PROGRAM = "dev-token-issuer"


def _role(text: str) -> dict:
    role_id, sep, name = text.partition(":")
    if not sep or not role_id or not name:
        raise argparse.ArgumentTypeError(f"expected ID:NAME, got {text!r}")
    return {"id": role_id, "name": name}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Development OAuth token issuer (settings: DATA_DIR, AUTH_ISSUER, AUTH_AUDIENCE, ...).",
    )
    parser.add_argument("--version", action="version", version=programs.version_text(PROGRAM))
    sub = parser.add_subparsers(dest="command", required=True)

    mint = sub.add_parser("mint", help="print a signed access token")
    mint.add_argument("--sub", required=True, help="subject (user or client uuid)")
    mint.add_argument("--scope", default="", help='space-separated scopes, e.g. "admin user"')
    mint.add_argument("--role", type=_role, action="append", default=[], metavar="ID:NAME")
    mint.add_argument("--email")
    mint.add_argument("--name")
    mint.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    jwks = sub.add_parser("jwks", help="print the public JWK Set")
    for command in (mint, jwks):
        # Without it, a DATA_DIR with no key is an error: a new key would sign tokens nobody trusts.
        command.add_argument("--new-key", action="store_true", help="create a signing key if DATA_DIR has none")

    serve = sub.add_parser("serve", help="run the issuer with gunicorn (1 worker)")
    serve.add_argument("--host", default="127.0.0.1", help="loopback by default: this is a dev tool")
    serve.add_argument("--port", type=int, default=8080)
    return parser


def _serve(host: str, port: int) -> None:
    from gunicorn.app.base import BaseApplication

    from .app import create_issuer_app

    class _Server(BaseApplication):
        def __init__(self, app, options):
            self.application, self.options = app, options
            super().__init__()

        def load_config(self):
            for key, value in self.options.items():
                if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                    self.cfg.set(key, value)

        def load(self):
            return self.application

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    # Built before forking, so a bad clients file or key fails here, not in a crash-looping worker.
    # No control socket: gunicorn >= 25 puts one per user at a fixed path, which would
    # collide with the services' own gunicorns running next to the issuer.
    options = {"bind": bind, "workers": 1, "control_socket_disable": True}
    with config.exit_on_error(PROGRAM):
        app = create_issuer_app()
    _Server(app, options).run()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        _serve(args.host, args.port)
        return 0

    from .keys import mint_token, public_jwks

    with config.exit_on_error(PROGRAM):
        settings = issuer_settings()
    key_file = Path(settings["DATA_DIR"], "issuer", "signing-key.json")
    if not args.new_key and not key_file.exists():
        print(f"{PROGRAM}: no signing key at {key_file}: run it where the suite's DATA_DIR is (or set DATA_DIR), "
              "or pass --new-key to create one", file=sys.stderr)
        return 1
    if args.command == "jwks":
        print(json.dumps(public_jwks(settings["DATA_DIR"]), indent=2))
    else:
        print(
            mint_token(
                settings["DATA_DIR"],
                sub=args.sub,
                scopes=args.scope,
                roles=args.role,
                email=args.email,
                name=args.name,
                issuer=settings["AUTH_ISSUER"],
                audience=settings["AUTH_AUDIENCE"],
                ttl=args.ttl,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
