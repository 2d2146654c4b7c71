"""Ed25519 signing key of the development token issuer, kept under DATA_DIR/issuer.

The private JWK lives in ``signing-key.json`` (0600); the public set is mirrored to
``jwks.json`` so services on the same host can trust the issuer by file, without HTTP.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from common import config
from common.jose import OKPKey, jwt

ALG = "EdDSA"
# Stands in for RFC 9068's required client_id when a token is minted directly, not via OAuth.
DIRECT_CLIENT_ID = "dev-token-issuer"

# Parsed keys by absolute path, tagged with (inode, mtime) so a replaced file is re-read;
# this keeps mint_token to one stat() plus the signature on the hot path of test-suites.
_cache: dict[str, tuple[tuple[int, int], OKPKey]] = {}
_cache_lock = threading.Lock()


def _issuer_dir(data_dir: str | os.PathLike) -> Path:
    return config.development_issuer_dir(data_dir)  # the settings say where; services read it there


def _write_temp(directory: Path, text: str, mode: int) -> str:
    """Write a fully synced temp file next to its final name, so linking/renaming it is atomic."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # mkstemp creates it 0600
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _create_key(directory: Path, path: Path) -> None:
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)  # mkdir's mode is masked by umask and ignored for an existing dir
    key = OKPKey.generate_key("Ed25519", private=True)
    jwk = key.as_dict(private=True)
    jwk["kid"] = key.thumbprint()  # RFC 7638, so the kid is stable and derivable from the key
    tmp = _write_temp(directory, json.dumps(jwk, indent=2) + "\n", 0o600)
    try:
        # link() never overwrites: when two processes race, the first key wins and the loser
        # loads it, so every process signs with the one key that jwks.json publishes.
        # (os.replace would be atomic too, but last-writer-wins would orphan the first key.)
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:
        # Filesystems without hard links: fall back to an atomic, last-writer-wins rename.
        os.replace(tmp, path)
        return
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _public_jwk(key: OKPKey) -> dict:
    jwk = key.as_dict(private=False)
    jwk.update(kid=key.kid, alg=ALG, use="sig")
    return jwk


def _publish_jwks(directory: Path, key: OKPKey) -> None:
    path = directory / config.DEVELOPMENT_JWKS_NAME
    text = json.dumps({"keys": [_public_jwk(key)]}, indent=2) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return  # unchanged: keep its mtime still for services that watch it
    except FileNotFoundError:
        pass
    os.replace(_write_temp(directory, text, 0o644), path)


def ensure_signing_key(data_dir: str | os.PathLike) -> OKPKey:
    """Load (creating on first use) the issuer's private Ed25519 JWK and publish jwks.json."""
    directory = _issuer_dir(data_dir)
    path = directory / "signing-key.json"
    try:
        st = path.stat()
    except FileNotFoundError:
        _create_key(directory, path)
        st = path.stat()
    stamp = (st.st_ino, st.st_mtime_ns)
    with _cache_lock:
        hit = _cache.get(str(path))
    if hit and hit[0] == stamp:
        return hit[1]
    jwk = json.loads(path.read_text(encoding="utf-8"))
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" not in jwk:
        raise ValueError(f"{path} is not a private Ed25519 JWK")
    jwk.setdefault("kid", OKPKey.import_key(jwk).thumbprint())
    key = OKPKey.import_key(jwk)
    _publish_jwks(directory, key)
    with _cache_lock:
        _cache[str(path)] = (stamp, key)
    return key


def public_jwks(data_dir: str | os.PathLike) -> dict:
    """The public JWK Set: ``{"keys": [{..., "kid", "alg": "EdDSA", "use": "sig"}]}``."""
    return {"keys": [_public_jwk(ensure_signing_key(data_dir))]}


def mint_token(
    data_dir: str | os.PathLike,
    *,
    sub: str,
    scopes: str | Iterable[str],
    roles: Iterable[dict] = (),
    email: str | None = None,
    name: str | None = None,
    issuer: str,
    audience: str,
    ttl: int = 3600,
    client_id: str | None = None,
    extra_claims: dict | None = None,
) -> str:
    """Sign an RFC 9068-style access token (EdDSA, typ at+jwt).

    ``extra_claims`` are applied last, so tests can also override standard claims
    (e.g. ``{"exp": 0}``) to build deliberately bad tokens.
    """
    key = ensure_signing_key(data_dir)
    if isinstance(scopes, str):
        scopes = scopes.split()
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl),
        "jti": str(uuid.uuid4()),
        "scope": " ".join(dict.fromkeys(scopes)),  # de-duplicated, order kept
        "roles": [{"id": r["id"], "name": r["name"]} for r in roles],
        "client_id": client_id or DIRECT_CLIENT_ID,
    }
    if email is not None:
        claims["email"] = email
    if name is not None:
        claims["name"] = name
    claims.update(extra_claims or {})
    header = {"alg": ALG, "typ": "at+jwt", "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[ALG])
