"""Events copied or dated where they cannot be: replays and the future.

An event's MAC covers what the service chose, not what the database assigns
(``occurred_at``, ``xid``), and the table's key is ``(tenant, occurred_at,
event_id)``: a superuser can therefore insert a copy of a real event, same
id and same MAC, at any time, and the copy verifies on its own (sealed, it
even gets a leaf of its own). Event ids are random UUIDs drawn once per
event, so an id that occurs twice in one incarnation is a copy, whichever of
the two is the original. Checked with or without the town's audit key.

An event dated in the future cannot have been written by the service (the
database's clock stamps it); :data:`FUTURE_SLACK` allows for clocks of the
verifying and the writing session that differ slightly (a replica).
"""

from __future__ import annotations

from typing import Final

import asyncpg

from shared_gov.audit.verify.report import MAX_LISTED, Problem, VerifyReport

FUTURE_SLACK: Final = "5 minutes"
"""How far after the verifying transaction's ``now()`` an event may be dated."""

_DUPLICATES_SQL: Final = (
    # The candidates from the (tenant, event_id) index alone (index-only,
    # merged in order across the monthly partitions), then the incarnation
    # of each from its rows: an id repeated in another incarnation is that
    # log's business.
    "WITH twice AS ("
    "  SELECT event_id FROM audit.events WHERE tenant = $1 "
    "  GROUP BY event_id HAVING count(*) > 1) "
    "SELECT e.event_id, count(*) AS copies FROM audit.events AS e JOIN twice USING (event_id) "
    "WHERE e.tenant = $1 AND e.incarnation = $2 "
    "GROUP BY e.event_id HAVING count(*) > 1 ORDER BY e.event_id LIMIT $3"
)

_FUTURE_SQL: Final = (
    "SELECT e.event_id, e.occurred_at, now() AS checked_at FROM audit.events AS e "  # noqa: S608 - constants
    "WHERE e.tenant = $1 AND e.incarnation = $2 "
    f"AND e.occurred_at > now() + interval '{FUTURE_SLACK}' "
    "ORDER BY e.occurred_at, e.event_id LIMIT $3"
)


async def check_duplicates(conn: asyncpg.Connection, report: VerifyReport) -> None:
    """Every event id that occurs more than once in the incarnation, sealed or not."""
    rows = await conn.fetch(_DUPLICATES_SQL, report.tenant, report.incarnation, MAX_LISTED)
    for row in rows:
        report.add(
            Problem(
                "event_duplicated",
                f"event {row['event_id']} occurs {row['copies']} times "
                "(a copy inserted behind the service?)",
            )
        )


async def check_future(conn: asyncpg.Connection, report: VerifyReport) -> None:
    """Every event dated more than :data:`FUTURE_SLACK` after this transaction's ``now()``."""
    rows = await conn.fetch(_FUTURE_SQL, report.tenant, report.incarnation, MAX_LISTED)
    for row in rows:
        report.add(
            Problem(
                "event_in_future",
                f"event {row['event_id']} is dated {row['occurred_at'].isoformat()}, after "
                f"this check's time {row['checked_at'].isoformat()} (inserted behind the "
                "service?)",
            )
        )
