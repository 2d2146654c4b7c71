"""The sys/ and auth/token/ paths HashiCorp clients probe: health, seal status, the mount
preflight of the `vault kv` CLI and consul-template, and a token's own lookup."""
from __future__ import annotations

import base64
import json
import time as clock
import uuid
from datetime import datetime, timezone

from flask import current_app, request

from common import current
from common.web import database
from vault_service.acl.access import cache as acl_cache
from vault_service.kv import acl_endpoints
from vault_service.kv.access import caller, token
from vault_service.kv.wire import KvError, envelope, ok, permission_denied, respond, time

DESCRIPTION = "PrivX Vault shared secrets"
CLUSTER_NAME = "privx-vault"


def mount() -> str:
    return current.app().extensions["kv_mount"]


def _stable_uuid(kind: str) -> uuid.UUID:
    """The same on every worker and restart of one deployment (its issuer, audience and mount)."""
    config = current_app.config
    return uuid.uuid5(uuid.NAMESPACE_URL, f"privx-vault:{kind}:{config['AUTH_ISSUER']}:{config['AUTH_AUDIENCE']}:{mount()}")


def _version() -> str:
    return current_app.config.get("SERVICE_VERSION", "0.1.0")


def mount_entry() -> dict:
    return {
        "type": "kv", "description": DESCRIPTION, "accessor": f"kv_{_stable_uuid('accessor').hex[:8]}",
        "uuid": str(_stable_uuid("mount")), "local": False, "seal_wrap": False, "external_entropy_access": False,
        "options": {"version": "2"},
        "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False},
        "plugin_version": "",
    }


# --- no token -------------------------------------------------------------------

_HEALTH_CODES = ("activecode", "sealedcode", "standbycode", "drsecondarycode", "performancestandbycode",
                 "uninitcode")


def health(path: str):
    codes = {}
    for name in _HEALTH_CODES:
        raw = request.args.get(name)
        if raw not in (None, ""):
            try:
                codes[name] = int(raw)
            except ValueError:
                raise KvError(400) from None
            if not 100 <= codes[name] <= 599:
                raise KvError(400)
    healthy = database().ping()
    body = {
        "initialized": True, "sealed": not healthy, "standby": False, "performance_standby": False,
        "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
        "server_time_utc": int(clock.time()), "version": _version(), "enterprise": False,
        "cluster_name": CLUSTER_NAME, "cluster_id": str(_stable_uuid("cluster")),
    }
    status = codes.get("activecode", 200) if healthy else codes.get("sealedcode", 503)
    return respond(body, status)


def seal_status(path: str):
    healthy = database().ping()
    return respond({
        "type": "keyring", "initialized": True, "sealed": not healthy, "t": 1, "n": 1, "progress": 0, "nonce": "",
        "version": _version(), "build_date": time(current_app.config["START_TIME"]), "migration": False,
        "recovery_seal": False, "storage_type": "postgresql", "cluster_name": CLUSTER_NAME,
        "cluster_id": str(_stable_uuid("cluster")),
    })


def ui_mounts(path: str):
    secret = mount_entry()
    return ok({"secret": {f"{mount()}/": {key: secret[key] for key in ("type", "description", "options")}},
               "auth": {"token/": {"type": "token", "description": "token based credentials", "options": None}}},
               mount_type="system")


# --- any valid token --------------------------------------------------------------

def preflight(path: str):
    """GET sys/internal/ui/mounts/<path>: which mount (and KV version) serves a path."""
    caller()
    first = path.strip("/").split("/", 1)[0]
    if first != mount():
        # Vault answers 403 here so that mounts cannot be probed.
        raise KvError(403, "preflight capability check returned 403, please ensure client's policies grant "
                           f"access to path \"{first}/\"")
    return ok({**mount_entry(), "path": f"{mount()}/"}, mount_type="system")


def mounts(path: str):
    caller()
    table = {f"{mount()}/": mount_entry()}
    # Vault repeats the mounts at the top level on this legacy route.
    return respond({**table, **envelope(table, mount_type="system")})


def lookup_self(path: str):
    principal = caller()
    sent = token()
    claims = _claims(sent)
    issued, expires = int(claims.get("iat") or claims.get("nbf") or 0), int(claims["exp"])
    meta = {key: claims[key] for key in ("email", "name") if claims.get(key)}
    # The scopes, then the policies of the caller's groups (Vault's identity policies).
    identity_policies = acl_cache().policy_names(principal)
    return ok({
        "id": sent, "accessor": str(claims.get("jti") or ""), "policies": sorted(principal.scopes) + identity_policies,
        **({"identity_policies": identity_policies} if identity_policies else {}),
        "display_name": principal.name or principal.sub, "entity_id": principal.sub, "meta": meta or None,
        "creation_time": issued, "creation_ttl": expires - issued,
        "issue_time": time(datetime.fromtimestamp(issued, timezone.utc)),
        "expire_time": time(datetime.fromtimestamp(expires, timezone.utc)),
        "ttl": max(0, expires - int(clock.time())), "explicit_max_ttl": 0, "num_uses": 0, "orphan": True,
        "renewable": False, "type": "service", "path": "",
    }, mount_type="token")


def _claims(sent: str) -> dict:
    """The payload of a token caller() has verified already."""
    segment = sent.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def lookup_other(path: str):
    raise permission_denied()  # only a token's own lookup is served


def renew_self(path: str):
    caller()
    raise KvError(400, "lease is not renewable")


def revoke_self(path: str):
    caller()
    raise KvError(400, "this server's tokens are JWTs and cannot be revoked; they expire at exp")


# path -> {operation: endpoint}; a path ending in "/" also takes what follows it.
ENDPOINTS = {
    "sys/health": {"GET": health},
    "sys/seal-status": {"GET": seal_status},
    "sys/internal/ui/mounts": {"GET": ui_mounts},
    "sys/internal/ui/mounts/": {"GET": preflight},
    "sys/mounts-all/": {"GET": preflight},  # what a stored copy of the CLI's kv_helpers.go asks
    "sys/mounts": {"GET": mounts},
    "auth/token/lookup-self": {"GET": lookup_self, "PUT": lookup_self},
    "auth/token/lookup": {"PUT": lookup_other},
    "auth/token/renew-self": {"PUT": renew_self},
    "auth/token/revoke-self": {"PUT": revoke_self},
    **acl_endpoints.ENDPOINTS,
}

