"""Rule 1's components kept up to date: the writes' side of 支援措置 linkage.

A record is *linked* when it shares a connected component of "person —(ever
filed under / heads)— household" with a person under 支援措置
(docs/support-measures.md; tenant revision t0011). The flag is stored
(``residents.protection_linked``) and recomputed here, under a per-town
lock, in the transaction of every write that can change a component; the
reads only read it (:func:`~shared_gov.domains.residents.repository.linked_residents`).
:func:`relink` is the application-side half of t0011's backfill.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from shared_gov.crypto.keyring import keys_of
from shared_gov.db import TenantUnitOfWork

LINKAGE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


async def lock_linkage(uow: TenantUnitOfWork) -> None:
    """Serialise, per town, the writes that can change rule 1's components.

    Taken FIRST (before any row lock) by every write that recomputes
    ``protection_linked`` or locks more than one record: two writes that
    join components (a registration into a household while a member is put
    under 支援措置) then run one after the other, and the second computes
    over what the first committed; and a recomputation, which updates the
    flags of a whole component, never waits for a row whose holder waits
    for this lock (no deadlock). Re-entrant within a transaction.
    """
    await uow.execute(LINKAGE_LOCK, f"{uow.code}:linkage")


# Rule 1's components (docs/support-measures.md, tenant revision t0011): the
# graph "person —(ever filed under)— household". A person's edges: the
# household the record names now, the households it names in
# household_memberships (filed there before), the households it heads.
_PEOPLE_OF = (
    "SELECT r.id AS rid FROM residents AS r WHERE r.household_no = reach.hno "
    "UNION ALL SELECT m.resident_id FROM household_memberships AS m "
    "WHERE m.household_no = reach.hno "
    "UNION ALL SELECT h.head_id FROM households AS h "
    "WHERE h.household_no = reach.hno AND h.head_id IS NOT NULL"
)
_HOUSEHOLDS_OF = (
    "SELECT r.household_no AS hno FROM residents AS r WHERE r.id = person.rid "
    "UNION ALL SELECT m.household_no FROM household_memberships AS m "
    "WHERE m.resident_id = person.rid "
    "UNION ALL SELECT h.household_no FROM households AS h WHERE h.head_id = person.rid"
)
_SEED = "(support_measure OR protection_carried OR households_unknown)"
"""A record that links its component: protected (in any state: someone who
moved out still tells where the family lives), carried from another town's
component (one-stop move), or with past households not yet read (t0011)."""


def _reach(start: str) -> str:
    """``reach(hno)``: every household connected to the households ``start`` selects;
    ``people(rid)``: every person filed under (or heading) one of them.

    Breadth first, each household visited once (``UNION``); every step has an
    index to probe (residents_household, residents_pkey, the memberships'
    primary key and household index, households_pkey, households_head), so
    the cost grows with the component, not with the town.
    """
    return (
        f"WITH RECURSIVE reach(hno) AS ({start} "  # noqa: S608 - fixed texts
        f"UNION SELECT nxt.hno FROM reach CROSS JOIN LATERAL ({_PEOPLE_OF}) AS person "
        f"CROSS JOIN LATERAL ({_HOUSEHOLDS_OF}) AS nxt), "
        "people AS (SELECT DISTINCT person.rid FROM reach "
        f"CROSS JOIN LATERAL ({_PEOPLE_OF}) AS person)"
    )


_RECOMPUTE = "".join(  # fixed texts only
    (
        _reach("SELECT household_no FROM residents WHERE id = $1"),
        ", seeded AS (SELECT COALESCE(bool_or(",
        _SEED,
        "), false) AS v FROM residents WHERE id IN (SELECT rid FROM people)), ",
        "changed AS (UPDATE residents AS r SET protection_linked = s.v FROM seeded AS s ",
        "WHERE r.id IN (SELECT rid FROM people) AND r.protection_linked <> s.v RETURNING r.id) ",
        "SELECT (SELECT v FROM seeded) AS linked, (SELECT count(*) FROM changed) AS changed",
    )
)
_RECOMPUTE_TOWN = (
    _reach(f"SELECT household_no FROM residents WHERE {_SEED}")  # noqa: S608
    + ", changed AS (UPDATE residents SET protection_linked = (id IN (SELECT rid FROM people)) "
    "WHERE protection_linked IS DISTINCT FROM (id IN (SELECT rid FROM people)) RETURNING id) "
    "SELECT count(*) FROM changed"
)


async def relink_component(uow: TenantUnitOfWork, resident_id: str) -> bool:
    """Recompute ``protection_linked`` for the component of ``resident_id``; is it linked?

    One statement. The caller holds :func:`lock_linkage` (taken before any
    row lock) and calls this after its own writes, in their transaction.
    Only records whose flag changes are written.
    """
    row = await uow.fetchrow(_RECOMPUTE, resident_id)
    return bool(row is not None and row["linked"])


async def relink_town(uow: TenantUnitOfWork) -> int:
    """Recompute ``protection_linked`` for the whole town, from the seeds; returns
    how many flags changed. The caller holds :func:`lock_linkage`."""
    changed: int = await uow.fetchval(_RECOMPUTE_TOWN)
    return changed


async def carry_protection(uow: TenantUnitOfWork, resident_id: str) -> None:
    """Mark a record linked by a component in another town (one-stop move-in, F3)."""
    await uow.execute("UPDATE residents SET protection_carried = true WHERE id = $1", resident_id)


async def lift_carried(uow: TenantUnitOfWork, resident_id: str) -> None:
    """Forget a carried link (市民課 lifting 支援措置 on the record)."""
    await uow.execute(
        "UPDATE residents SET protection_carried = false WHERE id = $1 AND protection_carried",
        resident_id,
    )


async def past_households(
    uow: TenantUnitOfWork, resident_ids: Sequence[str]
) -> dict[str, set[str]]:
    """Every household each of these residents was ever filed under (from their history).

    Snapshots are sealed as a whole, so each is decrypted: only the relink
    step (:func:`relink`) asks, for records whose past is not yet known.
    """
    wanted = sorted(set(resident_ids))
    if not wanted:
        return {}
    rows = await uow.fetch(
        "SELECT resident_id::text AS rid, history_no, snapshot FROM resident_history "
        "WHERE resident_id = ANY($1::uuid[])",
        wanted,
    )
    keys = keys_of(uow)
    out: dict[str, set[str]] = {rid: set() for rid in wanted}
    for r in rows:
        place = f"{r['rid']}/{r['history_no']}"
        text = keys.decrypt("resident_history", "snapshot", place, r["snapshot"]) or "{}"
        number = json.loads(text).get("household_no")
        if number:
            out[r["rid"]].add(str(number))
    return out


@dataclass(frozen=True, slots=True)
class Relinked:
    """What :func:`relink` did (counts only: no personal value)."""

    residents_read: int
    memberships_added: int
    flags_changed: int


RELINK_BATCH = 500


async def relink(uow: TenantUnitOfWork, *, every: bool = False) -> Relinked:
    """Read the past households of records whose past is unknown, then recompute the town.

    The application-side half of t0011's backfill (and the step after loading
    a history from another system): decrypts the history snapshots of every
    record marked ``households_unknown`` (``every``: of every record whose
    household ever changed), records each household they name in
    ``household_memberships``, clears the mark, and recomputes every flag.
    Under the town's linkage lock, in the caller's transaction.
    """
    await lock_linkage(uow)
    column = "households_changed OR households_unknown" if every else "households_unknown"
    ids = [
        str(r["id"])
        for r in await uow.fetch(f"SELECT id FROM residents WHERE {column} ORDER BY id")  # noqa: S608
    ]
    added = 0
    for start in range(0, len(ids), RELINK_BATCH):
        batch = ids[start : start + RELINK_BATCH]
        past = await past_households(uow, batch)
        pairs = [(rid, no) for rid, numbers in past.items() for no in sorted(numbers)]
        if pairs:
            status = await uow.execute(
                "INSERT INTO household_memberships (resident_id, household_no) "
                "SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING",
                [p[0] for p in pairs],
                [p[1] for p in pairs],
            )
            added += int(status.rsplit(" ", 1)[-1])
        await uow.execute(
            "UPDATE residents SET households_unknown = false WHERE id = ANY($1::uuid[])", batch
        )
    changed = await relink_town(uow)
    return Relinked(len(ids), added, changed)
