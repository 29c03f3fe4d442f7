"""Identity: the built-in token issuer and bearer-token verification.

JOSE work uses ``joserfc``, the Authlib project's JOSE library (``authlib.jose``
is deprecated in its favour; see docs/architecture.md).
"""
