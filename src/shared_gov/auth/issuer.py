"""The built-in token issuer for the embedded default and the tests.

Its RSA signing key is generated on first use into ``<data_dir>/issuer-key.pem``
with mode 0600 and reused afterwards; its public half is served as a JWKS with
an OpenID discovery document, so the verifier treats it exactly like a town's
own identity provider. Production towns register their own IdP instead.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

ALGORITHM = "RS256"
KEY_FILE = "issuer-key.pem"


@dataclass(frozen=True)
class BuiltinIssuer:
    """An issuer URL, audience and signing key."""

    issuer: str
    audience: str
    key: RSAKey

    @property
    def kid(self) -> str:
        return str(self.key.thumbprint())

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        public.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": [public]}

    def public_keyset(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]

    def discovery(self, base_url: str | None = None) -> dict[str, Any]:
        """The discovery document; ``jwks_uri`` is under the issuer when it is a URL
        (production), else under ``base_url``, where the request reached us (the
        development issuer is a URN: settings.DEV_ISSUER)."""
        url_issuer = self.issuer.startswith(("https://", "http://"))
        base = self.issuer if url_issuer or base_url is None else base_url
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{base.rstrip('/')}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["sub", "tenant", "dept", "roles", "amr", "iss", "aud", "exp"],
        }

    def mint(
        self,
        *,
        subject: str,
        tenant: str | None,
        department: str | None,
        roles: list[str],
        mfa: bool = False,
        ttl_seconds: int = 8 * 3600,
        now: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Sign a token with the claims the API expects."""
        issued = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "roles": roles,
            "amr": ["pwd", "mfa"] if mfa else ["pwd"],
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_seconds,
            "jti": str(uuid.uuid4()),
        }
        if tenant is not None:
            claims["tenant"] = tenant
        if department is not None:
            claims["dept"] = department
        if extra:
            claims.update(extra)
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key)


def load_or_create_key(data_dir: Path) -> RSAKey:
    """Read the issuer key, creating it (mode 0600) on first run."""
    path = data_dir / KEY_FILE
    if path.exists():
        return RSAKey.import_key(path.read_bytes())
    data_dir.mkdir(parents=True, exist_ok=True)
    key = RSAKey.generate_key(2048, private=True)
    pem = key.as_pem(private=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first: use theirs.
        return RSAKey.import_key(path.read_bytes())
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def builtin_issuer(data_dir: Path, issuer: str, audience: str) -> BuiltinIssuer:
    return BuiltinIssuer(issuer=issuer, audience=audience, key=load_or_create_key(data_dir))
