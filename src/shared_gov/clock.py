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


def day_of(moment: datetime) -> datetime:
    """``moment`` coarsened to the start of its day in Japan (00:00 JST).

    Rule 1 (docs/support-measures.md): the exact time of a protected or
    linked person's change is the same instant in both towns of a one-stop
    move, and would let a reader of both towns' feeds or histories match
    them; the date is what a caller other than 市民課 registering needs.
    """
    day = moment.astimezone(JST).date()
    return datetime(day.year, day.month, day.day, tzinfo=JST)
