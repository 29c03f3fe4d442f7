"""Bearer-token verification for the built-in issuer and towns' own issuers.

Checks, in order: size (8 KB cap, before any parsing); the ``iss`` claim,
read from the still-unverified token, picks the issuer — the built-in one,
or a town's from the in-memory :class:`~shared_gov.auth.registry.IssuerRegistry`
(unknown issuers are refused without a database query or a fetch); the
header algorithm against that issuer's pinned list (never ``none``, never
HS*); the key by ``kid`` (a town's JWKS is refetched for an unknown kid, at
most once per 30 s); the signature; then ``iss``, ``aud``, ``exp``, ``nbf``
and the claims we need; every string claim the service uses (subject,
tenant, department, each role and ``amr`` value) must be printable text (a
control character such as NUL is refused, never stripped: ``a\\u0000b`` must
not become the actor ``ab``); and the token's lifetime (``exp`` − ``iat``, or
``exp`` − now without ``iat``) must not exceed the configured maximum (12 h
by default; integrations' machine tokens have their own maximum). Every
failure is a 401 whose ``detail`` says which check failed, in a fixed
sentence of the catalogue (:mod:`shared_gov.messages.tokens`) that quotes
nothing of the token — only what the service expects (its own issuer and
audience, the longest lifetime); the log line names the precise check and
never carries token content either.

Built-in tokens name their town in a ``tenant`` claim and may act for any
town (it is the platform's issuer); a built-in ``supplier`` token names no
town and no department, only its subject, a supplier key (development mints
them; ``shared-gov token --supplier KEY``). A town issuer's tokens act for that town
only: the principal's tenant is the issuer's town, a ``tenant`` claim naming
another town is refused, staff id, department and roles come from the claims
the town configured, and roles are limited to staff, admin, auditor and
integration (a department system's client) — a town's IdP can never make an
operator.

Verified tokens are cached by their exact string for at most their remaining
lifetime (``exp``/``nbf`` re-checked on every hit), which takes the signature
check off the hot path for a client reusing its token. A cached town token
is only reused while its issuer's registry entry is the same object and its
key is still published, so removing an issuer or rotating a key out takes
effect on the next request.

A refusal is a :class:`TokenRejected` (a 401 saying which check failed): it names
the check that failed (``failure``; ``kind`` is its short wording for the
audit log) and the town the unverified token points at, if any (the
registered issuer's town, else a well-formed ``tenant`` claim), so that the
authentication middleware can record the failed login in that town's log.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import CompactSignature

from shared_gov import errors
from shared_gov.auth.principal import ROLES, Principal
from shared_gov.auth.registry import IssuerEntry, IssuerRegistry
from shared_gov.auth.subjects import person_key
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.logs import get_logger
from shared_gov.messages import tokens as m

log = get_logger(__name__)

SUPPLIER_KEY = re.compile(r"[0-9]{13}|T[0-9]{13}|X-[A-Z0-9]{6,32}")
"""A supplier's platform-wide identity (法人番号, T-number, or an id the platform assigned)."""
MAX_TOKEN_BYTES = 8192
LEEWAY_SECONDS = 30
TOWN_ROLES = frozenset({"staff", "admin", "auditor", "integration"})
"""What a town's own IdP may grant; ``operator`` is the platform's alone."""
MAX_LIFETIME_SECONDS = 12 * 3600
"""Default longest token lifetime for people (staff, admins, auditors, operators)."""
MAX_INTEGRATION_LIFETIME_SECONDS = 24 * 3600
"""Default longest lifetime of a token whose only role is ``integration``."""

# (principal, exp, nbf, issuer entry or None for the built-in issuer, kid)
_Cached = tuple[Principal, int, int, IssuerEntry | None, str | None]


class TokenVerifier:
    """Verifies tokens of the built-in issuer and of the towns' registered issuers."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: KeySet,
        algorithms: tuple[str, ...] = ("RS256",),
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
        registry: IssuerRegistry | None = None,
        builtin_for_towns: bool = True,
        max_lifetime: int = MAX_LIFETIME_SECONDS,
        max_integration_lifetime: int = MAX_INTEGRATION_LIFETIME_SECONDS,
    ) -> None:
        if not algorithms or any(a == "none" or a.startswith("HS") for a in algorithms):
            raise ValueError("public-key issuers may only pin asymmetric algorithms")
        self.issuer = issuer
        self.audience = audience
        self.registry = registry
        """Towns' issuers; None means built-in tokens only."""
        self.builtin_for_towns = builtin_for_towns
        """Whether built-in tokens may act as a town's staff (development only:
        whoever holds the built-in key could otherwise mint any town's staff)."""
        self.max_lifetime = max_lifetime
        """Longest accepted ``exp`` − ``iat`` (or ``exp`` − now), in seconds."""
        self.max_integration_lifetime = max_integration_lifetime
        """The same for tokens whose only role is ``integration`` (a department system)."""
        self._keys = keys
        self._algorithms = algorithms
        self._clock = clock
        self._cache: OrderedDict[bytes, _Cached] = OrderedDict()
        self._cache_size = cache_size

    def invalidate_issuers(self, tenant: str = "*") -> None:
        """Drop cached issuer configuration (a ChangeListener callback)."""
        if self.registry is not None:
            self.registry.invalidate(tenant)

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises a 401 DomainError otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            _reject("too_large")
        now = int(self._clock())
        digest = hashlib.blake2b(token.encode(), digest_size=20).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            principal, exp, nbf, entry, kid = cached
            if nbf - LEEWAY_SECONDS <= now < exp + LEEWAY_SECONDS and await self._still_trusted(
                entry, kid
            ):
                if digest in self._cache:
                    self._cache.move_to_end(digest)
                return principal
            self._cache.pop(digest, None)
        obj, claims = _parse(token)
        iss = claims.get("iss")
        try:
            if iss == self.issuer:
                principal, exp, nbf = self._verify_builtin(obj, claims, now)
                entry, kid = None, None
            else:
                entry = await self._entry(iss)
                kid = obj.headers().get("kid")
                principal, exp, nbf = await self._verify_town(obj, claims, entry, now)
        except TokenRejected as exc:
            # A registered issuer's refusals already name its town; otherwise
            # the token's own claim is the only hint of whom it was aimed at.
            if exc.town is None:
                exc.town = _claimed_town(claims)
            raise
        self._cache[digest] = (principal, exp, nbf, entry, kid)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def _still_trusted(self, entry: IssuerEntry | None, kid: str | None) -> bool:
        if entry is None:
            return True
        if self.registry is None:  # pragma: no cover - entries come from the registry
            return False
        current = await self.registry.get(entry.issuer)
        return current is entry and entry.keys.fresh(kid)

    def _verify_builtin(
        self, obj: CompactSignature, claims: dict[str, Any], now: int
    ) -> tuple[Principal, int, int]:
        _check_signature(obj, self._keys, self._algorithms)
        _check_registered_claims(claims, now, self.issuer, self.audience, "sub")
        _check_printable(claims, ("sub", "tenant", "dept", "roles", "amr"))
        principal = _principal_from_claims(claims)
        if principal is None:
            _reject("claims")
        if principal.tenant is not None and not self.builtin_for_towns:
            _reject("builtin_staff_disabled")
        return principal, *self._check_lifetime(claims, now, principal)

    async def _entry(self, iss: object) -> IssuerEntry:
        # The issuer we are is public (the discovery document): naming it tells
        # a newcomer whose token came from another port or checkout what to fix.
        why = m.UNKNOWN_ISSUER(issuer=self.issuer)
        if not isinstance(iss, str) or self.registry is None:
            _reject("unknown_issuer", detail=why)
        entry = await self.registry.get(iss)
        if entry is None:
            _reject("unknown_issuer", detail=why)
        return entry

    async def _verify_town(
        self, obj: CompactSignature, claims: dict[str, Any], entry: IssuerEntry, now: int
    ) -> tuple[Principal, int, int]:
        town = entry.tenant
        header = obj.headers()
        if header.get("alg") not in entry.algorithms:
            _reject("alg_not_allowed", town)
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid.isprintable()):
            _reject("malformed", town)
        keys, reason = await entry.keys.keys_for(kid)
        if keys is None:
            _reject(reason, town)
        _check_signature(obj, keys, entry.algorithms, town)
        _check_registered_claims(claims, now, entry.issuer, entry.audience, None, town)
        _check_printable(
            claims,
            (entry.staff_claim, "tenant", entry.department_claim, entry.roles_claim, "amr"),
            town,
        )
        named = claims.get("tenant")
        if named is not None and named != town:
            _reject("tenant_mismatch", town)
        principal = _principal_for_town(entry, claims)
        if principal is None:
            _reject("claims", town)
        return principal, *self._check_lifetime(claims, now, principal, town)

    def _check_lifetime(
        self, claims: dict[str, Any], now: int, principal: Principal, town: str | None = None
    ) -> tuple[int, int]:
        """``(exp, nbf)`` as integers, once the lifetime is within the maximum.

        A token valid for years is a stolen credential that never expires;
        so ``exp`` − ``iat`` (and ``exp`` − now, which also covers a token
        without ``iat`` and one whose ``iat`` lies) is bounded. NumericDates
        may be non-integral JSON numbers: an infinite or absurd one is refused
        here before any integer conversion could overflow.
        """
        limit = (
            self.max_integration_lifetime
            if principal.roles == frozenset({"integration"})
            else self.max_lifetime
        )
        exp = _numeric_date(claims.get("exp"), town)
        nbf = _numeric_date(claims.get("nbf", now), town)
        iat = _numeric_date(claims["iat"], town) if "iat" in claims else None
        lifetime = exp - now if iat is None else max(exp - iat, exp - now)
        if lifetime > limit + LEEWAY_SECONDS:
            _reject("lifetime_too_long", town, detail=m.LIFETIME_TOO_LONG(seconds=limit))
        return exp, nbf


# What the audit log says for each failed check: short, fixed wording (never a
# claim value or a library message, which can quote the token's content).
_KINDS = {
    "too_large": "token too large",
    "malformed": "malformed token",
    "DecodeError": "malformed token",
    "InvalidPayloadError": "malformed token",
    "MissingHeaderError": "malformed token",
    "InvalidHeaderValueError": "malformed token",
    "UnsupportedHeaderError": "malformed token",
    "MissingCritHeaderError": "malformed token",
    "unknown_issuer": "unknown issuer",
    "builtin_staff_disabled": "built-in token refused",
    "alg_not_allowed": "algorithm not allowed",
    "UnsupportedAlgorithmError": "algorithm not allowed",
    "MissingAlgorithmError": "algorithm not allowed",
    "ConflictAlgorithmError": "algorithm not allowed",
    "unknown_kid": "unknown key",
    "MissingKeyError": "unknown key",
    "InvalidKeyIdError": "unknown key",
    "jwks_unavailable": "issuer keys unavailable",
    "BadSignatureError": "bad signature",
    "ExpiredTokenError": "expired",
    "InvalidClaimError": "invalid claim",
    "MissingClaimError": "missing claim",
    "claims": "unusable claims",
    "tenant_mismatch": "tenant mismatch",
    "non_printable_claim": "non-printable claim",
    "lifetime_too_long": "lifetime too long",
}


# What the client reads for each kind (the audit wording above, one sentence each).
_DETAILS = {
    "token too large": m.TOO_LARGE,
    "malformed token": m.MALFORMED,
    "built-in token refused": m.BUILTIN_REFUSED,
    "algorithm not allowed": m.ALGORITHM,
    "unknown key": m.UNKNOWN_KEY,
    "issuer keys unavailable": m.KEYS_UNAVAILABLE,
    "bad signature": m.BAD_SIGNATURE,
    "expired": m.EXPIRED,
    "not yet valid": m.NOT_YET_VALID,
    "wrong issuer or audience": m.WRONG_TOWN_AUDIENCE,
    "invalid claim": m.INVALID_CLAIM,
    "missing claim": m.MISSING_CLAIM,
    "unusable claims": m.UNUSABLE_CLAIMS,
    "tenant mismatch": m.TENANT_MISMATCH,
    "non-printable claim": m.NON_PRINTABLE,
}


class TokenRejected(errors.DomainError):
    """A refused token: a 401 saying which check failed, plus what the middleware may audit."""

    def __init__(
        self,
        failure: str,
        town: str | None = None,
        kind: str | None = None,
        detail: str | None = None,
    ) -> None:
        base = errors.unauthorized()
        self.failure = failure
        """The failed check, as logged in ``auth.rejected`` (e.g. ``ExpiredTokenError``)."""
        self.town = town
        """The town the token points at (issuer's town or ``tenant`` claim), unverified."""
        self._kind = kind
        super().__init__(
            detail or _DETAILS.get(self.kind, m.INVALID),
            base.status,
            base.type_slug,
            base.title,
            headers=base.headers,
        )

    @property
    def kind(self) -> str:
        """The failure in a few fixed words, for the audit log."""
        return self._kind or _KINDS.get(self.failure, "invalid token")


# The claim names joserfc reports are ours (fixed strings), never values.
_CLAIM_KINDS = {
    "nbf": "not yet valid",
    "iat": "not yet valid",
    "iss": "wrong issuer or audience",
    "aud": "wrong issuer or audience",
}


def _reject(
    reason: str,
    issuer_tenant: str | None = None,
    kind: str | None = None,
    *,
    detail: str | None = None,
) -> NoReturn:
    if issuer_tenant is None:
        log.info("auth.rejected", reason=reason)
    else:
        log.info("auth.rejected", reason=reason, issuer_tenant=issuer_tenant)
    raise TokenRejected(reason, issuer_tenant, kind, detail)


def _claimed_town(claims: dict[str, Any]) -> str | None:
    """The ``tenant`` claim when it is a well-formed town code (unverified)."""
    tenant = claims.get("tenant")
    return tenant if isinstance(tenant, str) and is_valid_lgcode(tenant) else None


def _parse(token: str) -> tuple[CompactSignature, dict[str, Any]]:
    """The token's JWS and its claims, parsed once; the signature is NOT checked yet.

    The claims only choose the issuer and key until :func:`_check_signature`
    has verified the very bytes they were decoded from.
    """
    try:
        obj = jws.extract_compact(token.encode("ascii"))
        claims = json.loads(obj.payload)
    except JoseError as exc:
        _reject(type(exc).__name__)
    except (ValueError, TypeError, KeyError, RecursionError):
        # RecursionError: deeply nested JSON, which fits in 8 KB.
        _reject("malformed")
    if not isinstance(claims, dict):
        _reject("malformed")
    return obj, claims


def _check_signature(
    obj: CompactSignature, keys: KeySet, algorithms: tuple[str, ...], town: str | None = None
) -> None:
    """Pinned algorithm, key by kid, signature (as ``jwt.decode`` does)."""
    try:
        valid = jws.validate_compact(obj, keys, list(algorithms))
    except JoseError as exc:
        _reject(type(exc).__name__, town)
    except (ValueError, TypeError, KeyError):
        _reject("malformed", town)
    if not valid:
        _reject("BadSignatureError", town)


def _check_registered_claims(
    claims: dict[str, Any],
    now: int,
    issuer: str,
    audience: str,
    subject_claim: str | None,
    town: str | None = None,
) -> None:
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
    }
    if subject_claim is not None:
        options[subject_claim] = {"essential": True}
    registry = jwt.JWTClaimsRegistry(now=now, leeway=LEEWAY_SECONDS, **options)
    try:
        registry.validate(claims)
    except JoseError as exc:
        claim_name = getattr(exc, "claim", None)
        kind = _CLAIM_KINDS.get(claim_name) if claim_name else None
        detail = None
        if claim_name in ("iss", "aud") and town is None:
            # The built-in issuer's audience is the deployment's (public) setting.
            detail = m.WRONG_AUDIENCE(audience=audience)
        _reject(type(exc).__name__, town, kind, detail=detail)


def _numeric_date(value: object, town: str | None) -> int:
    """A NumericDate claim as an int; a non-finite or non-numeric one is refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        _reject("InvalidClaimError", town)
    if isinstance(value, float) and not math.isfinite(value):
        _reject("InvalidClaimError", town)
    if abs(value) > 2**62:
        # Far beyond any lifetime we accept; refused before any arithmetic.
        _reject("lifetime_too_long", town, detail=m.INVALID_CLAIM)
    return int(value)


def _check_printable(
    claims: dict[str, Any], names: tuple[str, ...], town: str | None = None
) -> None:
    """Every string the service takes from these claims is printable text.

    A control character (NUL above all) in a subject or department would be
    stripped in one place, refused by PostgreSQL in another, and could make
    two different subjects one actor in the audit log: the token is refused.
    Lists (roles, amr) are checked element by element, also the elements
    the service then ignores.
    """
    for name in names:
        value = claim(claims, name)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str) and not item.isprintable():
                _reject("non_printable_claim", town)


def _string_list(value: object) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def _principal_from_claims(claims: dict[str, object]) -> Principal | None:
    """The built-in issuer's claims: sub, tenant, dept, roles, amr."""
    sub = claims.get("sub")
    roles_claim = _string_list(claims.get("roles", []))
    amr_claim = _string_list(claims.get("amr", []))
    # A subject of blanks only names nobody (no person key): it could be
    # neither suspended nor granted anything (auth/subjects.py).
    if not isinstance(sub, str) or not person_key(sub) or len(sub) > 128:
        return None
    if roles_claim is None or amr_claim is None:
        return None
    roles = frozenset(roles_claim) & ROLES
    tenant = claims.get("tenant")
    dept = claims.get("dept")
    if "operator" in roles:
        # Platform operators belong to no town.
        if tenant is not None:
            return None
        return Principal(sub, None, None, frozenset({"operator"}), frozenset(amr_claim))
    if "supplier" in roles:
        # A supplier's system belongs to no town either; its subject is its
        # supplier key (法人番号, T-number or an assigned X-…), and nothing else.
        if tenant is not None or dept is not None or roles != {"supplier"}:
            return None
        if not SUPPLIER_KEY.fullmatch(sub):
            return None
        return Principal(sub, None, None, frozenset({"supplier"}), frozenset(amr_claim))
    if not isinstance(tenant, str) or not is_valid_lgcode(tenant):
        return None
    if dept is not None and (not isinstance(dept, str) or len(dept) > 32):
        return None
    if not roles:
        return None
    return Principal(sub, tenant, dept, roles, frozenset(amr_claim))


def claim(claims: dict[str, Any], name: str) -> object:
    """A claim by name; a dotted name not present as such walks nested objects
    (``realm_access.roles`` in Keycloak tokens)."""
    if name in claims:
        return claims[name]
    value: object = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _principal_for_town(entry: IssuerEntry, claims: dict[str, Any]) -> Principal | None:
    """A town issuer's claims, mapped as the town configured them."""
    staff = claim(claims, entry.staff_claim)
    if isinstance(staff, int) and not isinstance(staff, bool):
        staff = str(staff)
    if not isinstance(staff, str) or not person_key(staff) or len(staff) > 128:
        return None
    dept = claim(claims, entry.department_claim)
    if dept is not None and (not isinstance(dept, str) or not dept or len(dept) > 32):
        return None
    roles_claim = _string_list(claim(claims, entry.roles_claim))
    amr_claim = _string_list(claims.get("amr", []))
    if roles_claim is None or amr_claim is None:
        return None
    roles = frozenset(roles_claim) & TOWN_ROLES
    if not roles:
        return None
    return Principal(staff, entry.tenant, dept, roles, frozenset(amr_claim), entry.fingerprint)
