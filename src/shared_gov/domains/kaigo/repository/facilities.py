"""Every statement on ``kaigo_facilities``: the town's own care facilities.

Nothing here is personal (a facility's name and address are public), so
nothing is encrypted. The address key (:func:`vocabulary.address_key`) is
unique per town and is what a resident's address is matched against.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo.models import Facility
from shared_gov.domains.kaigo.repository.common import affected
from shared_gov.domains.kaigo.vocabulary import address_key

_SELECT = (
    "SELECT id, name, address, kind, places, covered, covered_reason, version FROM kaigo_facilities"
)


def _facility(town: str, row: asyncpg.Record) -> Facility:
    return Facility(
        id=str(row["id"]),
        town=town,
        name=row["name"],
        address=row["address"],
        kind=row["kind"],
        places=row["places"],
        covered=row["covered"],
        covered_reason=row["covered_reason"],
        version=row["version"],
    )


async def every(uow: TenantUnitOfWork) -> list[Facility]:
    rows = await uow.fetch(_SELECT + " ORDER BY name, id")
    return [_facility(uow.code, r) for r in rows]


async def get(uow: TenantUnitOfWork, facility_id: str, *, lock: bool = False) -> Facility | None:
    row = await uow.fetchrow(
        _SELECT + " WHERE id = $1" + (" FOR UPDATE" if lock else ""), facility_id
    )
    return None if row is None else _facility(uow.code, row)


async def insert(uow: TenantUnitOfWork, f: Facility) -> bool:
    """False when the town already has a facility at that address."""
    row = await uow.fetchrow(
        "INSERT INTO kaigo_facilities (id, name, address, address_key, kind, places, covered, "
        "covered_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (address_key) DO NOTHING RETURNING id",
        f.id,
        f.name,
        f.address,
        address_key(f.address),
        f.kind,
        f.places,
        f.covered,
        f.covered_reason,
    )
    return row is not None


async def update(uow: TenantUnitOfWork, f: Facility) -> bool:
    """Write ``f`` over its row (locked by the caller); False on an address clash."""
    try:
        async with _savepoint(uow):
            status = await uow.execute(
                "UPDATE kaigo_facilities SET name = $2, address = $3, address_key = $4, "
                "kind = $5, places = $6, covered = $7, covered_reason = $8, "
                "version = version + 1, updated_at = now() WHERE id = $1",
                f.id,
                f.name,
                f.address,
                address_key(f.address),
                f.kind,
                f.places,
                f.covered,
                f.covered_reason,
            )
    except asyncpg.UniqueViolationError:
        return False
    if affected(status) != 1:  # pragma: no cover - locked by the caller
        raise RuntimeError("facility vanished under its lock")
    f.version += 1
    return True


async def delete(uow: TenantUnitOfWork, facility_id: str) -> bool:
    """False when a 住所地特例 notice still names the facility."""
    try:
        async with _savepoint(uow):
            await uow.execute("DELETE FROM kaigo_facilities WHERE id = $1", facility_id)
    except asyncpg.ForeignKeyViolationError:
        return False
    return True


async def existing_keys(uow: TenantUnitOfWork, keys: Sequence[str]) -> set[str]:
    rows = await uow.fetch(
        "SELECT address_key FROM kaigo_facilities WHERE address_key = ANY($1::text[])", list(keys)
    )
    return {r["address_key"] for r in rows}


class _savepoint:
    """A savepoint, so that a refused statement leaves the unit of work usable."""

    def __init__(self, uow: TenantUnitOfWork) -> None:
        self._uow = uow

    async def __aenter__(self) -> None:
        await self._uow.execute("SAVEPOINT kaigo_facility")

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self._uow.execute("RELEASE SAVEPOINT kaigo_facility")
        else:
            await self._uow.execute("ROLLBACK TO SAVEPOINT kaigo_facility")
