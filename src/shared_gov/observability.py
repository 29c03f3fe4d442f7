"""Operations endpoints and request metrics: ``/ready``, ``/metrics``.

``/health`` (in :mod:`shared_gov.app`) says the process answers. ``/ready``
says it can do its work: the database answers a query and the key provider
(the HSM behind PKCS#11, or the key directory) answers a lookup, each within
:data:`PROBE_TIMEOUT` seconds. A load balancer takes a worker out of rotation
on 503 instead of sending it requests that would fail. Both are anonymous and
answer without touching a town's data.

``/metrics`` is the Prometheus exposition of :mod:`shared_gov.metrics`, summed
over every worker when ``PROMETHEUS_MULTIPROC_DIR`` is set. It is anonymous
too (Prometheus scrapes without tokens), so it must not be reachable from
outside the platform's network; ``deploy/README.md`` shows the proxy rule.
Nothing in it is personal: labels are route templates, outcomes and results.

:func:`metrics_middleware` wraps the whole ASGI app (like the access log), so
unrouted probes are counted too — under the route ``unmatched``, never under
the path they asked for.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Final

from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.openapi import ResponseSpec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared_gov import metrics
from shared_gov.crypto.keyring import keyring_of
from shared_gov.crypto.providers import KeyProvider
from shared_gov.logs import get_logger

__all__ = [
    "AUTH_EXCLUDE",
    "PROBE_TIMEOUT",
    "Readiness",
    "metrics_endpoint",
    "metrics_middleware",
    "ready",
]

log = get_logger(__name__)

PROBE_TIMEOUT: Final = 2.0
"""Seconds each readiness check (and the scrape-time sealer lag query) may take."""

PROBE_TOWN: Final = "000000"
"""A town code no town has (its check digit is wrong): looking its keys up is a
harmless round trip to the key provider."""

AUTH_EXCLUDE: Final = ("^/ready$", "^/metrics$")
"""Paths the bearer-token middleware must let through (anonymous probes)."""

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED: Final = "unmatched"

_POSITION_SQL: Final = (
    "SELECT xid, occurred_at, event_id FROM audit.leaves "
    "ORDER BY xid DESC, occurred_at DESC, event_id DESC LIMIT 1"
)
# Both use the sealer's own indexes (events_seal_order, leaves_position).
_NEXT_AFTER_SQL: Final = (
    "SELECT occurred_at FROM audit.events "
    "WHERE (xid, occurred_at, event_id) > ($1, $2, $3) "
    "ORDER BY xid, occurred_at, event_id LIMIT 1"
)
_FIRST_SQL: Final = (
    "SELECT occurred_at FROM audit.events ORDER BY xid, occurred_at, event_id LIMIT 1"
)


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Count every HTTP request and time it, by method, route template and status."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            # The router writes the matched template into the scope it was
            # given; a request that matched nothing has none. Methods outside
            # the standard set are folded so a client cannot mint label values.
            route = scope.get("path_template") or UNMATCHED
            method = scope.get("method", "")
            labels = (method if method in _METHODS else "OTHER", route, str(status))
            metrics.HTTP_REQUESTS.labels(*labels).inc()
            metrics.HTTP_REQUEST_SECONDS.labels(*labels).observe(time.perf_counter() - started)

    return middleware


class Readiness:
    """The checks behind ``/ready``, each bounded in time.

    A key provider call runs in a thread (PKCS#11 libraries block). If the
    HSM hangs, the thread cannot be cancelled: instead of starting another
    one per probe, later probes wait on the same call, so a hung token costs
    one thread, not one per load-balancer check. A check's result is logged
    when it changes, not on every probe.
    """

    def __init__(self, timeout: float = PROBE_TIMEOUT) -> None:
        self.timeout = timeout
        self._provider_call: asyncio.Future[list[int]] | None = None
        self._probed_town: str | None = None
        self._last: dict[str, str] = {}

    async def check(self, services: Any) -> dict[str, str]:
        """``{"database": "ok" | "unavailable", "key_provider": ...}``."""
        database, keys = await asyncio.gather(
            self._database(services),
            self._key_provider(keyring_of(services.db).provider, services.registry.known_code()),
        )
        checks = {"database": database[0], "key_provider": keys[0]}
        for name, (state, error) in (("database", database), ("key_provider", keys)):
            if self._last.get(name, "ok") != state:
                # The error type only: driver messages can quote connection details.
                log.warning("ready.changed", check=name, state=state, error=error)
            self._last[name] = state
        return checks

    async def _database(self, services: Any) -> tuple[str, str | None]:
        async def query() -> None:
            async with services.db.pool.acquire(timeout=self.timeout) as conn:
                await conn.fetchval("SELECT 1", timeout=self.timeout)

        try:
            await asyncio.wait_for(query(), self.timeout)
        except Exception as exc:
            return "unavailable", type(exc).__name__
        return "ok", None

    async def _key_provider(
        self, provider: KeyProvider, town: str | None
    ) -> tuple[str, str | None]:
        # Asking for a real town's KEK versions also catches a provider that
        # answers but has lost its keys (a wrongly restored HSM partition, the
        # wrong token configured): every town would then fail to load its keys.
        call = self._provider_call
        if call is None or call.done():
            call = asyncio.ensure_future(
                asyncio.to_thread(provider.kek_versions, town or PROBE_TOWN)
            )
            # Retrieve the outcome even if every waiter timed out first.
            call.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._provider_call = call
            self._probed_town = town
        try:
            versions = await asyncio.wait_for(asyncio.shield(call), self.timeout)
        except Exception as exc:
            return "unavailable", type(exc).__name__
        if self._probed_town is not None and not versions:
            return "keys_missing", None
        return "ok", None


_readiness = Readiness()


@get(
    "/ready",
    summary="Database and key provider reachable",
    tags=["ops"],
    # Not a problem+json: load balancers and operators read the same report.
    responses={
        503: ResponseSpec(
            dict[str, Any], description="Not ready, with Retry-After", generate_examples=False
        )
    },
)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    checks = await _readiness.check(request.app.state.services)
    ok = all(state == "ok" for state in checks.values())
    return Response(
        {"status": "ready" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
        headers={} if ok else {"Retry-After": "5"},
    )


async def _sealer_lag(services: Any) -> float:
    """Seconds the next event in sealing order has waited; 0 when none waits."""

    async def query() -> Any:
        async with services.db.pool.acquire(timeout=PROBE_TIMEOUT) as conn:
            position = await conn.fetchrow(_POSITION_SQL)
            if position is None:
                return await conn.fetchval(_FIRST_SQL)
            return await conn.fetchval(
                _NEXT_AFTER_SQL, position["xid"], position["occurred_at"], position["event_id"]
            )

    occurred = await asyncio.wait_for(query(), PROBE_TIMEOUT)
    if occurred is None:
        return 0.0
    waited: float = time.time() - occurred.timestamp()
    return max(0.0, waited)


@get("/metrics", summary="Prometheus metrics", tags=["ops"], include_in_schema=False)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = request.app.state.services
    if services.settings.audit:
        try:
            metrics.AUDIT_SEALER_LAG.set(await _sealer_lag(services))
        except Exception as exc:
            # Unknown is not zero: NaN keeps a lag alert from reading "all sealed".
            log.info("metrics.sealer_lag", error=type(exc).__name__)
            metrics.AUDIT_SEALER_LAG.set(math.nan)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
