"""What the analyses look for unless told otherwise, and the bounds of a window.

Office hours, weekends, the year-end closure and public holidays
(:func:`closed_days`), the bulk and denial thresholds; how long a window
may be and how many findings and event ids a report lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

import holidays

OFFICE_OPENS = time(8, 30)
OFFICE_CLOSES = time(17, 30)
WEEKENDS_CLOSED = True
YEAR_END_CLOSURE: tuple[tuple[int, int], ...] = (
    (12, 29),
    (12, 30),
    (12, 31),
    (1, 1),
    (1, 2),
    (1, 3),
)
"""Days the town hall is closed by ordinance (地方自治法 第4条の2), beyond public holidays."""
YEAR_END_NAME = "年末年始（閉庁日）"
BULK_RESIDENTS = 100
BULK_WINDOW = timedelta(hours=1)
DENIALS = 5
"""Also the threshold of failed logins per client address."""
FAILED_LOGIN = "authenticate"
"""The action of a refused bearer token (shared_gov.auth.failures.ACTION)."""
DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=366)
EVENT_IDS_PER_FINDING = 100
MAX_FINDINGS = 500
"""Per analysis; beyond it the report says ``truncated`` (narrow the window)."""


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    opens: time = OFFICE_OPENS
    closes: time = OFFICE_CLOSES
    weekends: bool = WEEKENDS_CLOSED
    bulk_residents: int = BULK_RESIDENTS
    denials: int = DENIALS


def closed_days(since: date, until: date) -> dict[date, str]:
    """Public holidays (振替休日 and 国民の休日 included) and closure days in
    ``[since, until]``, with their Japanese names."""
    years = range(since.year, until.year + 1)
    result: dict[date, str] = {}
    for year in years:
        for month, day in YEAR_END_CLOSURE:
            result[date(year, month, day)] = YEAR_END_NAME
    # Statutory names win over the closure label (1/1 is 元日).
    result.update(holidays.country_holidays("JP", years=years, language="ja").items())
    return {d: n for d, n in sorted(result.items()) if since <= d <= until}
