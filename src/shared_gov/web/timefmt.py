"""Times as a clerk reads them: Japan time, with the Japanese era in Japanese.

``令和8年12月7日 14:05`` on a Japanese page, ``2026-12-07 14:05 JST`` on an
English one. The console's Jinja filter ``jst`` (:mod:`.pages`) calls
:func:`jst_text` with the page's language; every template may use it.

Japan keeps no daylight saving time, so JST is UTC+9 all year
(:data:`shared_gov.clock.JST`). The eras are those of the 元号法 and its
cabinet orders, by the first day of each: 令和 from 2019-05-01, 平成 from
1989-01-08, 昭和 from 1926-12-25, 大正 from 1912-07-30, 明治 from the
Gregorian calendar's adoption (1873-01-01; earlier dates are in the lunar
calendar, and are shown in the Western year). A first year is written
``元年``, as on a 住民票.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from shared_gov.clock import JST

ERAS: Final[tuple[tuple[date, str], ...]] = (
    (date(2019, 5, 1), "令和"),
    (date(1989, 1, 8), "平成"),
    (date(1926, 12, 25), "昭和"),
    (date(1912, 7, 30), "大正"),
    (date(1873, 1, 1), "明治"),
)
"""Each era's first day, newest first."""

_MEIJI_FIRST_YEAR: Final = 1868
"""明治元年 (the era began in 1868, before the Gregorian calendar was adopted)."""

NONE: Final = "—"


def era_of(day: date) -> tuple[str, int] | None:
    """The era and its year for ``day`` (``("令和", 8)``), or None before 1873."""
    for first, name in ERAS:
        if day >= first:
            start = _MEIJI_FIRST_YEAR if name == "明治" else first.year
            return name, day.year - start + 1
    return None


def wareki(day: date) -> str:
    """``令和8年12月7日`` (``令和元年5月1日`` for the first year)."""
    era = era_of(day)
    if era is None:
        return f"{day.year}年{day.month}月{day.day}日"
    name, year = era
    return f"{name}{'元' if year == 1 else year}年{day.month}月{day.day}日"


def to_jst(value: datetime | date | str) -> datetime | date:
    """A moment in Japan time (a date stays a date).

    A string is read as ISO 8601 (a trailing ``Z`` is UTC); a time without
    an offset is taken as Japan time, as the API takes one.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        if len(text) == 10:
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=JST)
        return value.astimezone(JST)
    return value


def jst_text(
    value: datetime | date | str | None, lang: str = "ja", *, seconds: bool = False
) -> str:
    """``value`` as a clerk reads it, in ``lang`` (``ja`` or ``en``).

    ``seconds``: to the second (an audit event's time); otherwise to the
    minute. None (and an unreadable string) gives ``—``: a page shows
    something rather than failing.
    """
    if value is None or value == "":
        return NONE
    try:
        moment = to_jst(value)
    except ValueError:
        return NONE
    if not isinstance(moment, datetime):
        return wareki(moment) if lang == "ja" else moment.isoformat()
    clock = f"{moment:%H:%M:%S}" if seconds else f"{moment:%H:%M}"
    if lang == "ja":
        return f"{wareki(moment.date())} {clock}"
    return f"{moment.date().isoformat()} {clock} JST"
