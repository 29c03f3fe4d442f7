"""Bearer-token verification.

Checks, in order: size (8 KB cap, before any parsing), header algorithm
against the pinned list (never ``none``, never HS* for a public-key issuer),
signature against the issuer's JWKS, then ``iss``, ``aud``, ``exp``, ``nbf``
and the claims we need (``sub``; ``tenant`` unless the token is an
operator's). Every failure is the same 401 to the client; the log line says
which check failed and never carries token content.

Verified tokens are cached by their exact string for at most their remaining
lifetime (and ``exp``/``nbf`` are re-checked on every hit), which takes the
RSA verification off the hot path for the common case of a client reusing
its token.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from shared_gov import errors
from shared_gov.auth.principal import ROLES, Principal
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.logs import get_logger

log = get_logger(__name__)

MAX_TOKEN_BYTES = 8192
LEEWAY_SECONDS = 30


class TokenVerifier:
    """Verifies tokens of one issuer (the built-in one, for now)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: KeySet,
        algorithms: tuple[str, ...] = ("RS256",),
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        if not algorithms or any(a == "none" or a.startswith("HS") for a in algorithms):
            raise ValueError("public-key issuers may only pin asymmetric algorithms")
        self.issuer = issuer
        self.audience = audience
        self._keys = keys
        self._algorithms = algorithms
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[Principal, int, int]] = OrderedDict()
        self._cache_size = cache_size

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises a 401 DomainError otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            return self._reject("too_large")
        now = int(self._clock())
        digest = hashlib.blake2b(token.encode(), digest_size=20).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            principal, exp, nbf = cached
            if nbf - LEEWAY_SECONDS <= now < exp + LEEWAY_SECONDS:
                self._cache.move_to_end(digest)
                return principal
            del self._cache[digest]
        try:
            decoded = jwt.decode(token, self._keys, algorithms=list(self._algorithms))
        except JoseError as exc:
            return self._reject(type(exc).__name__)
        except (ValueError, TypeError, KeyError):
            return self._reject("malformed")
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            return self._reject(type(exc).__name__)
        verified = _principal_from_claims(claims)
        if verified is None:
            return self._reject("claims")
        exp = int(claims["exp"])
        nbf = int(claims.get("nbf", now))
        self._cache[digest] = (verified, exp, nbf)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return verified

    def _reject(self, reason: str) -> Principal:
        log.info("auth.rejected", reason=reason)
        raise errors.unauthorized()


def _principal_from_claims(claims: dict[str, object]) -> Principal | None:
    sub = claims.get("sub")
    roles_claim = claims.get("roles", [])
    amr_claim = claims.get("amr", [])
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        return None
    if not isinstance(roles_claim, list) or not all(isinstance(r, str) for r in roles_claim):
        return None
    if not isinstance(amr_claim, list) or not all(isinstance(a, str) for a in amr_claim):
        return None
    roles = frozenset(roles_claim) & ROLES
    tenant = claims.get("tenant")
    dept = claims.get("dept")
    if "operator" in roles:
        # Platform operators belong to no town.
        if tenant is not None:
            return None
        return Principal(sub, None, None, frozenset({"operator"}), frozenset(amr_claim))
    if not isinstance(tenant, str) or not is_valid_lgcode(tenant):
        return None
    if dept is not None and (not isinstance(dept, str) or len(dept) > 32):
        return None
    if not roles:
        return None
    return Principal(sub, tenant, dept, roles, frozenset(amr_claim))
