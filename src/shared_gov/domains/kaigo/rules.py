"""The date rules of 介護保険, as pure functions: no database, no clock, no keys.

Every rule cites where it comes from (sources gathered in ``FACTS.md``,
"Long-term care insurance"):

=====================================  =======================================
rule                                   source
=====================================  =======================================
who is insured (第1号: 65+, 第2号:     介護保険法 第9条
40–64 with medical insurance)
when qualification starts              介護保険法 第10条
when it ends (the next day; the same   介護保険法 第11条第1項 (第2号: 第11条第2項)
day if an address elsewhere is taken
up that day)
住所地特例 (covered facilities)         介護保険法 第13条
the day an age is reached              年齢計算ニ関スル法律, 民法 第143条
notification within 14 days            介護保険法 第12条, 同法施行規則 第23条
premium: 賦課期日 4/1, by month from   介護保険法 第129条, 第130条 and the town's
the month gained to the month before   介護保険条例 (月割賦課)
the month lost
=====================================  =======================================

Periods are half-open: a person insured from ``gained`` is insured on every
day ``d`` with ``gained <= d < lost`` (``lost`` is the 喪失日, the first day
without qualification). One consequence, used by the tests as an independent
check: a month is charged exactly when the person is insured on its last day.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Final

ONE_DAY: Final = timedelta(days=1)

FIRST_CATEGORY_AGE: Final = 65
"""第1号被保険者: 65 and over (介護保険法 第9条第1号)."""
SECOND_CATEGORY_AGE: Final = 40
"""第2号被保険者: 40 to 64 with medical insurance (介護保険法 第9条第2号)."""
NOTIFICATION_DAYS: Final = 14
"""The 14 days of the 届出 (介護保険法 第12条; 施行規則 第23条 per FACTS.md): also
the deadline the work queue shows for each determination."""


class Category(StrEnum):
    """被保険者の区分 (介護保険法 第9条)."""

    FIRST = "1"
    """第1号被保険者: the town charges the premium."""
    SECOND = "2"
    """第2号被保険者: the medical insurer collects the premium; the town handles
    認定 and cards."""


class Departure(StrEnum):
    """How a person stops having an address in the town (or stops being insured)."""

    DOMESTIC = "move_out_domestic"
    """国内転出: to another town of Japan."""
    ABROAD = "move_out_abroad"
    """国外転出."""
    DEATH = "death"
    """死亡."""
    EXCLUDED_FACILITY = "excluded_facility"
    """適用除外施設への入所 (e.g. a disability support facility; 介護保険法施行法
    第11条 and 施行規則 第170条 — *unverified* article numbers, FACTS.md names the rule
    without one)."""
    EX_OFFICIO = "ex_officio_removal"
    """職権消除: the town found the person no longer lives there, address unknown."""


# --- ages ---------------------------------------------------------------------


def age_reached_on(birth: date, age: int) -> date:
    """The day a person born on ``birth`` reaches ``age`` (年齢到達日).

    年齢計算ニ関スル法律 counts age from the day of birth, and 民法 第143条
    ends a period of years at the end of the day before the anniversary: the
    age is reached on the day *before* the birthday. Born 4/1 → reached 3/31;
    born 4/2 → 4/1. Born 2/29: in a common year the anniversary has no 2/29,
    the period ends with the last day of February (民法 第143条第2項 ただし書),
    so the age is reached on 2/28 — and in a leap year it is the day before
    2/29, 2/28 again: **2/28 in every year** (法務省's answer).
    """
    if age < 0:
        raise ValueError("an age is not negative")
    year = birth.year + age
    try:
        anniversary = birth.replace(year=year)
    except ValueError:  # 2/29 in a common year: the period ends on 2/28
        anniversary = date(year, 3, 1)
    return anniversary - ONE_DAY


def reaches_65_on(birth: date) -> date:
    """The day qualification as 第1号被保険者 begins for a resident (第10条第3号)."""
    return age_reached_on(birth, FIRST_CATEGORY_AGE)


def age_on(birth: date, day: date) -> int:
    """The age on ``day`` under the same rule (reached the day before the birthday)."""
    years = day.year - birth.year
    while years > 0 and age_reached_on(birth, years) > day:
        years -= 1
    while age_reached_on(birth, years + 1) <= day:
        years += 1
    return years


def category_on(birth: date, day: date) -> Category | None:
    """The category an address alone gives on ``day``: 第1号 from 65; 第2号 from 40
    *if* the person has medical insurance (only staff know: the caller asks);
    None below 40 (介護保険法 第9条)."""
    age = age_on(birth, day)
    if age >= FIRST_CATEGORY_AGE:
        return Category.FIRST
    if age >= SECOND_CATEGORY_AGE:
        return Category.SECOND
    return None


# --- gaining and losing qualification -------------------------------------------


def gained_on_move_in(move_in: date) -> date:
    """転入: qualification starts on the day the address is taken up, the 転入's
    異動日 itself (介護保険法 第10条第2号, 第4号)."""
    return move_in


def gained_on_arrival(birth: date, arrived: date) -> date:
    """When a person who came to live in the town on ``arrived`` becomes 第1号:
    that day if already 65, else the day 65 is reached (第10条第3号, 第4号)."""
    return max(gained_on_move_in(arrived), reaches_65_on(birth))


def lost_on(departure: Departure, day: date, *, address_elsewhere_same_day: bool) -> date:
    """The 喪失日 for a person who stopped having an address in the town on ``day``.

    介護保険法 第11条第1項: qualification is lost on the day *after* the person
    no longer has an address in the town (or dies, or enters an 適用除外施設) —
    or on that same day if they take up an address in another town that day.
    ``address_elsewhere_same_day`` says whether they did: true for a domestic
    転出 whose new town registered the 転入 on the same 異動日, false for a
    departure abroad, a death, an exclusion, or a gap before the next 転入.
    """
    if departure in (Departure.DOMESTIC, Departure.EX_OFFICIO) and address_elsewhere_same_day:
        return day
    return day + ONE_DAY


def lost_on_departure(departure: Departure, day: date) -> date:
    """The 喪失日 a departure gives as the register records it.

    A domestic 転出's 異動日 is the day the person takes up the new address (the
    new town's 転入通知 confirms it: 住民基本台帳法 第9条第1項), so it is lost that
    very day; moving abroad, dying, entering an 適用除外施設 or an 職権消除
    (no known new address) lose it the next day (第11条第1項).
    """
    return lost_on(departure, day, address_elsewhere_same_day=departure is Departure.DOMESTIC)


def second_category_lost_on(medical_insurance_ended: date) -> date:
    """第2号: lost on the day medical insurance ends, e.g. when 生活保護 starts
    (介護保険法 第11条第2項: その日から, not the day after)."""
    return medical_insurance_ended


def deadline(day: date) -> date:
    """The day a determination proposed on ``day`` is due (14 days: 第12条, 施行規則)."""
    return day + timedelta(days=NOTIFICATION_DAYS)


# --- fiscal years and premium months ------------------------------------------------


def fiscal_year(day: date) -> int:
    """The fiscal year (年度) of ``day``: April to March; 賦課期日 is April 1."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_bounds(year: int) -> tuple[date, date]:
    """[first day, first day of the next year) of fiscal year ``year``."""
    return date(year, 4, 1), date(year + 1, 4, 1)


def _month(day: date) -> date:
    return day.replace(day=1)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def months_between(start: date, stop: date) -> Iterator[date]:
    """First days of the months from ``start``'s month up to, not including, ``stop``'s."""
    month, end = _month(start), _month(stop)
    while month < end:
        yield month
        month = _next_month(month)


@dataclass(frozen=True, slots=True)
class Period:
    """One period of qualification under one insurer (the town that charges)."""

    insurer: str
    """Local government code of the insurer (保険者)."""
    gained: date
    gain_reason: str
    lost: date | None = None
    """喪失日: the first day without qualification; None while it lasts."""
    loss_reason: str | None = None
    category: Category = Category.FIRST
    facility_town: str | None = None
    """Set while the person lives in a covered facility of another town
    (住所地特例, 第13条): the insurer is not where they live."""

    def insured_on(self, day: date) -> bool:
        return self.gained <= day and (self.lost is None or day < self.lost)


def premium_months(gained: date, lost: date | None, year: int) -> tuple[date, ...]:
    """The months of fiscal year ``year`` charged for a period [gained, lost).

    By month, from the month qualification is gained to the month before the
    month it is lost (介護保険法 第129条; the town's 介護保険条例): gained and lost
    in the same month → none. Months are given by their first day.
    """
    first, stop = fiscal_year_bounds(year)
    if lost is not None and _month(lost) <= _month(gained):
        return ()
    start = max(_month(gained), first)
    end = stop if lost is None else min(_month(lost), stop)
    return tuple(months_between(start, end)) if start < end else ()


def premium_months_of(periods: Iterable[Period], year: int, insurer: str) -> tuple[date, ...]:
    """The 第1号 months ``insurer`` charges in fiscal year ``year`` over ``periods``.

    第2号 months are charged by the medical insurer, not the town (第9条第2号).
    """
    months: set[date] = set()
    for p in periods:
        if p.insurer == insurer and p.category is Category.FIRST:
            months.update(premium_months(p.gained, p.lost, year))
    return tuple(sorted(months))


# --- one person's history, event by event ------------------------------------------


class Step(StrEnum):
    """What happens to one person's address, as the timeline below takes it."""

    ARRIVE = "arrive"
    """転入 (from abroad, from another town, or a first registration)."""
    LEAVE_DOMESTIC = "leave_domestic"
    """国内転出: an ARRIVE in another town follows, the same day or later."""
    LEAVE_ABROAD = "leave_abroad"
    DIE = "die"
    RELOCATE = "relocate"
    """転居 within the town (e.g. into or out of a facility)."""


@dataclass(frozen=True, slots=True)
class Move:
    """One event of a person's life as far as 介護保険 cares."""

    day: date
    step: Step
    town: str | None = None
    """ARRIVE: the town arrived in."""
    covered_facility: bool = False
    """ARRIVE / RELOCATE: the new address is a facility covered by 住所地特例 (第13条)."""


def first_category_periods(birth: date, moves: Sequence[Move]) -> list[Period]:
    """Every 第1号 period of one person, in order, from their moves.

    The rules, applied in sequence (介護保険法 第10条, 第11条, 第13条):

    - an ARRIVE in town U on day a after a domestic LEAVE on day d: the old
      insurer's period ends on d when a == d (an address elsewhere that day)
      and on d + 1 otherwise; U's begins on a — unless the person moves, the
      same day, into a **covered facility** of another town: then nothing
      changes and the old insurer stays (住所地特例). A chain of facility moves
      keeps the insurer of before the first facility;
    - leaving a covered facility for an ordinary address (a RELOCATE in the
      facility's town, or an ARRIVE elsewhere) ends 住所地特例: the town of the
      new address insures from that day;
    - LEAVE_ABROAD and DIE end the period the next day;
    - 第1号 starts on the day 65 is reached (2/28 for 2/29 births) when that
      is later than the start of the address.

    Raises ValueError when the moves are not in order or do not fit together
    (an ARRIVE while living somewhere, a LEAVE with no address).
    """
    spans: list[Period] = []  # insurer spans, before the age of 65 is applied
    here: str | None = None  # the town of the address
    left: Move | None = None  # a domestic LEAVE waiting for its ARRIVE
    last: date | None = None
    start: Period | None = None
    for move in moves:
        if last is not None and move.day < last:
            raise ValueError("moves are not in order")
        last = move.day
        if left is not None and move.step is not Step.ARRIVE:
            raise ValueError("a domestic move-out is followed by a move-in")
        if move.step is Step.ARRIVE:
            if here is not None or move.town is None:
                raise ValueError("an arrival needs a town and no current address")
            town = move.town
            if left is not None and start is not None:
                same_day = move.day == left.day
                # 住所地特例: straight into a covered facility of another town keeps
                # the insurer (the one of before the first facility, for a chain).
                if same_day and move.covered_facility and town != start.insurer:
                    start = replace(start, facility_town=town)
                    here, left = town, None
                    continue
                if same_day and town == start.insurer:
                    # Back to the insurer's own town, that day: one period goes on.
                    start = replace(start, facility_town=None)
                    here, left = town, None
                    continue
                lost = lost_on(Departure.DOMESTIC, left.day, address_elsewhere_same_day=same_day)
                spans.append(replace(start, lost=lost, loss_reason=Departure.DOMESTIC.value))
                start = None
            left, here = None, town
            start = Period(town, gained_on_move_in(move.day), "move_in")
        elif move.step is Step.LEAVE_DOMESTIC:
            if here is None:
                raise ValueError("a move-out needs an address")
            left, here = move, None
        elif move.step in (Step.LEAVE_ABROAD, Step.DIE):
            if here is None or start is None:
                raise ValueError("a move-out or death needs an address")
            departure = Departure.ABROAD if move.step is Step.LEAVE_ABROAD else Departure.DEATH
            lost = lost_on(departure, move.day, address_elsewhere_same_day=False)
            spans.append(replace(start, lost=lost, loss_reason=departure.value))
            start, here = None, None
            if move.step is Step.DIE:
                break
        elif move.step is Step.RELOCATE:
            if here is None or start is None:
                raise ValueError("a move within the town needs an address")
            if start.facility_town is not None and not move.covered_facility:
                # Out of the covered facility to an ordinary address: 住所地特例 ends.
                spans.append(replace(start, lost=move.day, loss_reason="tokurei_ended"))
                start = Period(here, move.day, "move_within_town")
    if left is not None and start is not None:
        # No arrival known: the register gives no address elsewhere that day.
        lost = lost_on(Departure.DOMESTIC, left.day, address_elsewhere_same_day=False)
        spans.append(replace(start, lost=lost, loss_reason=Departure.DOMESTIC.value))
        start = None
    if start is not None:
        spans.append(start)
    return _from_65(birth, spans)


def _from_65(birth: date, spans: Sequence[Period]) -> list[Period]:
    """The spans cut to the days the person is 65 or older (第10条第3号)."""
    turns = reaches_65_on(birth)
    out: list[Period] = []
    for span in spans:
        if span.lost is not None and span.lost <= turns:
            continue
        if span.gained < turns:
            span = replace(span, gained=turns, gain_reason="reached_65")
        out.append(span)
    return out
