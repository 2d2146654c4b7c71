"""authlib's JOSE API, imported once without its deprecation notice.

authlib.jose announces joserfc as its successor on import; it is still the supported
API of Authlib 1.x, and the notice would otherwise land on every process's stderr.
"""
import warnings

import authlib.deprecate  # noqa: F401  (registers authlib's own warning filter before we narrow it)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*authlib\.jose module is deprecated", category=DeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken  # noqa: F401
    from authlib.jose.errors import JoseError  # noqa: F401
    from authlib.jose.rfc7517 import Key  # noqa: F401
