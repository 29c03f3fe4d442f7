"""Withholding audit events from residents' access reports until a date.

During an investigation, telling a resident that a given office looked at
their record can warn the person investigated. Auditors may therefore
withhold events from the resident's access report until a release date.
Suppressions live in ``audit.suppressions`` (migration c0006): append-only
like the log itself, so a suppression can be neither quietly removed nor
back-dated. The latest suppression of an event wins: to release early, add
one whose date is today.

The report never shows what is withheld, only that something is and until
when (the latest release date among the withheld entries).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared_gov import errors
from shared_gov.audit.tlog import CURRENT_INCARNATION
from shared_gov.db import Database
from shared_gov.messages import audit as m

MAX_PER_REQUEST = 1000


@dataclass(frozen=True, slots=True)
class Suppression:
    event_id: str
    until: date
    reason: str
    created_by: str
    created_at: datetime


async def add(
    db: Database,
    tenant: str,
    event_ids: list[uuid.UUID],
    until: date,
    reason: str,
    created_by: str,
    audit: Callable[[Any, int], Awaitable[None]] | None = None,
) -> int:
    """Withhold ``event_ids`` (all events of this town's log) until ``until``.

    422 names, by position, every id that is not an event of this town, and
    nothing is stored then. ``audit(conn, count)`` runs in the same
    transaction, so the suppression and its audit event commit together.
    """
    wanted = list(dict.fromkeys(event_ids))
    async with db.catalog() as conn:
        found = {
            r["event_id"]
            for r in await conn.fetch(
                "SELECT event_id FROM audit.events "  # noqa: S608 - constant SQL
                "WHERE tenant = $1 AND event_id = ANY($2::uuid[]) "
                f"AND incarnation = {CURRENT_INCARNATION.format(town='$1')}",
                tenant,
                wanted,
            )
        }
        missing = [
            errors.FieldError(f"/event_ids/{i}", m.NO_SUCH_EVENT)
            for i, e in enumerate(event_ids)
            if e not in found
        ]
        if missing:
            raise errors.invalid(missing)
        await conn.execute(
            "INSERT INTO audit.suppressions (tenant, event_id, until, reason, created_by) "
            "SELECT $1, e, $3, $4, $5 FROM unnest($2::uuid[]) AS e",
            tenant,
            wanted,
            until,
            reason,
            created_by,
        )
        if audit is not None:
            await audit(conn, len(wanted))
    return len(wanted)


async def current(db: Database, tenant: str, *, limit: int = 1000) -> list[Suppression]:
    """The latest suppression of each event of this town, newest first."""
    async with db.catalog() as conn:
        rows = await conn.fetch(
            """
            SELECT DISTINCT ON (event_id) event_id, until, reason, created_by, created_at, id
            FROM audit.suppressions WHERE tenant = $1
            ORDER BY event_id, id DESC
            """,
            tenant,
        )
    rows = sorted(rows, key=lambda r: r["id"], reverse=True)[:limit]
    return [
        Suppression(str(r["event_id"]), r["until"], r["reason"], r["created_by"], r["created_at"])
        for r in rows
    ]


LATEST_UNTIL_SQL = """
    SELECT s.until FROM audit.suppressions s
    WHERE s.tenant = e.tenant AND s.event_id = e.event_id
    ORDER BY s.id DESC LIMIT 1
"""
"""A correlated subquery on ``audit.events e``: the event's release date, if any."""
