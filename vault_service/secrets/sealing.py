"""Secret data <-> ciphertext, through the secret's own data key."""
from __future__ import annotations

import json

from common import crypto, current


def keyring() -> crypto.Keyring:
    return current.app().extensions["keyring"]


# json.dumps with these settings would build an encoder on every call (a write serialises twice:
# the size check and the seal).
_SERIALIZER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def serialize(data) -> bytes:
    return _SERIALIZER.encode(data).encode()


def new_data_key(secret_id: str) -> tuple[bytes, crypto.WrappedKey]:
    return keyring().new_data_key(secret_id)


def data_key_of(secret: dict, ring: crypto.Keyring | None = None) -> bytes:
    """The secret's data key; `ring`: the app's keyring, when the caller has it at hand (a list
    unseals a hundred rows)."""
    return (ring or keyring()).unwrap_stored(secret["dek_key_id"], bytes(secret["dek_wrapped"]), str(secret["id"]))


def seal(data_key: bytes, secret: dict, version: int, data) -> bytes:
    return crypto.encrypt_version(data_key, str(secret["id"]), version, serialize(data))


def unseal(secret: dict, version: int, ciphertext: bytes, ring: crypto.Keyring | None = None):
    return unseal_with(data_key_of(secret, ring), secret, version, ciphertext)


def unseal_with(data_key: bytes, secret: dict, version: int, ciphertext: bytes):
    """unseal() with the secret's data key already unwrapped (several versions of one secret)."""
    plaintext = crypto.decrypt_version(data_key, str(secret["id"]), version, bytes(ciphertext))
    # serialize() made UTF-8: decoded here, json skips guessing the encoding (lists unseal a hundred)
    return json.loads(plaintext.decode())
