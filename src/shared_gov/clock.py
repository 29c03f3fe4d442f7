"""Dates in Japan time.

Domain dates (異動日, 届出日, 処理日) are calendar dates in Japan, which has
no daylight saving time, so a fixed UTC+9 offset is exact and needs no tz
database on the machine.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")


def now_jst() -> datetime:
    return datetime.now(JST)


def today_jst() -> date:
    """Today's date in Japan: the 処理日 of anything processed now."""
    return now_jst().date()
