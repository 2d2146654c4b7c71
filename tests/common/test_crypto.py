"""Envelope encryption: data keys wrapped per secret, ciphertext bound to secret and version."""
from __future__ import annotations

import base64
import os
import stat

import pytest

from common import crypto


def _keyring(active="a"):
    return crypto.Keyring({"a": b"A" * 32, "b": b"B" * 32}, active)


def test_round_trip_and_fresh_nonces():
    ring = _keyring()
    key, wrapped = ring.new_data_key("s1")
    assert ring.unwrap(wrapped, "s1") == key
    one = crypto.encrypt_version(key, "s1", 1, b"hello")
    two = crypto.encrypt_version(key, "s1", 1, b"hello")
    assert one != two and b"hello" not in one
    assert crypto.decrypt_version(key, "s1", 1, one) == b"hello"


@pytest.mark.parametrize("secret_id, version", [("s2", 1), ("s1", 2)])
def test_ciphertext_is_bound_to_secret_and_version(secret_id, version):
    key, _ = _keyring().new_data_key("s1")
    sealed = crypto.encrypt_version(key, "s1", 1, b"x")
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt_version(key, secret_id, version, sealed)


def test_wrapped_key_is_bound_to_its_secret():
    ring = _keyring()
    _, wrapped = ring.new_data_key("s1")
    with pytest.raises(crypto.DecryptionFailed):
        ring.unwrap(wrapped, "s2")


def test_rewrap_moves_to_the_active_key_and_keeps_the_data_key():
    old = _keyring("a")
    key, wrapped = old.new_data_key("s1")
    new = _keyring("b")
    rewrapped = new.rewrap(wrapped, "s1")
    assert rewrapped.key_id == "b" and new.unwrap(rewrapped, "s1") == key
    only_b = crypto.Keyring({"b": b"B" * 32}, "b")
    assert only_b.unwrap(rewrapped, "s1") == key
    with pytest.raises(crypto.DecryptionFailed):
        only_b.unwrap(wrapped, "s1")


def test_keyring_spec_parsing_and_errors():
    spec = crypto.generate_master_key_spec("k9")
    ring = crypto.Keyring.from_spec(spec + ",k8:" + base64.urlsafe_b64encode(b"x" * 32).decode())
    assert ring.active_key_id == "k9"
    assert "k9" in repr(ring) and spec.split(":")[1] not in repr(ring)
    for bad in ("", "nokey", "k1:" + base64.urlsafe_b64encode(b"short").decode()):
        with pytest.raises(Exception) as info:
            crypto.Keyring.from_spec(bad)
        assert getattr(info.value, "code", "") == "CONFIGURATION_ERROR"


def test_development_keyring_is_private_and_stable(tmp_path):
    first = crypto.Keyring.development(str(tmp_path))
    second = crypto.Keyring.development(str(tmp_path))
    assert first.active_key_id == second.active_key_id
    mode = stat.S_IMODE(os.stat(tmp_path / "master-keys.json").st_mode)
    assert mode == 0o600
