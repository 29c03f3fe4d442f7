"""Registered move-outs (転出届) and the town they go to (table ``move_outs``, t0007).

A ``move_out_domestic`` to a town of this deployment names that town
(``to_tenant``). The old town keeps it here, and it binds what crosses
between the towns (docs/sharing.md):

- the standing move agreement shows the 転出証明書 fields of a moved-out
  resident to the destination of their *pending* move only (Cedar reads it as
  the resource attribute ``move_destination``);
- a one-stop move-in is accepted only from that destination, only while the
  move-out is pending, and confirms it (``confirmed``) in the same
  transaction, with the row locked ``FOR UPDATE``: of several towns or clerks
  racing for one person, exactly one wins.

A move-out is bound to the destination's *incarnation* (``to_incarnation``,
t0010), read when it is registered: a town code offboarded and onboarded
again is a new town, which must never confirm or read a move registered while
its predecessor existed. A move-out whose destination is no longer that
incarnation (offboarded, re-created) binds nobody: it has no destination here
(the person moves with the paper 転出証明書).

Everything here runs in the OLD town's unit of work (its schema and role).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import messages as m
from shared_gov.domains.residents.models import ChangeEvent
from shared_gov.domains.residents.schemas import MoveCreate
from shared_gov.errors import FieldError
from shared_gov.messages import access as ma

# The destination only while it is the incarnation the move-out was registered
# with (``sharing.town_incarnation`` is NULL for a town that is not active).
_BOUND_TOWN = "CASE WHEN to_incarnation = sharing.town_incarnation(to_town::text) THEN to_town END"
_PENDING = (
    f"SELECT move_out_id, resident_id, {_BOUND_TOWN} AS to_town FROM move_outs "  # noqa: S608 - constant
    "WHERE resident_id = $1 AND status = 'pending'"
)
_PENDING_FOR_UPDATE = _PENDING + " FOR UPDATE"


@dataclass(frozen=True, slots=True)
class PendingMove:
    move_out_id: str
    resident_id: str
    to_town: str | None
    """The destination town's code, or None when it is not (or no longer) the town here
    the move-out was registered with."""


def check(data: MoveCreate, own_town: str, problems: list[FieldError]) -> None:
    """Validate ``to_tenant`` of a move (a structural pattern was checked already)."""
    if data.to_tenant is None:
        return
    if data.event is not ChangeEvent.MOVE_OUT_DOMESTIC:
        problems.append(FieldError("/to_tenant", m.ONLY_DOMESTIC_NAMES_TOWN))
    elif not is_valid_lgcode(data.to_tenant):
        problems.append(FieldError("/to_tenant", ma.NOT_A_TOWN_CODE))
    elif data.to_tenant == own_town:
        problems.append(FieldError("/to_tenant", m.WITHIN_TOWN))


async def register(uow: TenantUnitOfWork, resident_id: str, to_town: str | None) -> None:
    """Record a planned move-out (one pending per resident: the record is then moved_out),
    bound to the destination's current incarnation."""
    await uow.execute(
        "INSERT INTO move_outs (resident_id, to_town, to_incarnation) "
        "VALUES ($1, $2::text, sharing.town_incarnation($2::text))",
        resident_id,
        to_town,
    )


async def pending(uow: TenantUnitOfWork, resident_id: str, *, lock: bool) -> PendingMove | None:
    """The resident's pending move-out; with ``lock``, held FOR UPDATE until commit.

    Under READ COMMITTED a waiter re-checks ``status = 'pending'`` on the row
    the winner confirmed, and so finds nothing.
    """
    row = await uow.fetchrow(_PENDING_FOR_UPDATE if lock else _PENDING, resident_id)
    if row is None:
        return None
    return PendingMove(
        str(row["move_out_id"]),
        str(row["resident_id"]),
        row["to_town"].strip() if row["to_town"] else None,
    )


async def destinations(uow: TenantUnitOfWork, resident_ids: Sequence[str]) -> dict[str, str]:
    """Resident id → destination town of their pending move-out (only those with one)."""
    if not resident_ids:
        return {}
    rows = await uow.fetch(
        "SELECT resident_id, to_town FROM move_outs "
        "WHERE resident_id = ANY($1::uuid[]) AND status = 'pending' AND to_town IS NOT NULL "
        "AND to_incarnation = sharing.town_incarnation(to_town::text)",
        list(resident_ids),
    )
    return {str(r["resident_id"]): r["to_town"].strip() for r in rows}


async def confirm(uow: TenantUnitOfWork, move: PendingMove) -> None:
    """The destination registered the move-in: the move-out is settled for good."""
    status = await uow.execute(
        "UPDATE move_outs SET status = 'confirmed', confirmed_at = now() "
        "WHERE move_out_id = $1 AND status = 'pending'",
        move.move_out_id,
    )
    if status != "UPDATE 1":  # pragma: no cover - the row is locked FOR UPDATE
        raise RuntimeError("the move-out was settled concurrently")
