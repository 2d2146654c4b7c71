"""Hostile tokens: each is a 401 in the envelope whose message names the failed check, never a value.

The forgeries are signed for real: with a stranger's key, with the issuer's public key used as
an HMAC secret, and with the issuer's own private key around a header or claims it must refuse
(so the refusal is the check under test, not a bad signature).
"""
from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid

import pytest
from joserfc.jwk import OctKey

from common.devtools.issuer.keys import ensure_signing_key
from common.jose import OKPKey, jws
from tests.support import AUDIENCE, ISSUER
from tests.vault.helpers import V1, assert_error

SECRET_LOOKING = "s3cr3t-looking-value"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def b64json(obj) -> str:
    return b64(json.dumps(obj).encode())


def claims(**overrides) -> dict:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 300,
            "scope": "admin user"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def sign(header: dict, payload: dict, key) -> str:
    """A compact JWS over exactly this header (no library check on what the header holds)."""
    signing_input = f"{b64json(header)}.{b64json(payload)}".encode()
    alg = jws.JWSRegistry.algorithms[header["alg"]]
    return f"{signing_input.decode()}.{b64(alg.sign(signing_input, key))}"


@pytest.fixture(scope="module")
def issuer_key(data_dir):
    return ensure_signing_key(data_dir)


def trusted(issuer_key, header_extra=None, **claim_overrides) -> str:
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": issuer_key.kid, **(header_extra or {})}
    return sign(header, claims(**claim_overrides), issuer_key)


def rejected(client, token: str, check: str):
    response = client.get(f"{V1}/secrets", headers={"Authorization": f"Bearer {token}"})
    body = assert_error(response, 401, "UNAUTHORIZED")
    assert body["error_message"] == f"invalid token: {check}", body
    for leak in (ISSUER, AUDIENCE, SECRET_LOOKING, "evil"):
        assert leak not in body["error_message"]
    return body


class NoRequestsListener:
    """A local TCP listener standing in for the URL a token names; it records every connection."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/jwks.json"
        self.connections = 0
        self._running = True
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while self._running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._running = False
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture()
def listener():
    server = NoRequestsListener()
    yield server
    server.close()


def test_the_baseline_forgery_helper_makes_a_token_that_is_accepted(client, issuer_key):
    # Every test below changes one thing in this token; it must itself be good.
    response = client.get(f"{V1}/secrets", headers={"Authorization": f"Bearer {trusted(issuer_key)}"})
    assert response.status_code == 200, response.json


def test_alg_none(client):
    token = f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(claims())}."
    rejected(client, token, "algorithm not allowed")


def test_hs256_keyed_with_the_issuers_public_key(client, data_dir, issuer_key):
    # Algorithm confusion: a verifier that lets the token pick HMAC would use the public key as the secret.
    public = json.loads(open(f"{data_dir}/issuer/jwks.json").read())["keys"][0]
    for secret in (public["x"].encode(), json.dumps(public).encode()):
        token = sign({"alg": "HS256", "typ": "JWT", "kid": issuer_key.kid}, claims(), OctKey.import_key(secret))
        rejected(client, token, "algorithm not allowed")


def test_embedded_jwk(client, issuer_key):
    stranger = OKPKey.generate_key("Ed25519", private=True)
    header = {"alg": "EdDSA", "typ": "JWT", "jwk": stranger.as_dict(private=False)}
    rejected(client, sign(header, claims(), stranger), "embedded or remote keys are not trusted")
    # Even beside a kid that names the trusted key, and signed by it: a token never brings a key.
    rejected(client, trusted(issuer_key, {"jwk": stranger.as_dict(private=False)}),
             "embedded or remote keys are not trusted")


@pytest.mark.parametrize("parameter", ["jku", "x5u"])
def test_remote_key_urls_are_refused_and_never_fetched(client, issuer_key, listener, parameter):
    stranger = OKPKey.generate_key("Ed25519", private=True)
    header = {"alg": "EdDSA", "typ": "JWT", "kid": "attacker-key", parameter: listener.url}
    rejected(client, sign(header, claims(), stranger), "embedded or remote keys are not trusted")
    rejected(client, trusted(issuer_key, {parameter: listener.url}), "embedded or remote keys are not trusted")
    time.sleep(0.5)  # a fetch the service started would have connected by now
    assert listener.connections == 0


def test_x5c_chain_is_refused(client, issuer_key):
    rejected(client, trusted(issuer_key, {"x5c": ["MIIB"]}), "embedded or remote keys are not trusted")


@pytest.mark.parametrize("kid", ["../../../../../../etc/passwd", "../issuer/signing-key.json", "/dev/null",
                                 "' OR '1'='1", "%2e%2e%2f", "\u0000"])
def test_kid_traversal_finds_no_key(client, issuer_key, kid):
    rejected(client, trusted(issuer_key, {"kid": kid}), "unknown signing key")


def test_non_string_kid(client, issuer_key):
    rejected(client, trusted(issuer_key, {"kid": {"path": "/etc/passwd"}}), "malformed key id")


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["kid"]])
def test_any_crit_is_refused(client, issuer_key, crit):
    rejected(client, trusted(issuer_key, {"crit": crit, "exp": 1, "b64": True}), "unsupported critical header")


def test_expired(client, issuer_key):
    now = int(time.time())
    rejected(client, trusted(issuer_key, iat=now - 600, nbf=now - 600, exp=now - 120), "expired")


def test_not_yet_valid(client, issuer_key):
    now = int(time.time())
    rejected(client, trusted(issuer_key, iat=now, nbf=now + 600, exp=now + 900), "not yet valid")


def test_issued_in_the_future(client, issuer_key):
    now = int(time.time())
    rejected(client, trusted(issuer_key, iat=now + 600, nbf=None, exp=now + 900), "issued in the future")


def test_wrong_issuer(client, issuer_key):
    rejected(client, trusted(issuer_key, iss="evil-issuer"), "wrong issuer")
    rejected(client, trusted(issuer_key, iss=None), "wrong issuer")


def test_wrong_audience(client, issuer_key):
    rejected(client, trusted(issuer_key, aud="evil-audience"), "wrong audience")
    rejected(client, trusted(issuer_key, aud=["evil", SECRET_LOOKING]), "wrong audience")
    rejected(client, trusted(issuer_key, aud=None), "wrong audience")


def test_an_audience_list_naming_us_is_accepted(client, issuer_key):
    token = trusted(issuer_key, aud=["another-service", AUDIENCE])
    assert client.get(f"{V1}/secrets", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_tampered_payload(client, issuer_key):
    header, _, signature = trusted(issuer_key, scope="user").split(".")
    rejected(client, f"{header}.{b64json(claims(scope='admin'))}.{signature}", "bad signature")


def test_tampered_header(client, issuer_key):
    _, payload, signature = trusted(issuer_key).split(".")
    header = b64json({"alg": "EdDSA", "typ": "JWT", "kid": issuer_key.kid, "cty": "JWT"})
    rejected(client, f"{header}.{payload}.{signature}", "bad signature")


def test_unregistered_header_parameters_are_refused(client, issuer_key):
    rejected(client, trusted(issuer_key, {"x-private": SECRET_LOOKING}), "unsupported header")


def test_signed_by_a_stranger_with_our_kid(client, issuer_key):
    stranger = OKPKey.generate_key("Ed25519", private=True)
    rejected(client, sign({"alg": "EdDSA", "typ": "JWT", "kid": issuer_key.kid}, claims(), stranger), "bad signature")


@pytest.mark.parametrize("exp", [10**20, 2**63, 1e300])
def test_lifetime_above_the_maximum(client, issuer_key, exp):
    rejected(client, trusted(issuer_key, exp=exp), "lifetime too long")


def test_lifetime_is_measured_from_iat_or_nbf(client, issuer_key):
    now = int(time.time())
    rejected(client, trusted(issuer_key, iat=None, nbf=now, exp=now + 86400 + 60), "lifetime too long")
    rejected(client, trusted(issuer_key, iat=now, nbf=None, exp=now + 86400 + 60), "lifetime too long")
    rejected(client, trusted(issuer_key, iat=None, nbf=None, exp=now + 86400 + 60), "lifetime too long")
    token = trusted(issuer_key, iat=now, nbf=None, exp=now + 86400)
    assert client.get(f"{V1}/secrets", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("claim,value", [("exp", "tomorrow"), ("exp", True), ("nbf", [1]), ("iat", {"a": 1})])
def test_times_that_are_not_numbers(client, issuer_key, claim, value):
    rejected(client, trusted(issuer_key, **{claim: value}), f"malformed {claim}")


def test_non_finite_times_in_the_payload(client, issuer_key):
    header = {"alg": "EdDSA", "typ": "JWT", "kid": issuer_key.kid}
    payload = json.dumps(claims()).replace(f'"exp": {claims()["exp"]}', '"exp": NaN').encode()
    signing_input = f"{b64json(header)}.{b64(payload)}".encode()
    token = f"{signing_input.decode()}.{b64(issuer_key.get_op_key('sign').sign(signing_input))}"
    rejected(client, token, "malformed claims")


def test_missing_expiry(client, issuer_key):
    rejected(client, trusted(issuer_key, exp=None), "no expiry")


@pytest.mark.parametrize("sub", [None, "", 42])
def test_missing_or_bad_subject(client, issuer_key, sub):
    rejected(client, trusted(issuer_key, sub=sub), "no subject")


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "application/at+jwt", "jwt"])
def test_accepted_types(client, issuer_key, typ):
    token = trusted(issuer_key, {"typ": typ})
    assert client.get(f"{V1}/secrets", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("typ", ["JWE", "dpop+jwt", "secevent+jwt", 1, None])
def test_other_types_are_refused(client, issuer_key, typ):
    rejected(client, trusted(issuer_key, {"typ": typ}), "wrong type")


@pytest.mark.parametrize("token,check", [
    ("WzFd.e30.x", "malformed header"),          # the header is JSON, but a list
    ("bnVsbA.e30.x", "malformed header"),        # null
    ("IngiIA.e30.x", "malformed header"),        # a string
    ("eyJhbGciOiJFZERTQSJ9", "malformed"),       # one segment
    ("a.b.c.d.e", "malformed"),                  # JWE-shaped
    ("!!!.e30.x", "malformed header"),
    ("e30.e30.x", "algorithm not allowed"),      # {} has no alg
])
def test_malformed_tokens(client, token, check):
    rejected(client, token, check)


def test_payload_that_is_not_an_object(client, issuer_key):
    header = {"alg": "EdDSA", "typ": "JWT", "kid": issuer_key.kid}
    signing_input = f"{b64json(header)}.{b64json([1, 2])}".encode()
    token = f"{signing_input.decode()}.{b64(issuer_key.get_op_key('sign').sign(signing_input))}"
    rejected(client, token, "malformed claims")


def test_token_over_8_kib(client, issuer_key):
    rejected(client, trusted(issuer_key, padding="x" * 9000), "too large")
