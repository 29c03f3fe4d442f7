"""Fetching an issuer's keys: :func:`fetch_jwks` (bounded in time and size) and
:class:`JwksSource`, one issuer's keys with the refetch limits of :class:`FetchPolicy`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from joserfc.jwk import KeySet

from shared_gov.logs import get_logger

from .addresses import internal_address_problem
from .checks import JwksError, keyset_from_jwks

log = get_logger(__name__)

MAX_JWKS_BYTES = 256 * 1024

Clock = Callable[[], float]

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
