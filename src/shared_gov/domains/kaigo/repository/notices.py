"""Every statement on ``kaigo_notices``: 住所地特例 notices another town (the
insurer) sent this town (where the facility is), keyed by the one-stop move's
transfer id. The insurer's number of the person is an envelope."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from shared_gov import errors
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo import messages as m
from shared_gov.domains.kaigo.repository.common import keys
from shared_gov.domains.kaigo.spec import NOTICES


@dataclass(frozen=True, slots=True)
class Notice:
    id: str
    transfer_id: str | None
    insurer_town: str
    insurer_number: str
    facility_id: str
    insurer_determination: str


async def insert(uow: TenantUnitOfWork, n: Notice) -> bool:
    """False when a notice for the same move was received already; 409 when the
    facility is not (any more) in this town's list."""
    try:
        row = await _insert(uow, n)
    except asyncpg.ForeignKeyViolationError:
        raise errors.conflict(m.FACILITY_NOT_LISTED) from None
    return row is not None


async def _insert(uow: TenantUnitOfWork, n: Notice) -> asyncpg.Record | None:
    return await uow.fetchrow(
        "INSERT INTO kaigo_notices (id, transfer_id, insurer_town, facility_id, insurer_number, "
        "insurer_determination) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (transfer_id) DO NOTHING RETURNING id",
        n.id,
        n.transfer_id,
        n.insurer_town,
        n.facility_id,
        keys(uow).encrypt(NOTICES, "insurer_number", n.id, n.insurer_number),
        n.insurer_determination,
    )


async def by_transfer(uow: TenantUnitOfWork, transfer_id: str) -> Notice | None:
    row = await uow.fetchrow(
        "SELECT id, transfer_id, insurer_town, facility_id, insurer_number, "
        "insurer_determination FROM kaigo_notices WHERE transfer_id = $1",
        transfer_id,
    )
    if row is None:
        return None
    rid = str(row["id"])
    return Notice(
        id=rid,
        transfer_id=str(row["transfer_id"]) if row["transfer_id"] else None,
        insurer_town=row["insurer_town"],
        insurer_number=keys(uow).decrypt(NOTICES, "insurer_number", rid, row["insurer_number"])
        or "",
        facility_id=str(row["facility_id"]),
        insurer_determination=str(row["insurer_determination"]),
    )
