"""The platform-wide list of care facilities, read town by town.

Each town's 介護保険課 keeps its own facilities in its own schema
(``kaigo_facilities``): a town's role can write nothing else, and the list
is public information, not personal. "Read all towns'" is therefore a fan-out:
one unit of work per active town, each bound to that town's role as every
other read is — no catalog table (a domain brings tenant migrations only and
DESIGN rule 4 keeps shared tables the platform's), no grant across schemas
(a town's role reaches only its own). The result is cached in the process for
``TTL`` seconds: a change reaches the other towns' matching within that time
(docs/kaigo.md, "Where the facility list lives").

Cost: one short transaction per town on a cache miss (six demo towns: a few
milliseconds; 1,741 towns: about as many transactions, once per TTL and
process). Lookups are by address key, in memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared_gov.db import Database
from shared_gov.domains.kaigo.models import Facility, FacilityRef
from shared_gov.domains.kaigo.repository import facilities
from shared_gov.domains.kaigo.vocabulary import address_key
from shared_gov.tenancy.service import list_tenants
from shared_gov.towns.names import tenant_names

TTL = 30.0


@dataclass(slots=True)
class Directory:
    """Every active town's facilities, by town and by address key."""

    by_town: dict[str, list[Facility]] = field(default_factory=dict)
    by_key: dict[str, list[Facility]] = field(default_factory=dict)

    @classmethod
    def of(cls, facilities_: Sequence[Facility]) -> Directory:
        d = cls()
        for f in facilities_:
            d.by_town.setdefault(f.town, []).append(f)
            d.by_key.setdefault(address_key(f.address), []).append(f)
        return d

    def at(self, key: str | None, town: str | None = None) -> FacilityRef | None:
        """The facility at address key ``key`` (in ``town`` when given)."""
        if not key:
            return None
        found = [f for f in self.by_key.get(key, ()) if town is None or f.town == town]
        if not found:
            return None
        f = found[0]
        return FacilityRef(f.id, f.name, f.town, f.covered)

    def all(self) -> list[Facility]:
        return [f for town in sorted(self.by_town) for f in self.by_town[town]]


class _Cache:
    def __init__(self) -> None:
        self._value: Directory | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        self._at = float("-inf")

    async def get(self, db: Database) -> Directory:
        if self._value is not None and time.monotonic() - self._at < TTL:
            return self._value
        async with self._lock:
            if self._value is None or time.monotonic() - self._at >= TTL:
                self._value = await load(db)
                self._at = time.monotonic()
        return self._value


_CACHE = _Cache()


async def load(db: Database) -> Directory:
    """Read every active town's facilities (one unit of work each, one at a time:
    a caller never holds two pooled connections)."""
    found: list[Facility] = []
    for town in await list_tenants(db):
        if town.status != "active":
            continue
        async with db.tenant(tenant_names(town.code, db.settings.role_prefix)) as uow:
            found.extend(await facilities.every(uow))
    return Directory.of(found)


async def directory(db: Database) -> Directory:
    """The cached directory (read again when older than ``TTL``)."""
    return await _CACHE.get(db)


def forget() -> None:
    """Drop this process's cache (after a change here; other processes wait out the TTL)."""
    _CACHE.forget()
