"""Property: for any sequence of one person's moves, the premium months add up.

Over random lives (moves between three towns, into and out of covered
facilities, abroad and back, death, a birth date anywhere around 65), for every
fiscal year:

- no town charges more than 12 months;
- no month is charged by two towns;
- the months charged by all towns together are exactly the months the person
  was insured anywhere — counted independently of the loss and gain rules,
  from the registration days alone: a month counts when, on its last day, the
  person is 65 or older and registered in some town (a stay covers the days
  from its 転入 to its 転出 or death, both included).

The independent count is what makes the third property able to fail: the
same-day rule (第11条第1項 ただし書), the next-day losses, the day 65 is reached
and 住所地特例 all change which town charges a month, never whether it is charged.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared_gov.domains.kaigo.rules import (
    Move,
    Step,
    first_category_periods,
    months_between,
    premium_months_of,
    reaches_65_on,
)

TOWNS = ("172065", "172031", "172111")
START = date(2024, 4, 1)
YEARS = range(2024, 2031)


@st.composite
def lives(draw: st.DrawFn) -> tuple[date, list[Move]]:
    """A birth date and a consistent sequence of moves (one person)."""
    birth = draw(st.dates(date(1955, 1, 1), date(1968, 12, 31)))
    day = START + timedelta(days=draw(st.integers(0, 400)))
    moves = [Move(day, Step.ARRIVE, draw(st.sampled_from(TOWNS)), draw(st.booleans()))]
    here: str | None = moves[0].town
    for _ in range(draw(st.integers(0, 8))):
        day += timedelta(days=draw(st.sampled_from([0, 1, 2, 15, 29, 30, 31, 90, 200])))
        if here is None:  # back from abroad: never the day they left
            day += timedelta(days=1)
            here = draw(st.sampled_from(TOWNS))
            moves.append(Move(day, Step.ARRIVE, here, draw(st.booleans())))
            continue
        step = draw(
            st.sampled_from([Step.LEAVE_DOMESTIC, Step.LEAVE_ABROAD, Step.RELOCATE, Step.DIE])
        )
        if step is Step.LEAVE_DOMESTIC:
            moves.append(Move(day, step))
            # The new town's 転入: the same day (usually) or some days later.
            day += timedelta(days=draw(st.sampled_from([0, 0, 0, 1, 5])))
            here = draw(st.sampled_from([t for t in TOWNS if t != here]))
            moves.append(Move(day, Step.ARRIVE, here, draw(st.booleans())))
        elif step is Step.LEAVE_ABROAD:
            moves.append(Move(day, step))
            here = None
        elif step is Step.RELOCATE:
            moves.append(Move(day, step, covered_facility=draw(st.booleans())))
        else:
            moves.append(Move(day, step))
            break
    return birth, moves


def _registered_days(moves: list[Move]) -> list[tuple[date, date | None]]:
    """Stays as [first day, last day] (None: still there), from the moves alone."""
    stays: list[tuple[date, date | None]] = []
    since: date | None = None
    for move in moves:
        if move.step is Step.ARRIVE:
            since = move.day
        elif move.step in (Step.LEAVE_DOMESTIC, Step.LEAVE_ABROAD, Step.DIE):
            assert since is not None
            stays.append((since, move.day))
            since = None
    if since is not None:
        stays.append((since, None))
    return stays


def _last_days(year: int) -> list[date]:
    firsts = list(months_between(date(year, 4, 1), date(year + 1, 4, 1)))
    return [date(f.year + f.month // 12, f.month % 12 + 1, 1) - timedelta(days=1) for f in firsts]


@settings(max_examples=400, deadline=None)
@given(lives())
def test_premium_months_never_overlap_and_add_up(life: tuple[date, list[Move]]) -> None:
    birth, moves = life
    periods = first_category_periods(birth, moves)
    turns_65 = reaches_65_on(birth)
    stays = _registered_days(moves)
    for year in YEARS:
        charged = {town: set(premium_months_of(periods, year, town)) for town in TOWNS}
        for months in charged.values():
            assert len(months) <= 12
        union: set[date] = set()
        for months in charged.values():
            assert not union & months, "a month charged by two towns"
            union |= months
        insured_anywhere = [
            last.replace(day=1)
            for last in _last_days(year)
            if last >= turns_65
            and any(first <= last and (end is None or last <= end) for first, end in stays)
        ]
        assert sum(len(m) for m in charged.values()) == len(insured_anywhere)
        assert union == set(insured_anywhere)


@settings(max_examples=400, deadline=None)
@given(lives())
def test_each_day_is_insured_by_at_most_one_town_and_exactly_when_registered(
    life: tuple[date, list[Move]],
) -> None:
    """The same, day by day, on the days where a rule could slip by one: every
    move's day and the days either side of it, and the day 65 is reached."""
    birth, moves = life
    periods = first_category_periods(birth, moves)
    turns_65 = reaches_65_on(birth)
    stays = _registered_days(moves)
    days = {m.day + timedelta(days=k) for m in moves for k in (-1, 0, 1)}
    days |= {turns_65 + timedelta(days=k) for k in (-1, 0, 1)}
    for day in sorted(days):
        insurers = [p.insurer for p in periods if p.insured_on(day)]
        assert len(insurers) <= 1, (day, insurers)
        registered = any(first <= day and (end is None or day <= end) for first, end in stays)
        assert bool(insurers) == (registered and day >= turns_65), day
