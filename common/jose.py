"""The JOSE library (joserfc, authlib's successor), imported in one place with one filter.

RFC 9864 deprecates the JWS algorithm name "EdDSA" for the fully specified "Ed25519", and
joserfc warns on every use; issuers (ours included) still sign as "EdDSA", so it stays
accepted, and the notice, which would otherwise land on every process's stderr, is dropped.
"""
import warnings

from joserfc import jws, jwt  # noqa: F401
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet, OKPKey  # noqa: F401

warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

__all__ = ["JoseError", "KeySet", "OKPKey", "jws", "jwt"]
