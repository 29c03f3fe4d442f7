"""How much the log holds, by Japan day, by hour of the day and by department.

The analyses find the unusual; these counts show the usual around it — the
console draws them as charts (accesses per day, per hour, per department),
each bar split into allowed and refused (denied, not found, error). One scan
of the window (``GROUPING SETS``), with the analyses' own conditions: the
town's current incarnation, and other towns' events about the town's
protected or linked residents left out (rule 1), since even a count per
hour of them would say when they were looked at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shared_gov.audit.analyses.checks import _LOCAL, _RANGE, _jst
from shared_gov.db import Database

NO_DEPARTMENT = ""
"""The department of events without one (unauthenticated callers, jobs)."""


@dataclass(frozen=True, slots=True)
class Counts:
    allowed: int = 0
    refused: int = 0

    @property
    def total(self) -> int:
        return self.allowed + self.refused


@dataclass(frozen=True, slots=True)
class Activity:
    """Counts of ``[since, until)``; every day and every hour listed, zeros included."""

    since: datetime
    until: datetime
    per_day: list[tuple[date, Counts]]
    per_hour: list[tuple[int, Counts]]
    per_department: list[tuple[str, Counts]] = field(default_factory=list)
    """Most events first."""

    @property
    def events(self) -> int:
        return sum(c.total for _, c in self.per_hour)


def _days(since: datetime, until: datetime) -> list[date]:
    first = _jst(since).date()
    last = _jst(until - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def activity(
    db: Database,
    tenant: str,
    since: datetime,
    until: datetime,
    guarded: Iterable[str] = (),
) -> Activity:
    """The counts of the town's log in ``[since, until)``.

    ``guarded``: subject hashes of the town's protected or linked residents
    (:func:`shared_gov.api.auditors.guarded_subjects`), as for the analyses.
    """
    hashes = "{" + ",".join(str(int(h)) for h in sorted(guarded, key=int)) + "}"
    async with db.catalog() as conn:
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        await conn.execute("SELECT set_config('shared_gov.audit_guarded', $1, true)", hashes)
        rows = await conn.fetch(
            f"""
            SELECT {_LOCAL}::date AS day,
                   extract(hour FROM {_LOCAL})::int AS hour,
                   COALESCE(department, '') AS department,
                   outcome = 'allowed' AS allowed,
                   GROUPING({_LOCAL}::date, extract(hour FROM {_LOCAL})::int,
                            COALESCE(department, '')) AS grouping,
                   count(*) AS events
            FROM audit.events
            WHERE {_RANGE}
            GROUP BY GROUPING SETS (
                ({_LOCAL}::date, outcome = 'allowed'),
                (extract(hour FROM {_LOCAL})::int, outcome = 'allowed'),
                (COALESCE(department, ''), outcome = 'allowed')
            )
            """,  # noqa: S608 - fixed SQL fragments; values are parameters
            tenant,
            since,
            until,
        )
    days: dict[date, Counts] = dict.fromkeys(_days(since, until), Counts())
    hours: dict[int, Counts] = dict.fromkeys(range(24), Counts())
    departments: dict[str, Counts] = {}

    def bump(was: Counts | None, allowed: bool, n: int) -> Counts:
        was = was or Counts()
        if allowed:
            return Counts(was.allowed + n, was.refused)
        return Counts(was.allowed, was.refused + n)

    for r in rows:
        # GROUPING's bits, left to right: day, hour, department (1 = not grouped by it).
        grouped, allowed, n = r["grouping"], bool(r["allowed"]), int(r["events"])
        if grouped == 0b011:
            days[r["day"]] = bump(days.get(r["day"]), allowed, n)
        elif grouped == 0b101:
            hours[r["hour"]] = bump(hours.get(r["hour"]), allowed, n)
        elif grouped == 0b110:
            departments[r["department"]] = bump(departments.get(r["department"]), allowed, n)
    return Activity(
        since=_jst(since),
        until=_jst(until),
        per_day=sorted(days.items()),
        per_hour=sorted(hours.items()),
        per_department=sorted(departments.items(), key=lambda kv: (-kv[1].total, kv[0])),
    )
