"""Every statement on ``kaigo_determinations`` (the work queue).

A determination's id is derived from the town and its source key (the
outbox event it answers, or the daily job's day and person), and the key is
unique: replaying the same events writes the same rows once. The proposal,
the facility and the correction are JSON envelopes; kind, status and deadline
are plain, for the queue's filters and order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from shared_gov.crypto.keyring import TownKeys
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo.models import Correction, Determination, FacilityRef, Proposal
from shared_gov.domains.kaigo.repository.common import affected, keys, seal, unseal
from shared_gov.domains.kaigo.spec import DETERMINATIONS

_NAMESPACE = uuid.UUID("6f1c2a57-0d0b-4f7e-9a43-8c2f3b1e5d01")
_COLUMNS = (
    "id, resident_id, kind, status, source_key, event_id, event_at, transfer_id, proposed_on, "
    "deadline, proposal, facility, correction, supersedes, superseded_by, corrected_by, "
    "decided_by, decided_at, version, created_at, answers, notify_town"
)
_SELECT = f"SELECT {_COLUMNS} FROM kaigo_determinations"  # noqa: S608 - constants


def determination_id(town: str, source_key: str) -> str:
    """The id of the determination answering ``source_key`` in ``town``: the same on
    every replay."""
    return str(uuid.uuid5(_NAMESPACE, f"{town}:{source_key}"))


def _determination(k: TownKeys, row: asyncpg.Record) -> Determination:
    rid = str(row["id"])
    facility = unseal(k, DETERMINATIONS, "facility", rid, row["facility"])
    correction = unseal(k, DETERMINATIONS, "correction", rid, row["correction"])
    answers = unseal(k, DETERMINATIONS, "answers", rid, row["answers"])
    return Determination(
        id=rid,
        resident_id=str(row["resident_id"]),
        kind=row["kind"],
        status=row["status"],
        source_key=row["source_key"],
        proposed_on=row["proposed_on"],
        deadline=row["deadline"],
        proposal=Proposal.from_json(unseal(k, DETERMINATIONS, "proposal", rid, row["proposal"])),
        facility=FacilityRef.from_json(facility) if facility else None,
        correction=Correction.from_json(correction) if correction else None,
        event_id=str(row["event_id"]) if row["event_id"] else None,
        event_at=row["event_at"],
        transfer_id=str(row["transfer_id"]) if row["transfer_id"] else None,
        supersedes=str(row["supersedes"]) if row["supersedes"] else None,
        superseded_by=str(row["superseded_by"]) if row["superseded_by"] else None,
        corrected_by=row["corrected_by"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        version=row["version"],
        created_at=row["created_at"],
        answers=dict(answers or {}),
        notify_town=row["notify_town"],
    )


async def insert(uow: TenantUnitOfWork, d: Determination) -> bool:
    """Write ``d`` unless its source key was answered already; True when written."""
    k = keys(uow)
    row = await uow.fetchrow(
        "INSERT INTO kaigo_determinations (id, resident_id, kind, status, source_key, event_id, "
        "event_at, transfer_id, proposed_on, deadline, proposal, facility, supersedes, "
        "notify_town) VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
        "ON CONFLICT (source_key) DO NOTHING RETURNING created_at",
        d.id,
        d.resident_id,
        d.kind,
        d.source_key,
        d.event_id,
        d.event_at,
        d.transfer_id,
        d.proposed_on,
        d.deadline,
        seal(k, DETERMINATIONS, "proposal", d.id, d.proposal.to_json()),
        seal(k, DETERMINATIONS, "facility", d.id, d.facility.to_json() if d.facility else None),
        d.supersedes,
        d.notify_town,
    )
    if row is None:
        return False
    d.created_at = row["created_at"]
    return True


async def supersede(uow: TenantUnitOfWork, old_ids: Sequence[str], new_id: str) -> list[str]:
    """Mark the still open ``old_ids`` superseded by ``new_id``; returns those marked."""
    if not old_ids:
        return []
    rows = await uow.fetch(
        "UPDATE kaigo_determinations SET status = 'superseded', superseded_by = $2, "
        "version = version + 1 WHERE id = ANY($1::uuid[]) AND status = 'open' RETURNING id",
        list(old_ids),
        new_id,
    )
    return [str(r["id"]) for r in rows]


async def exists(uow: TenantUnitOfWork, source_key: str) -> bool:
    found = await uow.fetchval(
        "SELECT 1 FROM kaigo_determinations WHERE source_key = $1", source_key
    )
    return found is not None


async def get(
    uow: TenantUnitOfWork, determination_id: str, *, lock: bool = False
) -> Determination | None:
    row = await uow.fetchrow(
        _SELECT + " WHERE id = $1" + (" FOR UPDATE" if lock else ""), determination_id
    )
    return None if row is None else _determination(keys(uow), row)


async def open_for(
    uow: TenantUnitOfWork, resident_ids: Sequence[str]
) -> dict[str, list[Determination]]:
    """The open determinations of each resident, oldest first."""
    if not resident_ids:
        return {}
    rows = await uow.fetch(
        _SELECT + " WHERE resident_id = ANY($1::uuid[]) AND status = 'open' "
        "ORDER BY created_at, id",
        list(resident_ids),
    )
    k = keys(uow)
    out: dict[str, list[Determination]] = {}
    for r in rows:
        d = _determination(k, r)
        out.setdefault(d.resident_id, []).append(d)
    return out


async def by_transfer(uow: TenantUnitOfWork, transfer_id: str) -> list[Determination]:
    rows = await uow.fetch(_SELECT + " WHERE transfer_id = $1 ORDER BY created_at, id", transfer_id)
    k = keys(uow)
    return [_determination(k, r) for r in rows]


@dataclass(frozen=True, slots=True)
class Filters:
    kinds: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    overdue_on: date | None = None
    """Only open ones whose deadline is before this day."""
    resident_id: str | None = None
    after: tuple[date, str] | None = None
    """Keyset: (deadline, id) of the last row of the previous page."""
    limit: int = 50


async def page(uow: TenantUnitOfWork, f: Filters) -> list[Determination]:
    """A page of the queue, by deadline then id."""
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.kinds:
        where.append(f"kind = ANY({arg(list(f.kinds))}::text[])")
    if f.statuses:
        where.append(f"status = ANY({arg(list(f.statuses))}::text[])")
    if f.overdue_on is not None:
        where.append(f"status = 'open' AND deadline < {arg(f.overdue_on)}")
    if f.resident_id is not None:
        where.append(f"resident_id = {arg(f.resident_id)}::uuid")
    if f.after is not None:
        where.append(f"(deadline, id) > ({arg(f.after[0])}, {arg(f.after[1])}::uuid)")
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += f" ORDER BY deadline, id LIMIT {arg(f.limit)}"
    rows = await uow.fetch(sql, *args)
    k = keys(uow)
    return [_determination(k, r) for r in rows]


async def save_decision(
    uow: TenantUnitOfWork,
    d: Determination,
    status: str,
    by: str,
    at: datetime,
    answers: dict[str, str] | None = None,
) -> None:
    """Confirm or reject ``d`` (the caller holds its row lock and checked its version)."""
    result = await uow.execute(
        "UPDATE kaigo_determinations SET status = $2, decided_by = $3, decided_at = $4, "
        "answers = coalesce($5, answers), version = version + 1 WHERE id = $1 AND status = 'open'",
        d.id,
        status,
        by,
        at,
        seal(keys(uow), DETERMINATIONS, "answers", d.id, answers) if answers else None,
    )
    if affected(result) != 1:  # pragma: no cover - locked and checked by the caller
        raise RuntimeError("determination changed under its lock")
    d.status, d.decided_by, d.decided_at = status, by, at
    if answers:
        d.answers = dict(answers)
    d.version += 1


async def save_correction(uow: TenantUnitOfWork, d: Determination, c: Correction) -> None:
    result = await uow.execute(
        "UPDATE kaigo_determinations SET correction = $2, corrected_by = $3, "
        "version = version + 1 WHERE id = $1 AND status = 'open'",
        d.id,
        seal(keys(uow), DETERMINATIONS, "correction", d.id, c.to_json()),
        c.by,
    )
    if affected(result) != 1:  # pragma: no cover - locked and checked by the caller
        raise RuntimeError("determination changed under its lock")
    d.correction, d.corrected_by = c, c.by
    d.version += 1


async def decided_between(
    uow: TenantUnitOfWork, start: datetime, stop: datetime
) -> list[Determination]:
    """Confirmed determinations decided in [start, stop): the monthly change report."""
    rows = await uow.fetch(
        _SELECT + " WHERE status = 'confirmed' AND decided_at >= $1 AND decided_at < $2 "
        "ORDER BY decided_at, id",
        start,
        stop,
    )
    k = keys(uow)
    return [_determination(k, r) for r in rows]


async def every(uow: TenantUnitOfWork) -> list[Determination]:
    rows = await uow.fetch(_SELECT + " ORDER BY created_at, id")
    k = keys(uow)
    return [_determination(k, r) for r in rows]


async def count(uow: TenantUnitOfWork, status: str | None = None) -> int:
    if status is None:
        result: int = await uow.fetchval("SELECT count(*) FROM kaigo_determinations")
    else:
        result = await uow.fetchval(
            "SELECT count(*) FROM kaigo_determinations WHERE status = $1", status
        )
    return result


async def notify_town(uow: TenantUnitOfWork, determination_id: str) -> str | None:
    """The other town a confirmation of this determination notifies (plain column only)."""
    value: str | None = await uow.fetchval(
        "SELECT notify_town FROM kaigo_determinations WHERE id = $1 AND status = 'open'",
        determination_id,
    )
    return value
