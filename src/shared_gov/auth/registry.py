"""Towns' own OpenID Connect issuers, as the token verifier sees them.

:class:`IssuerRegistry` holds every registered issuer (``catalog.issuers``)
in memory, keyed by issuer URL, so the verifier resolves a token's ``iss``
with a dict lookup. The whole table is read in ONE query, on first use,
after an invalidation (a ``shared_gov_policy`` notification, or the local
call the issuer endpoints make after their commit) and at the latest every
``ttl`` seconds as a safety net for a missed notification. An unknown
``iss`` never causes a query, so made-up issuers cannot hammer the database.

Each issuer's keys live in a :class:`JwksSource`: an inline JWKS, or one
fetched from ``jwks_uri`` with httpx — on first use, when a token names an
unknown ``kid`` (key rotation at the IdP), and when older than ``max_age``.
Every fetch attempt for an issuer is at least ``min_refetch_interval``
(30 s) after the previous one, so forged ``kid`` values cannot make us
hammer the IdP; each fetch is bounded in time (3 s in total) and size. A
failed fetch keeps the last good keys; with none, the token is refused
(401). Nothing of a token or a JWKS is ever logged — only the town, a reason
and counts.

A reload keeps an issuer's entry object (with its fetched keys and its
refetch limit) when its configuration did not change, so verified tokens
stay cached; a changed configuration gets a new entry and a removed one
none, and the verifier's cache notices because it compares entry identity.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args
from urllib.parse import urlsplit

import httpx
import msgspec
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey, import_key

from shared_gov import errors
from shared_gov.auth.config import Algorithm, IssuerConfig
from shared_gov.db.engine import Database
from shared_gov.logs import get_logger
from shared_gov.validation import msgspec_error_to_field

log = get_logger(__name__)

ALLOWED_ALGORITHMS = frozenset(get_args(Algorithm))
"""The asymmetric algorithms an issuer may pin (never ``none``, never HS*)."""
MAX_JWKS_BYTES = 256 * 1024
MAX_JWKS_KEYS = 20
MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPE_FOR_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}

Clock = Callable[[], float]


class JwksError(Exception):
    """A JWKS could not be fetched or used; ``str(exc)`` is a log-safe reason."""


# --- configuration checks ---------------------------------------------------


def _symmetric_or_none(alg: object) -> bool:
    return isinstance(alg, str) and (alg.lower() == "none" or alg.upper().startswith("HS"))


def parse_issuer_config(data: object, *, require_https: bool = False) -> IssuerConfig:
    """Validate a PUT body (the manifest's ``[issuer]`` shape) or raise 422.

    ``none`` and HMAC algorithms are refused at ``/algorithms``: a public-key
    issuer's keys are public, so an HS* token "signed" with one proves nothing.
    """
    if not isinstance(data, dict):
        raise errors.invalid_field("/", "expected a JSON object")
    algorithms = data.get("algorithms")
    if isinstance(algorithms, list) and any(_symmetric_or_none(a) for a in algorithms):
        raise errors.invalid_field(
            "/algorithms", "'none' and HMAC (HS*) algorithms cannot be pinned for an issuer"
        )
    try:
        config = msgspec.convert(data, IssuerConfig)
    except msgspec.ValidationError as exc:
        raise errors.invalid([msgspec_error_to_field(str(exc))]) from None
    problems = issuer_problems(config, require_https=require_https)
    if problems:
        raise errors.invalid(problems)
    return config


def issuer_problems(
    config: IssuerConfig, *, require_https: bool = False
) -> list[errors.FieldError]:
    """Checks beyond field types; used for PUT bodies and rows read back."""
    problems: list[errors.FieldError] = []
    if any(a not in ALLOWED_ALGORITHMS for a in config.algorithms):
        problems.append(errors.FieldError("/algorithms", "only asymmetric algorithms"))
    if (config.jwks_uri is None) == (config.jwks is None):
        problems.append(errors.FieldError("/jwks_uri", "give exactly one of jwks_uri and jwks"))
    if require_https and config.jwks_uri is not None and not config.jwks_uri.startswith("https://"):
        problems.append(errors.FieldError("/jwks_uri", "must be an https URL"))
    if config.jwks is not None:
        if any(_has_private_members(k) for k in config.jwks.get("keys") or []):
            problems.append(errors.FieldError("/jwks", "must hold public keys only"))
        else:
            try:
                keys = keyset_from_jwks(config.jwks)
            except JwksError as exc:
                problems.append(errors.FieldError("/jwks", str(exc)))
            else:
                if not any(_usable_with(key, config.algorithms) for key in keys.keys):
                    problems.append(errors.FieldError("/jwks", "no key fits the pinned algorithms"))
    return problems


def _has_private_members(item: object) -> bool:
    return isinstance(item, dict) and bool(_PRIVATE_MEMBERS.intersection(item))


def _usable_with(key: Key, algorithms: Sequence[str]) -> bool:
    return any(_KEY_TYPE_FOR_PREFIX.get(a[:2]) == key.key_type for a in algorithms)


def keyset_from_jwks(data: object) -> KeySet:
    """The public signing keys of a JWKS document.

    Keeps RSA (≥ 2048 bits), EC and OKP keys meant for signatures; drops
    symmetric (``oct``) keys, encryption keys, private members and anything
    that does not import. Raises :class:`JwksError` when nothing is left.
    """
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError("not a JWKS document")
    items: list[Any] = data["keys"]
    if len(items) > MAX_JWKS_KEYS:
        raise JwksError("too many keys")
    keys: list[Key] = []
    for item in items:
        if not isinstance(item, dict) or item.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if item.get("use", "sig") != "sig":
            continue
        public = {k: v for k, v in item.items() if k not in _PRIVATE_MEMBERS}
        try:
            key = import_key(public)
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
            continue
        if not isinstance(key, RSAKey | ECKey | OKPKey):  # pragma: no cover - kty filtered
            continue
        keys.append(key)
    if not keys:
        raise JwksError("no usable public signing key")
    return KeySet(keys)


# --- where a jwks_uri may point -------------------------------------------


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private  # RFC 1918, fc00::/7 (unique local), and other non-global
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or not address.is_global
    )


async def internal_address_problem(uri: str) -> str | None:
    """Why ``uri`` may not be fetched in production, or None when its host is public.

    A town admin choosing its ``jwks_uri`` must not make the platform fetch
    from its own network (cloud metadata at 169.254.169.254, the database
    host, a loopback admin port). Host names are resolved and every address
    they resolve to must be global; a name that does not resolve is refused
    too (it cannot be checked).
    """
    host = urlsplit(uri).hostname
    if not host:
        return "has no host"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return "points at an internal address" if _internal(literal) else None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return "host name does not resolve"
    addresses = {info[4][0] for info in infos}
    if not addresses:
        return "host name does not resolve"
    for text_address in addresses:
        try:
            address = ipaddress.ip_address(str(text_address).split("%", 1)[0])
        except ValueError:
            return "host name resolves to an unusable address"
        if _internal(address):
            return "host name resolves to an internal address"
    return None


# --- fetching ---------------------------------------------------------------

Fetcher = Callable[[str, float], Awaitable[object]]


async def fetch_jwks(uri: str, seconds: float) -> object:
    """GET ``uri`` and decode its JSON, within ``seconds`` in total.

    No redirects, at most :data:`MAX_JWKS_BYTES`; every failure is a
    :class:`JwksError` whose message names the kind of failure only.
    """
    body = bytearray()
    try:
        async with (
            asyncio.timeout(seconds),
            httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client,
            client.stream(
                "GET", uri, headers={"Accept": "application/jwk-set+json, application/json"}
            ) as response,
        ):
            if response.status_code != 200:
                raise JwksError(f"http_{response.status_code}")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksError("too_large")
    except (TimeoutError, httpx.TimeoutException):
        raise JwksError("timeout") from None
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        raise JwksError(type(exc).__name__) from None
    try:
        return json.loads(body)
    except ValueError:
        raise JwksError("not_json") from None


@dataclass
class FetchPolicy:
    """Timing of JWKS fetches, shared by every issuer of one registry."""

    clock: Clock = time.monotonic
    min_refetch_interval: float = 30.0
    """Seconds between two fetch attempts for one issuer, whatever triggers them."""
    max_age: float = 300.0
    """Fetched keys older than this are refreshed on the next cache miss."""
    timeout: float = 3.0
    fetch: Fetcher = fetch_jwks
    public_only: bool = False
    """Production: never fetch from a host that resolves to an internal address
    (checked again at every fetch: a name may have been pointed inward since
    it was registered)."""


class JwksSource:
    """The keys of one issuer: inline, or fetched from its ``jwks_uri``."""

    def __init__(
        self, tenant: str, *, uri: str | None, inline: KeySet | None, policy: FetchPolicy
    ) -> None:
        self.tenant = tenant
        self._uri = uri
        self._policy = policy
        self._keys: KeySet | None = inline
        self._kids: frozenset[str | None] = frozenset()
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Fetch attempts so far (for operators' metrics and tests)."""
        if inline is not None:
            self._install(inline)

    def _install(self, keys: KeySet) -> None:
        self._keys = keys
        self._kids = frozenset(k.kid for k in keys.keys)

    def knows(self, kid: str | None) -> bool:
        """Whether the current keys can check a token with ``kid``."""
        if self._keys is None:
            return False
        if kid is None:
            return len(self._kids) == 1
        return kid in self._kids

    def fresh(self, kid: str | None) -> bool:
        """``knows(kid)`` and the keys are not due for a refresh."""
        if not self.knows(kid):
            return False
        return self._uri is None or self._policy.clock() - self._fetched_at < self._policy.max_age

    async def keys_for(self, kid: str | None) -> tuple[KeySet | None, str]:
        """The key set to verify a token with ``kid``, or None and a reason.

        Fetches (at most once per ``min_refetch_interval``) when there are
        no keys yet, the kid is unknown, or the keys are old. Callers that
        need the fetch wait for the one in flight; a token whose key is
        merely due for a refresh is checked with the current keys meanwhile.
        """
        if self.fresh(kid) or self._uri is None:
            return self._lookup(kid)
        if self.knows(kid) and self._lock.locked():
            return self._lookup(kid)
        async with self._lock:
            if not self.fresh(kid):
                now = self._policy.clock()
                if now - self._attempted_at >= self._policy.min_refetch_interval:
                    self._attempted_at = now
                    await self._refresh(self._uri)
        return self._lookup(kid)

    def _lookup(self, kid: str | None) -> tuple[KeySet | None, str]:
        if self._keys is None:
            return None, "jwks_unavailable"
        if not self.knows(kid):
            return None, "unknown_kid"
        return self._keys, ""

    async def _refresh(self, uri: str) -> None:
        self.fetches += 1
        if self._policy.public_only:
            problem = await internal_address_problem(uri)
            if problem is not None:
                log.warning("auth.jwks_fetch_refused", issuer_tenant=self.tenant, error=problem)
                return
        try:
            keys = keyset_from_jwks(await self._policy.fetch(uri, self._policy.timeout))
        except JwksError as exc:
            # The last good keys (if any) stay in use.
            log.warning("auth.jwks_fetch_failed", issuer_tenant=self.tenant, error=str(exc))
            return
        except Exception as exc:
            # Whatever went wrong, a token is refused (401), never a 500.
            log.warning(
                "auth.jwks_fetch_failed", issuer_tenant=self.tenant, error=type(exc).__name__
            )
            return
        self._install(keys)
        self._fetched_at = self._policy.clock()
        log.info("auth.jwks_fetched", issuer_tenant=self.tenant, keys=len(keys.keys))


# --- the registry -----------------------------------------------------------


@dataclass(eq=False, slots=True)
class IssuerEntry:
    """One town's issuer, ready for verification."""

    issuer: str
    tenant: str
    audience: str
    algorithms: tuple[str, ...]
    staff_claim: str
    department_claim: str
    roles_claim: str
    keys: JwksSource
    fingerprint: str = field(repr=False)


def fingerprint(row: Mapping[str, Any]) -> str:
    """A ``catalog.issuers`` row's configuration as one string (equal iff unchanged)."""
    return json.dumps(
        [
            row["issuer"],
            row["tenant_code"],
            row["audience"],
            row["jwks_uri"],
            row["jwks"],
            list(row["algorithms"]),
            row["staff_claim"],
            row["department_claim"],
            row["roles_claim"],
        ],
        sort_keys=True,
        separators=(",", ":"),
    )


Loader = Callable[[], Awaitable[list[Mapping[str, Any]]]]

_LOAD_SQL = """
SELECT i.issuer, i.tenant_code, i.audience, i.jwks_uri, i.jwks, i.algorithms,
       i.staff_claim, i.department_claim, i.roles_claim
FROM catalog.issuers i JOIN catalog.tenants t ON t.code = i.tenant_code
WHERE t.status = 'active'
"""


def catalog_loader(db: Database) -> Loader:
    """Read every active town's issuer in one query."""

    async def load() -> list[Mapping[str, Any]]:
        async with db.catalog() as conn:
            rows: list[Mapping[str, Any]] = await conn.fetch(_LOAD_SQL)
        return rows

    return load


class IssuerRegistry:
    """Every registered town issuer, by issuer URL, cached in memory."""

    def __init__(
        self, loader: Loader, *, policy: FetchPolicy | None = None, ttl: float = 60.0
    ) -> None:
        self._loader = loader
        self.policy = policy or FetchPolicy()
        self._ttl = ttl
        self._entries: dict[str, IssuerEntry] = {}
        self._generation = 0
        self._loaded_generation = -1
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def invalidate(self, tenant: str = "*") -> None:
        """Reload on next use (``tenant``: the town that changed, or ``"*"``).

        The reload reads every town, so the argument only documents the
        caller. Entries whose configuration is unchanged are kept with their
        fetched keys and refetch limit: a notification about a town's staff
        permissions must not reset the 30 s limit or cost a JWKS fetch.
        """
        del tenant
        self._generation += 1

    def _fresh(self) -> bool:
        return (
            self._loaded_generation == self._generation
            and self.policy.clock() - self._loaded_at < self._ttl
        )

    async def get(self, issuer: str) -> IssuerEntry | None:
        """The entry for ``issuer``, or None if no active town registered it."""
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    await self._reload()
        return self._entries.get(issuer)

    async def _reload(self) -> None:
        generation = self._generation
        rows = await self._loader()
        previous = self._entries
        entries: dict[str, IssuerEntry] = {}
        for row in rows:
            configuration = fingerprint(row)
            old = previous.get(row["issuer"])
            if old is not None and old.fingerprint == configuration:
                entries[old.issuer] = old
                continue
            entry = self._build(row, configuration)
            if entry is not None:
                entries[entry.issuer] = entry
        self._entries = entries
        self._loaded_generation = generation
        self._loaded_at = self.policy.clock()

    def _build(self, row: Mapping[str, Any], configuration: str) -> IssuerEntry | None:
        tenant = str(row["tenant_code"]).strip()
        problems: list[errors.FieldError]
        try:
            config = msgspec.convert(
                {
                    "url": row["issuer"],
                    "audience": row["audience"],
                    "jwks_uri": row["jwks_uri"],
                    "jwks": row["jwks"],
                    "algorithms": list(row["algorithms"]),
                    "staff_claim": row["staff_claim"],
                    "department_claim": row["department_claim"],
                    "roles_claim": row["roles_claim"],
                },
                IssuerConfig,
            )
            problems = issuer_problems(config)
        except msgspec.ValidationError as exc:
            problems = [msgspec_error_to_field(str(exc))]
        if problems:
            # A row written around the API (manual SQL): never trust it.
            log.warning(
                "auth.issuer_ignored", issuer_tenant=tenant, fields=[p.pointer for p in problems]
            )
            return None
        inline = keyset_from_jwks(config.jwks) if config.jwks is not None else None
        return IssuerEntry(
            issuer=config.url,
            tenant=tenant,
            audience=config.audience,
            algorithms=tuple(dict.fromkeys(config.algorithms)),
            staff_claim=config.staff_claim,
            department_claim=config.department_claim,
            roles_claim=config.roles_claim,
            keys=JwksSource(tenant, uri=config.jwks_uri, inline=inline, policy=self.policy),
            fingerprint=configuration,
        )
