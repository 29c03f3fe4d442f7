"""In-process cache of active tenants, consulted on every request.

A request for ``/api/v1/tenants/{code}/…`` needs the tenant's schema and role
names and must know the tenant is active, without a catalog query each time.
The cache refreshes the whole list (one small query) when older than ``ttl``
seconds, and on a miss at most once per ``miss_interval`` so that requests
for made-up codes cannot hammer the database. An offboarded tenant drops out
within ``ttl``; until then its dropped role makes the binding fail, which the
unit of work turns into 404.
"""

from __future__ import annotations

import asyncio
import time

from shared_gov.db.engine import Database
from shared_gov.towns.names import TenantNames, tenant_names


class TenantRegistry:
    def __init__(self, db: Database, *, ttl: float = 5.0, miss_interval: float = 1.0) -> None:
        self._db = db
        self._ttl = ttl
        self._miss_interval = miss_interval
        self._tenants: dict[str, TenantNames] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._db.catalog() as conn:
            rows = await conn.fetch("SELECT code FROM catalog.tenants WHERE status = 'active'")
        prefix = self._db.settings.role_prefix
        self._tenants = {r["code"]: tenant_names(r["code"], prefix) for r in rows}
        self._loaded_at = time.monotonic()

    def known_code(self) -> str | None:
        """The code of an active tenant from the cache (no I/O), or None.

        For probes that must ask about a town that really exists (``/ready``
        checks that the key provider still holds that town's key).
        """
        return min(self._tenants, default=None)

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def get(self, code: str) -> TenantNames | None:
        """The names of active tenant ``code``, or None."""
        age = time.monotonic() - self._loaded_at
        names = self._tenants.get(code)
        if names is not None and age < self._ttl:
            return names
        if names is None and age < self._miss_interval:
            return None
        async with self._lock:
            if time.monotonic() - self._loaded_at >= min(self._ttl, self._miss_interval):
                await self.refresh()
        return self._tenants.get(code)
