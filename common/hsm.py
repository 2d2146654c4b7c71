"""Master keys that never leave a PKCS#11 token (an HSM, or SoftHSM2 in tests).

Data keys are wrapped and unwrapped inside the token with AES-256-GCM (CKM_AES_GCM): a fresh
96-bit IV per wrap, the secret's id as associated data (as the environment keys bind it), so a
wrapped key copied onto another secret fails to unwrap. AES key wrap (RFC 3394) has no
associated data, hence GCM. The keys are made in the token as sensitive and non-extractable
(`vault-admin hsm-create-key LABEL`); their ids in the database are `pkcs11:LABEL`.

One session per process, opened on first use (after gunicorn's fork: PKCS#11 state does not
survive a fork) and used under a lock. When an operation fails the session is dropped and the
library re-initialised once (a token pulled and put back, a network HSM's connection lost);
if that fails too the HSM is unavailable and the request is a 503 with nothing written (writes
wrap before their transaction commits). A wrapped key that fails to unwrap on a fresh session
is bad data, not an outage: DecryptionFailed.

The PIN is read from a file (VAULT_PKCS11_PIN_FILE), when a session opens, never kept in the
environment; a changed file is read at the next reconnect.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path

from common import crypto

log = logging.getLogger(__name__)

KEY_ID_PREFIX = "pkcs11:"
GCM_IV_BYTES = 12
GCM_TAG_BITS = 128


def key_id(label: str) -> str:
    return KEY_ID_PREFIX + label


class Pkcs11Keys(crypto.KeyProvider):
    kind = "pkcs11"

    def __init__(self, module: str, token_label: str, pin_file: str, labels: list[str]):
        self.module, self.token_label, self.pin_file = module, token_label, pin_file
        self.labels = list(labels)
        self.key_ids = tuple(key_id(label) for label in labels)
        self._lock = threading.Lock()
        self._lib = None
        self._session = None
        self._keys: dict[str, object] = {}
        self._pid = None

    def __repr__(self):
        return f"Pkcs11Keys(token={self.token_label!r}, key_ids={list(self.key_ids)})"

    # --- the two operations -----------------------------------------------

    def seal(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        iv = secrets.token_bytes(GCM_IV_BYTES)
        # A wrap that fails twice is the HSM's fault whatever it says: nothing was stored yet.
        return iv + self._run(key_id, "encrypt", plaintext, iv, aad, bad_data=crypto.KeyProviderUnavailable)

    def open(self, key_id: str, sealed: bytes, aad: bytes) -> bytes:
        return self._run(key_id, "decrypt", sealed[GCM_IV_BYTES:], sealed[:GCM_IV_BYTES], aad,
                         bad_data=crypto.DecryptionFailed)

    def _run(self, key_id: str, operation: str, data: bytes, iv: bytes, aad: bytes, *, bad_data):
        import pkcs11
        from pkcs11.mechanisms import GCMParams

        label = key_id[len(KEY_ID_PREFIX):]
        with self._lock:
            for attempt in (1, 2):
                key = self._key(label, fresh=attempt == 2)
                try:
                    return getattr(key, operation)(data, mechanism=pkcs11.Mechanism.AES_GCM,
                                                   mechanism_param=GCMParams(iv, aad, GCM_TAG_BITS))
                except (pkcs11.PKCS11Error, RuntimeError) as exc:
                    # SoftHSM answers a bad tag and a vanished token alike (CKR_GENERAL_ERROR),
                    # so only a fresh session tells them apart.
                    log.warning("PKCS#11 operation failed", extra={"exception_type": type(exc).__name__,
                                                                   "attempt": attempt})
                    self._drop()
            raise bad_data()

    # --- session ------------------------------------------------------------

    def _key(self, label: str, *, fresh: bool):
        """The key object in this process's session, opening one when there is none (or when
        `fresh`); KeyProviderUnavailable when the token cannot be reached."""
        if self._session is None or self._pid != os.getpid() or fresh:
            self._connect()
        key = self._keys.get(label)
        if key is None:
            raise crypto.KeyProviderUnavailable(f"master key {key_id(label)!r} is not in the key provider")
        return key

    def _connect(self) -> None:
        import pkcs11

        self._drop()
        try:
            if self._lib is None or self._pid != os.getpid():
                self._lib = pkcs11.lib(self.module)
            else:
                # A session is opened again only after a failure (or close): C_Finalize +
                # C_Initialize makes the library forget a token that went away and find it back.
                self._lib.reinitialize()
            token = self._lib.get_token(token_label=self.token_label)
            try:
                session = token.open(user_pin=read_pin(self.pin_file))
            except pkcs11.UserAlreadyLoggedIn:
                # Login is per process in PKCS#11: another session of this process (a second
                # keyring, as in a test or a command beside an app) has logged in already.
                session = token.open()
            keys = {}
            for label in self.labels:
                try:
                    keys[label] = session.get_key(label=label, key_type=pkcs11.KeyType.AES,
                                                  object_class=pkcs11.ObjectClass.SECRET_KEY)
                except pkcs11.NoSuchKey:
                    log.error("master key not in the token", extra={"key_label": label})
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            log.warning("PKCS#11 token unreachable", extra={"exception_type": type(exc).__name__})
            raise crypto.KeyProviderUnavailable() from None
        self._session, self._keys, self._pid = session, keys, os.getpid()

    def _drop(self) -> None:
        session, self._session, self._keys = self._session, None, {}
        if session is not None and self._pid == os.getpid():
            try:
                session.close()
            except Exception:  # the token may be gone: nothing left to close
                pass

    def close(self) -> None:
        with self._lock:
            self._drop()

    # --- operator command ---------------------------------------------------

    def create_key(self, label: str) -> str:
        """Make an AES-256 master key in the token: a token object, sensitive, never
        extractable, for encrypt/decrypt only. Refuses a label already there."""
        import pkcs11

        with self._lock:
            self._connect()
            try:
                self._session.get_key(label=label, key_type=pkcs11.KeyType.AES, object_class=pkcs11.ObjectClass.SECRET_KEY)
            except pkcs11.NoSuchKey:
                pass
            else:
                raise ValueError(f"the token already holds a key labelled {label!r}")
            finally:
                self._drop()
            lib_token = self._lib.get_token(token_label=self.token_label)
            with lib_token.open(user_pin=read_pin(self.pin_file), rw=True) as session:
                session.generate_key(pkcs11.KeyType.AES, 256, label=label, store=True, template={
                    pkcs11.Attribute.SENSITIVE: True, pkcs11.Attribute.EXTRACTABLE: False,
                    pkcs11.Attribute.ENCRYPT: True, pkcs11.Attribute.DECRYPT: True,
                    pkcs11.Attribute.WRAP: False, pkcs11.Attribute.UNWRAP: False,
                })
        return key_id(label)


def read_pin(path: str) -> str:
    """The user PIN: the file's first line (a trailing newline is not part of it)."""
    return Path(path).read_text(encoding="utf-8").splitlines()[0] if Path(path).stat().st_size else ""


def from_settings(settings) -> Pkcs11Keys | None:
    if not settings.get("VAULT_PKCS11_MODULE"):
        return None
    return Pkcs11Keys(settings["VAULT_PKCS11_MODULE"], settings["VAULT_PKCS11_TOKEN_LABEL"],
                      settings["VAULT_PKCS11_PIN_FILE"], settings["VAULT_PKCS11_KEY_LABELS"])
