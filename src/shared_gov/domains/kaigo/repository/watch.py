"""The 65 watch (``kaigo_watch``) and the consumer's position (``kaigo_consumer``).

The daily job must find who reaches 65 on a day without decrypting every
resident's birth date. When a resident's registration reaches the consumer,
the day they reach 65 is computed once and stored as an envelope beside a
blind index of it (``kaigo_turns_65``: a keyed hash of the ISO date, truncated
to the town's population so that about two residents share a value). The job
computes the index value of the day under every live key version, reads the
few candidates and decrypts only those (docs/kaigo.md, "Who reaches 65
tomorrow"): a handful of decryptions a day instead of the whole register.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from shared_gov.crypto.keyring import TownKeys, index_column
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo.repository.common import keys
from shared_gov.domains.kaigo.repository.register import Position
from shared_gov.domains.kaigo.spec import TURNS_65_INDEX, WATCH

_BLIND = (index_column(TURNS_65_INDEX, 1), index_column(TURNS_65_INDEX, 2))
CONSUMER = "outbox"


def _blind(k: TownKeys, day: date) -> list[int | None]:
    values: dict[str, int | None] = dict.fromkeys(_BLIND)
    for version, index in k.index_versions[TURNS_65_INDEX]:
        values[index_column(TURNS_65_INDEX, version)] = index.value(day.isoformat())
    return list(values.values())


async def put(uow: TenantUnitOfWork, items: Sequence[tuple[str, date]]) -> None:
    """Watch each (resident, the day they reach 65); a later write replaces an earlier."""
    if not items:
        return
    k = keys(uow)
    rows = [
        (rid, k.encrypt(WATCH, "turns_65_on", rid, day.isoformat()), *_blind(k, day))
        for rid, day in items
    ]
    await uow.executemany(
        f"INSERT INTO kaigo_watch (resident_id, turns_65_on, {', '.join(_BLIND)}) "  # noqa: S608
        "VALUES ($1, $2, $3, $4) ON CONFLICT (resident_id) DO UPDATE SET "
        f"turns_65_on = excluded.turns_65_on, {_BLIND[0]} = excluded.{_BLIND[0]}, "
        f"{_BLIND[1]} = excluded.{_BLIND[1]}, updated_at = now()",
        rows,
    )


async def forget(uow: TenantUnitOfWork, resident_ids: Sequence[str]) -> None:
    """Stop watching (moved out, died)."""
    if resident_ids:
        await uow.execute(
            "DELETE FROM kaigo_watch WHERE resident_id = ANY($1::uuid[])", list(resident_ids)
        )


async def reaching(uow: TenantUnitOfWork, day: date) -> list[str]:
    """Residents watched who reach 65 on ``day``: index candidates, then decrypted."""
    k = keys(uow)
    values = k.index_values(TURNS_65_INDEX, day.isoformat())
    where = " OR ".join(
        f"{index_column(TURNS_65_INDEX, version)} = ${i}"
        for i, (version, _) in enumerate(values, 1)
    )
    rows = await uow.fetch(
        f"SELECT resident_id, turns_65_on FROM kaigo_watch WHERE {where}",  # noqa: S608
        *(v for _, v in values),
    )
    wanted = day.isoformat()
    return sorted(
        str(r["resident_id"])
        for r in rows
        if k.decrypt(WATCH, "turns_65_on", str(r["resident_id"]), r["turns_65_on"]) == wanted
    )


async def watched(uow: TenantUnitOfWork) -> int:
    result: int = await uow.fetchval("SELECT count(*) FROM kaigo_watch")
    return result


# --- the consumer's position -----------------------------------------------------------


async def claim(uow: TenantUnitOfWork) -> tuple[Position, date | None] | None:
    """The consumer's position and the last day the 65 job covered, locked for this
    transaction — or None when another worker holds it (it is working this town)."""
    row = await uow.fetchrow(
        "SELECT xid, seq, job_65_through FROM kaigo_consumer WHERE name = $1 "
        "FOR UPDATE SKIP LOCKED",
        CONSUMER,
    )
    if row is None:
        return None
    return Position(int(row["xid"]), int(row["seq"])), row["job_65_through"]


async def advance(uow: TenantUnitOfWork, position: Position) -> None:
    await uow.execute(
        "UPDATE kaigo_consumer SET xid = $2::xid8, seq = $3, updated_at = now() WHERE name = $1",
        CONSUMER,
        position.xid,
        position.seq,
    )


async def job_done(uow: TenantUnitOfWork, through: date) -> None:
    await uow.execute(
        "UPDATE kaigo_consumer SET job_65_through = $2, updated_at = now() WHERE name = $1",
        CONSUMER,
        through,
    )


async def rewind(uow: TenantUnitOfWork) -> None:
    """Back to the outbox's beginning (a replay: determinations already written stay)."""
    await uow.execute(
        "UPDATE kaigo_consumer SET xid = '0', seq = 0, updated_at = now() WHERE name = $1",
        CONSUMER,
    )


async def reached_by(uow: TenantUnitOfWork, day: date) -> list[tuple[str, date]]:
    """Every watched resident who reaches 65 on or before ``day``, with that day.

    Decrypts the whole watch: only for the daily job's first run in a town
    (its catch-up), never daily.
    """
    k = keys(uow)
    out: list[tuple[str, date]] = []
    async for r in uow.cursor("SELECT resident_id, turns_65_on FROM kaigo_watch"):
        rid = str(r["resident_id"])
        turns = date.fromisoformat(k.decrypt(WATCH, "turns_65_on", rid, r["turns_65_on"]) or "")
        if turns <= day:
            out.append((rid, turns))
    return out
