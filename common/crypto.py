"""Envelope encryption of secret data with XChaCha20-Poly1305 (pynacl).

Each secret has its own random data key. The data key is stored wrapped (encrypted)
by a master key from the keyring, tagged with that key's id, so a master key can be
rotated by re-wrapping data keys without touching any version's ciphertext.

Master keys live with a KeyProvider: the environment (EnvironmentKeys, here) or an HSM
through PKCS#11 (common/hsm.py). The Keyring routes each key id to its provider and keeps
a bounded cache of unwrapped data keys.

Associated data binds every ciphertext to where it belongs: a data key to its secret
id, a version's ciphertext to its secret id and version number. A ciphertext copied
onto another row therefore fails authentication instead of decrypting.
"""
from __future__ import annotations

import base64
import functools
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from nacl import bindings
from nacl._sodium import ffi as _ffi, lib as _lib

from common import errors

KEY_BYTES = bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_BYTES = bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_TAG_BYTES = bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES


class DecryptionFailed(errors.ApiError):
    """Ciphertext did not authenticate: tampered, misplaced, or the wrong key."""

    status, code, default_message = 500, "GENERAL_ERROR", "stored secret could not be decrypted"


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """libsodium's XChaCha20-Poly1305 decryption, called as PyNaCl's binding calls it but
    without that binding's checks of each argument's type and length (their messages are
    formatted on every call: a fifth of a read's decryption, a hundred times in a list, issue
    25): every argument comes from here, bytes of the lengths checked below."""
    length = len(sealed) - NONCE_BYTES
    if length < _TAG_BYTES or len(key) != KEY_BYTES:
        raise DecryptionFailed()
    message = _ffi.new("unsigned char[]", length - _TAG_BYTES)
    message_length = _ffi.new("unsigned long long *")
    if _lib.crypto_aead_xchacha20poly1305_ietf_decrypt(message, message_length, _ffi.NULL, sealed[NONCE_BYTES:], length,
                                                       aad, len(aad), sealed[:NONCE_BYTES], key) != 0:
        raise DecryptionFailed()
    return _ffi.buffer(message, message_length[0])[:]


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class WrappedKey:
    key_id: str
    wrapped: bytes


UNWRAPPED_KEYS_CACHED = 4096  # data keys kept unwrapped per process (32 bytes each), by default


class KeyProviderUnavailable(errors.ApiError):
    """The master keys' holder (an HSM) cannot be reached: the request is refused whole (503)."""

    status, code, default_message = 503, "INTRA_SERVICE_COMMUNICATION_ERROR", "the key provider is unavailable"


class KeyProvider:
    """Where some master keys live. Each key id names one key of one provider; a provider
    wraps a data key with one of its keys (`seal`) and unwraps it (`open`), binding it to the
    associated data. `open` raises DecryptionFailed when the wrapped key does not
    authenticate, KeyProviderUnavailable when the keys cannot be reached."""

    kind = "abstract"
    key_ids: tuple[str, ...] = ()

    def seal(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        raise NotImplementedError

    def open(self, key_id: str, sealed: bytes, aad: bytes) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        """Let go of sessions and handles (a CLI's end, a test's)."""


class EnvironmentKeys(KeyProvider):
    """Master keys held in this process's memory (VAULT_MASTER_KEYS, or the development file);
    XChaCha20-Poly1305 like the data itself."""

    kind = "environment"

    def __init__(self, keys: dict[str, bytes]):
        for key_id, key in keys.items():
            if len(key) != KEY_BYTES:
                raise errors.ApiError(f"master key {key_id!r} must be {KEY_BYTES} bytes", code="CONFIGURATION_ERROR")
        self._keys = dict(keys)
        self.key_ids = tuple(keys)

    def __repr__(self):  # never show key material
        return f"EnvironmentKeys(key_ids={sorted(self._keys)})"

    def seal(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        return _seal(self._keys[key_id], plaintext, aad)

    def open(self, key_id: str, sealed: bytes, aad: bytes) -> bytes:
        return _open(self._keys[key_id], sealed, aad)


class Keyring:
    """The master keys of every configured provider, by id; new data keys are wrapped with the
    active one, and any configured key unwraps what it wrapped (so a rotation, or a move from
    the environment to an HSM, is a re-wrap while both are configured)."""

    def __init__(self, keys: dict[str, bytes] | list[KeyProvider], active_key_id: str, *,
                 cache_size: int = UNWRAPPED_KEYS_CACHED):
        providers = [EnvironmentKeys(keys)] if isinstance(keys, dict) else list(keys)
        self._provider_of: dict[str, KeyProvider] = {}
        for provider in providers:
            for key_id in provider.key_ids:
                if key_id in self._provider_of:
                    raise errors.ApiError(f"master key id {key_id!r} is configured twice", code="CONFIGURATION_ERROR")
                self._provider_of[key_id] = provider
        if active_key_id not in self._provider_of:
            raise errors.ApiError(f"active master key {active_key_id!r} is not in the keyring", code="CONFIGURATION_ERROR")
        self.providers = providers
        self.active_key_id = active_key_id
        # Unwrapping is a pure function of (master key id, wrapped key, secret id), so each
        # hot secret pays for it (an HSM round trip, with PKCS#11) once per process, not once
        # per read; the cache is bounded, least recently used out first. It holds no more than
        # what the master keys reachable from this process already let anyone here derive.
        self._unwrap_cached = functools.lru_cache(maxsize=cache_size)(self._unwrap)

    def __repr__(self):  # never show key material
        return f"Keyring(key_ids={self.key_ids}, active={self.active_key_id!r})"

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._provider_of)

    def provider_kind(self, key_id: str) -> str | None:
        provider = self._provider_of.get(key_id)
        return provider.kind if provider else None

    def cache_info(self):
        return self._unwrap_cached.cache_info()

    def close(self) -> None:
        for provider in self.providers:
            provider.close()

    @classmethod
    def from_spec(cls, spec: str, active_key_id: str | None = None) -> "Keyring":
        """Parse `kid:base64url,kid2:base64url`; the first is active unless named."""
        keys = environment_keys(spec)
        return cls([keys], active_key_id or keys.key_ids[0])

    @classmethod
    def development(cls, data_dir: str) -> "Keyring":
        keys, active = development_keys(data_dir)
        return cls([keys], active)

    def new_data_key(self, secret_id: str) -> tuple[bytes, WrappedKey]:
        data_key = secrets.token_bytes(KEY_BYTES)
        return data_key, self.wrap(data_key, secret_id)

    def wrap(self, data_key: bytes, secret_id: str) -> WrappedKey:
        provider = self._provider_of[self.active_key_id]
        return WrappedKey(self.active_key_id, provider.seal(self.active_key_id, data_key, _data_key_aad(secret_id)))

    def unwrap(self, wrapped: WrappedKey, secret_id: str) -> bytes:
        return self._unwrap_cached(wrapped.key_id, wrapped.wrapped, secret_id)

    def unwrap_stored(self, key_id: str, wrapped: bytes, secret_id: str) -> bytes:
        """unwrap() of a stored (key id, wrapped key) pair, without making a WrappedKey first."""
        return self._unwrap_cached(key_id, wrapped, secret_id)

    def _unwrap(self, key_id: str, wrapped: bytes, secret_id: str) -> bytes:
        provider = self._provider_of.get(key_id)
        if provider is None:
            raise DecryptionFailed(f"master key {key_id!r} is not configured")
        return provider.open(key_id, wrapped, _data_key_aad(secret_id))

    def rewrap(self, wrapped: WrappedKey, secret_id: str) -> WrappedKey:
        """The same data key, wrapped by the active master key."""
        return self.wrap(self.unwrap(wrapped, secret_id), secret_id)


def environment_keys(spec: str) -> EnvironmentKeys:
    """`kid:base64url,kid2:base64url` (VAULT_MASTER_KEYS), in order."""
    keys = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise errors.ApiError("VAULT_MASTER_KEYS entries must look like kid:base64url-key", code="CONFIGURATION_ERROR")
        keys[key_id] = _b64decode(encoded)
    if not keys:
        raise errors.ApiError("VAULT_MASTER_KEYS is empty", code="CONFIGURATION_ERROR")
    return EnvironmentKeys(keys)


def development_keys(data_dir: str) -> tuple[EnvironmentKeys, str]:
    """Keys kept in DATA_DIR/master-keys.json, created on first use (development only), and the active id."""
    path = Path(data_dir, "master-keys.json")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key_id = "dev-" + secrets.token_hex(4)
        body = {"active": key_id, "keys": {key_id: base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()}}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(body, handle)
        try:
            os.link(tmp, path)  # fails if another process won the race: use theirs
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    body = json.loads(path.read_text())
    return EnvironmentKeys({kid: _b64decode(key) for kid, key in body["keys"].items()}), body["active"]


def _data_key_aad(secret_id: str) -> bytes:
    return f"data-key|{secret_id}".encode()


def _version_aad(secret_id: str, version: int) -> bytes:
    return f"version|{secret_id}|{version}".encode()


def encrypt_version(data_key: bytes, secret_id: str, version: int, plaintext: bytes) -> bytes:
    return _seal(data_key, plaintext, _version_aad(secret_id, version))


def decrypt_version(data_key: bytes, secret_id: str, version: int, ciphertext: bytes) -> bytes:
    return _open(data_key, ciphertext, _version_aad(secret_id, version))


def generate_master_key_spec(key_id: str) -> str:
    """A new `kid:base64url` entry for VAULT_MASTER_KEYS."""
    return f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip('=')}"
