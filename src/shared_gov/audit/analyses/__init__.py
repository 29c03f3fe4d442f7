"""Standard analyses of a town's audit log (住民記録システム標準仕様書: 操作ログ).

The operation-log requirements name late-night and holiday access, failed
attempts and bulk searches; DESIGN.md adds individual-number use. Each
analysis reads one time window of one town's log and returns findings, and
every finding links to the events behind it: their ids (the first
:data:`EVENT_IDS_PER_FINDING`) and a ready ``/audit/events`` query.

- **After hours**: events outside office hours (default 8:30–17:30 JST), on
  weekends, on Japanese public holidays (the maintained ``holidays``
  package) and on the year-end closure (12/29–1/3, closed by each town's
  休日条例), one finding per actor and day.
- **Bulk access**: one actor touching more than N distinct residents
  (default 100) within any sliding hour, not just a clock hour, so a burst
  across 10:59–11:01 is not split in two. Bulk jobs that record a row count
  without naming subjects (imports, exports) count their rows.
- **Repeated denials**: at least M denials (default 5) for one actor in the
  window (failed logins excepted: their actor is always ``unauthenticated``).
- **Failed logins**: at least M refused bearer tokens (default 5, the same
  threshold) from one client address in the window. A token that fails
  verification but points at the town is recorded as a denied
  ``authenticate`` event (:mod:`shared_gov.auth.failures`); the reasons say
  how it failed (``expired``, ``bad signature``, ...).
- **Individual-number reads**: per actor, how many allowed accesses touched
  個人番号 and for how many residents, by purpose.

Times of day are Japan time, computed as UTC + 9 hours in SQL: Japan has no
daylight saving time.

Modules: :mod:`.settings` (defaults and bounds), :mod:`.report` (the
report's structs), :mod:`.checks` (the analyses); :func:`analyse` runs them
all in one snapshot. :mod:`.activity` counts the window's events by day,
hour and department (the console's charts). The public names are this package's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shared_gov.audit.analyses.activity import Activity, Counts, activity
from shared_gov.audit.analyses.checks import (
    _after_hours,
    _bulk,
    _denials,
    _failed_logins,
    _individual_number,
    _jst,
)
from shared_gov.audit.analyses.report import (
    AfterHours,
    AnalysisReport,
    AnalysisSettingsOut,
    BulkAccess,
    FailedLogins,
    IndividualNumberReads,
    RepeatedDenials,
)
from shared_gov.audit.analyses.settings import (
    BULK_RESIDENTS,
    BULK_WINDOW,
    DEFAULT_WINDOW,
    DENIALS,
    EVENT_IDS_PER_FINDING,
    FAILED_LOGIN,
    MAX_FINDINGS,
    MAX_WINDOW,
    OFFICE_CLOSES,
    OFFICE_OPENS,
    WEEKENDS_CLOSED,
    YEAR_END_CLOSURE,
    YEAR_END_NAME,
    AnalysisSettings,
    closed_days,
)
from shared_gov.db import Database

__all__ = [
    "BULK_RESIDENTS",
    "BULK_WINDOW",
    "DEFAULT_WINDOW",
    "DENIALS",
    "EVENT_IDS_PER_FINDING",
    "FAILED_LOGIN",
    "MAX_FINDINGS",
    "MAX_WINDOW",
    "OFFICE_CLOSES",
    "OFFICE_OPENS",
    "WEEKENDS_CLOSED",
    "YEAR_END_CLOSURE",
    "YEAR_END_NAME",
    "Activity",
    "AfterHours",
    "AnalysisReport",
    "AnalysisSettings",
    "AnalysisSettingsOut",
    "BulkAccess",
    "Counts",
    "FailedLogins",
    "IndividualNumberReads",
    "RepeatedDenials",
    "activity",
    "analyse",
    "closed_days",
]


async def analyse(
    db: Database,
    tenant: str,
    since: datetime,
    until: datetime,
    settings: AnalysisSettings | None = None,
    guarded: Iterable[str] = (),
) -> AnalysisReport:
    """Run every analysis on ``[since, until)`` of the town's log, in one snapshot.

    ``guarded``: subject hashes of the town's protected or linked residents;
    other towns' events about them are left out (rule 1).
    """
    s = settings or AnalysisSettings()
    hashes = "{" + ",".join(str(int(h)) for h in sorted(guarded, key=int)) + "}"
    async with db.catalog() as conn:
        # One snapshot for all the analyses, so their counts agree.
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        await conn.execute("SELECT set_config('shared_gov.audit_guarded', $1, true)", hashes)
        after_hours, t1 = await _after_hours(conn, tenant, since, until, s)
        bulk, t2 = await _bulk(conn, tenant, since, until, s)
        denials, t3 = await _denials(conn, tenant, since, until, s)
        failed_logins, t5 = await _failed_logins(conn, tenant, since, until, s)
        numbers, t4 = await _individual_number(conn, tenant, since, until)
    return AnalysisReport(
        tenant=tenant,
        since=_jst(since),
        until=_jst(until),
        settings=AnalysisSettingsOut(
            office_hours=f"{s.opens:%H:%M}-{s.closes:%H:%M}",
            weekends_closed=s.weekends,
            time_zone="Asia/Tokyo (UTC+09:00)",
            bulk_residents_per_hour=s.bulk_residents,
            denials=s.denials,
        ),
        after_hours=after_hours,
        bulk_access=bulk,
        repeated_denials=denials,
        failed_logins=failed_logins,
        individual_number_reads=numbers,
        truncated=t1 or t2 or t3 or t4 or t5,
    )
