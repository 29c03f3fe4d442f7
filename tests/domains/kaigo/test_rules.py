"""The date rules of 介護保険, table by table (FACTS.md's worked examples and our own).

Each table row is (case, inputs, expected); the case names say which rule and
which edge (born 4/1, 4/2, 2/29; a move-out on the 1st and on the last day of
a month; a planned move-out and the actual one across a month boundary; a
death on the last day of March; gained and lost in one month; a 第2号 turning
65). FY2026 is 2026-04 … 2027-03.
"""

from __future__ import annotations

from datetime import date

import pytest

from shared_gov.domains.kaigo.rules import (
    Category,
    Departure,
    Move,
    Period,
    Step,
    age_on,
    age_reached_on,
    category_on,
    deadline,
    first_category_periods,
    fiscal_year,
    gained_on_arrival,
    lost_on,
    lost_on_departure,
    months_between,
    premium_months,
    premium_months_of,
    reaches_65_on,
    second_category_lost_on,
)

D = date

# --- the day an age is reached (年齢計算ニ関スル法律, 民法 第143条) ------------------

AGE_CASES = [
    # FACTS.md: born 4/1 → 65 on 3/31; born 4/2 → 4/1.
    ("born-4-1", D(1961, 4, 1), 65, D(2026, 3, 31)),
    ("born-4-2", D(1961, 4, 2), 65, D(2026, 4, 1)),
    # 2/29: 2/28 in every year, common or leap.
    ("born-2-29-common-year", D(1960, 2, 29), 65, D(2025, 2, 28)),
    ("born-2-29-common-year-2", D(1964, 2, 29), 65, D(2029, 2, 28)),
    ("born-2-29-leap-year", D(1964, 2, 29), 64, D(2028, 2, 28)),
    ("born-2-29-age-40-leap", D(1988, 2, 29), 40, D(2028, 2, 28)),
    # Born 3/1: in a leap year the day before is 2/29.
    ("born-3-1-leap-year", D(1963, 3, 1), 65, D(2028, 2, 29)),
    ("born-3-1-common-year", D(1961, 3, 1), 65, D(2026, 2, 28)),
    ("born-1-1", D(1961, 1, 1), 65, D(2025, 12, 31)),
    ("born-12-31", D(1960, 12, 31), 65, D(2025, 12, 30)),
    ("second-category-at-40", D(1986, 7, 15), 40, D(2026, 7, 14)),
]


@pytest.mark.parametrize(
    ("case", "birth", "age", "reached"), AGE_CASES, ids=[c[0] for c in AGE_CASES]
)
def test_the_day_an_age_is_reached(case: str, birth: date, age: int, reached: date) -> None:
    assert age_reached_on(birth, age) == reached
    assert age_on(birth, reached) == age
    assert age_on(birth, date.fromordinal(reached.toordinal() - 1)) == age - 1
    if age == 65:
        assert reaches_65_on(birth) == reached


def test_a_negative_age_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        age_reached_on(D(1960, 1, 1), -1)


CATEGORY_CASES = [
    ("39-none", D(1987, 6, 1), D(2026, 5, 30), None),
    ("40-second", D(1986, 6, 1), D(2026, 5, 31), Category.SECOND),
    ("64-second", D(1961, 6, 1), D(2026, 5, 30), Category.SECOND),
    ("65-first", D(1961, 6, 1), D(2026, 5, 31), Category.FIRST),
]


@pytest.mark.parametrize(
    ("case", "birth", "day", "category"), CATEGORY_CASES, ids=[c[0] for c in CATEGORY_CASES]
)
def test_category_by_age(case: str, birth: date, day: date, category: Category | None) -> None:
    assert category_on(birth, day) == category


# --- gained and lost (介護保険法 第10条, 第11条) --------------------------------------

GAIN_CASES = [
    # 転入 the day itself; an arrival before 65 becomes 第1号 on the day 65 is reached.
    ("move-in-2026-12-01", D(1950, 5, 5), D(2026, 12, 1), D(2026, 12, 1)),
    ("move-in-before-65", D(1961, 7, 15), D(2026, 5, 1), D(2026, 7, 14)),
    ("move-in-on-the-65-day", D(1961, 7, 15), D(2026, 7, 14), D(2026, 7, 14)),
    ("move-in-born-2-29", D(1960, 2, 29), D(2024, 6, 1), D(2025, 2, 28)),
]


@pytest.mark.parametrize(
    ("case", "birth", "arrived", "gained"), GAIN_CASES, ids=[c[0] for c in GAIN_CASES]
)
def test_gained(case: str, birth: date, arrived: date, gained: date) -> None:
    assert gained_on_arrival(birth, arrived) == gained


LOSS_CASES = [
    # FACTS.md: domestic 転出 → the move date itself; abroad → the next day.
    ("domestic-2026-11-03", Departure.DOMESTIC, D(2026, 11, 3), D(2026, 11, 3)),
    ("abroad-2026-11-03", Departure.ABROAD, D(2026, 11, 3), D(2026, 11, 4)),
    ("death", Departure.DEATH, D(2026, 8, 10), D(2026, 8, 11)),
    ("death-last-day-of-march", Departure.DEATH, D(2027, 3, 31), D(2027, 4, 1)),
    ("excluded-facility", Departure.EXCLUDED_FACILITY, D(2026, 6, 10), D(2026, 6, 11)),
    ("ex-officio", Departure.EX_OFFICIO, D(2026, 6, 10), D(2026, 6, 11)),
    # A move-out on the 1st and on the last day of a month.
    ("domestic-on-the-1st", Departure.DOMESTIC, D(2026, 12, 1), D(2026, 12, 1)),
    ("abroad-on-the-1st", Departure.ABROAD, D(2026, 12, 1), D(2026, 12, 2)),
    ("domestic-last-day", Departure.DOMESTIC, D(2026, 11, 30), D(2026, 11, 30)),
    ("abroad-last-day", Departure.ABROAD, D(2026, 11, 30), D(2026, 12, 1)),
    ("abroad-year-end", Departure.ABROAD, D(2026, 12, 31), D(2027, 1, 1)),
]


@pytest.mark.parametrize(
    ("case", "departure", "day", "lost"), LOSS_CASES, ids=[c[0] for c in LOSS_CASES]
)
def test_lost(case: str, departure: Departure, day: date, lost: date) -> None:
    assert lost_on_departure(departure, day) == lost


@pytest.mark.parametrize(
    ("same_day", "lost"), [(True, D(2026, 11, 3)), (False, D(2026, 11, 4))], ids=["same", "gap"]
)
def test_the_same_day_rule(same_day: bool, lost: date) -> None:
    """第11条第1項 ただし書: the same day only if an address elsewhere is taken up that day."""
    day = D(2026, 11, 3)
    assert lost_on(Departure.DOMESTIC, day, address_elsewhere_same_day=same_day) == lost
    # Abroad and death never have an address elsewhere in Japan that day.
    assert lost_on(Departure.ABROAD, day, address_elsewhere_same_day=True) == D(2026, 11, 4)
    assert lost_on(Departure.DEATH, day, address_elsewhere_same_day=True) == D(2026, 11, 4)


def test_second_category_ends_the_day_medical_insurance_ends() -> None:
    assert second_category_lost_on(D(2026, 9, 1)) == D(2026, 9, 1)


def test_deadline_is_14_days() -> None:
    assert deadline(D(2026, 3, 20)) == D(2026, 4, 3)


# --- fiscal years and premium months (第129条, 介護保険条例) ---------------------------

FY_CASES = [
    (D(2026, 4, 1), 2026),
    (D(2027, 3, 31), 2026),
    (D(2026, 3, 31), 2025),
    (D(2026, 12, 31), 2026),
]


@pytest.mark.parametrize(("day", "year"), FY_CASES, ids=[str(c[0]) for c in FY_CASES])
def test_fiscal_year(day: date, year: int) -> None:
    assert fiscal_year(day) == year


INSURED_BEFORE = D(2020, 1, 1)
PREMIUM_CASES = [
    # FACTS.md: born 1961-04-01 → 第1号 from 2026-03-31: FY2025 March only; FY2026 all 12.
    ("born-4-1-fy2025", reaches_65_on(D(1961, 4, 1)), None, 2025, 1),
    ("born-4-1-fy2026", reaches_65_on(D(1961, 4, 1)), None, 2026, 12),
    # Born 4/2: 65 on 4/1 → FY2025 none, FY2026 all 12.
    ("born-4-2-fy2025", reaches_65_on(D(1961, 4, 2)), None, 2025, 0),
    ("born-4-2-fy2026", reaches_65_on(D(1961, 4, 2)), None, 2026, 12),
    # Born 2/29/1960: 65 on 2025-02-28 → FY2024 February and March.
    ("born-2-29-fy2024", reaches_65_on(D(1960, 2, 29)), None, 2024, 2),
    # FACTS.md: domestic move-out 2026-11-03: old town Apr–Oct (7), new town Nov–Mar (5).
    ("domestic-out-old-town", INSURED_BEFORE, D(2026, 11, 3), 2026, 7),
    ("domestic-out-new-town", D(2026, 11, 3), None, 2026, 5),
    # FACTS.md: abroad 2026-11-03 → lost 11-04: Apr–Oct (7).
    ("abroad-out", INSURED_BEFORE, D(2026, 11, 4), 2026, 7),
    # FACTS.md: move-in 2026-12-01 → Dec–Mar (4).
    ("move-in-12-01", D(2026, 12, 1), None, 2026, 4),
    # Move-out on the 1st: lost that day (domestic) → Apr–Nov; abroad → lost the 2nd, same months.
    ("domestic-on-the-1st", INSURED_BEFORE, D(2026, 12, 1), 2026, 8),
    ("abroad-on-the-1st", INSURED_BEFORE, D(2026, 12, 2), 2026, 8),
    # On the last day: domestic loses November, abroad keeps it.
    ("domestic-last-day", INSURED_BEFORE, D(2026, 11, 30), 2026, 7),
    ("abroad-last-day", INSURED_BEFORE, D(2026, 12, 1), 2026, 8),
    # Planned 11-30, actual 12-01 (the new town's 転入通知): one month more at the old town.
    (
        "planned-11-30",
        INSURED_BEFORE,
        lost_on_departure(Departure.DOMESTIC, D(2026, 11, 30)),
        2026,
        7,
    ),
    (
        "actual-12-01",
        INSURED_BEFORE,
        lost_on_departure(Departure.DOMESTIC, D(2026, 12, 1)),
        2026,
        8,
    ),
    # Death on the last day of March: lost 4/1, the whole year charged, nothing after.
    ("death-3-31-fy2026", INSURED_BEFORE, D(2027, 4, 1), 2026, 12),
    ("death-3-31-fy2027", INSURED_BEFORE, D(2027, 4, 1), 2027, 0),
    # Gained and lost in the same month → 0, whatever the days.
    ("same-month", D(2026, 6, 5), D(2026, 6, 20), 2026, 0),
    ("same-month-1st-to-30th", D(2026, 6, 1), D(2026, 6, 30), 2026, 0),
    ("same-day", D(2026, 6, 5), D(2026, 6, 5), 2026, 0),
    ("adjacent-months", D(2026, 6, 30), D(2026, 7, 1), 2026, 1),
    # 第2号 turning 65 on 2026-07-14 (born 1961-07-15): 第1号 months Jul–Mar (9).
    ("second-turns-65", reaches_65_on(D(1961, 7, 15)), None, 2026, 9),
    # A period of other years charges nothing in this one.
    ("before-the-year", D(2020, 1, 1), D(2025, 5, 1), 2026, 0),
    ("after-the-year", D(2027, 4, 1), None, 2026, 0),
]


@pytest.mark.parametrize(
    ("case", "gained", "lost", "year", "months"),
    PREMIUM_CASES,
    ids=[c[0] for c in PREMIUM_CASES],
)
def test_premium_months(case: str, gained: date, lost: date | None, year: int, months: int) -> None:
    charged = premium_months(gained, lost, year)
    assert len(charged) == months
    # Equivalent rule: a month is charged when the person is insured on its last day.
    period = Period("172065", gained, "x", lost)
    for first in months_between(date(year, 4, 1), date(year + 1, 4, 1)):
        last = date.fromordinal(_next(first).toordinal() - 1)
        assert (first in charged) == period.insured_on(last), (case, first)


def _next(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def test_planned_and_actual_move_out_across_a_month_boundary() -> None:
    """The old town's months follow the actual date; the new town's make up the year."""
    planned = premium_months(
        INSURED_BEFORE, lost_on_departure(Departure.DOMESTIC, D(2026, 11, 30)), 2026
    )
    actual = premium_months(
        INSURED_BEFORE, lost_on_departure(Departure.DOMESTIC, D(2026, 12, 1)), 2026
    )
    new_town = premium_months(D(2026, 12, 1), None, 2026)
    assert planned[-1] == D(2026, 10, 1)
    assert actual[-1] == D(2026, 11, 1)
    assert len(actual) + len(new_town) == 12
    assert not set(actual) & set(new_town)


def test_only_first_category_months_are_the_towns() -> None:
    periods = [
        Period("172065", D(2020, 1, 1), "move_in", D(2026, 7, 14), "reached_65", Category.SECOND),
        Period("172065", D(2026, 7, 14), "reached_65"),
        Period("172031", D(2020, 1, 1), "move_in"),
    ]
    assert len(premium_months_of(periods, 2026, "172065")) == 9
    assert len(premium_months_of(periods, 2026, "172031")) == 12


# --- one person's periods across towns (第10条, 第11条, 第13条) ------------------------

KAGA, KOMATSU, NOMI = "172065", "172031", "172111"
OLD = D(1950, 5, 5)  # 65 long before: periods start where the addresses do


def _periods(birth: date, *moves: Move) -> list[tuple[str, date, date | None, str | None]]:
    return [
        (p.insurer, p.gained, p.lost, p.facility_town)
        for p in first_category_periods(birth, list(moves))
    ]


TIMELINE_CASES = [
    (
        "domestic-move-same-day",
        OLD,
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 11, 3), Step.LEAVE_DOMESTIC),
            Move(D(2026, 11, 3), Step.ARRIVE, KOMATSU),
        ],
        [(KAGA, D(2020, 1, 1), D(2026, 11, 3), None), (KOMATSU, D(2026, 11, 3), None, None)],
    ),
    (
        "domestic-move-with-a-gap",
        OLD,
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 11, 3), Step.LEAVE_DOMESTIC),
            Move(D(2026, 11, 10), Step.ARRIVE, KOMATSU),
        ],
        [(KAGA, D(2020, 1, 1), D(2026, 11, 4), None), (KOMATSU, D(2026, 11, 10), None, None)],
    ),
    (
        # FACTS.md: a Kaga resident enters a 特養 in Komatsu: no loss, Kaga stays insurer.
        "tokurei-kaga-to-komatsu-tokuyo",
        OLD,
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 11, 3), Step.LEAVE_DOMESTIC),
            Move(D(2026, 11, 3), Step.ARRIVE, KOMATSU, covered_facility=True),
        ],
        [(KAGA, D(2020, 1, 1), None, KOMATSU)],
    ),
    (
        # 地域密着型 / グループホーム are not covered: the ordinary loss and gain.
        "not-covered-facility",
        OLD,
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 11, 3), Step.LEAVE_DOMESTIC),
            Move(D(2026, 11, 3), Step.ARRIVE, KOMATSU, covered_facility=False),
        ],
        [(KAGA, D(2020, 1, 1), D(2026, 11, 3), None), (KOMATSU, D(2026, 11, 3), None, None)],
    ),
    (
        # A chain of facility moves keeps the town of before the first facility.
        "tokurei-chain",
        OLD,
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 5, 1), Step.LEAVE_DOMESTIC),
            Move(D(2026, 5, 1), Step.ARRIVE, KOMATSU, covered_facility=True),
            Move(D(2026, 9, 1), Step.LEAVE_DOMESTIC),
            Move(D(2026, 9, 1), Step.ARRIVE, NOMI, covered_facility=True),
        ],
        [(KAGA, D(2020, 1, 1), None, NOMI)],
    ),
    (
        # Out of the facility to an ordinary address in its town: that town insures.
        "tokurei-ends-on-relocation",
        OLD,
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 5, 1), Step.LEAVE_DOMESTIC),
            Move(D(2026, 5, 1), Step.ARRIVE, KOMATSU, covered_facility=True),
            Move(D(2026, 10, 15), Step.RELOCATE),
        ],
        [(KAGA, D(2020, 1, 1), D(2026, 10, 15), KOMATSU), (KOMATSU, D(2026, 10, 15), None, None)],
    ),
    (
        # Moving into a facility of one's own town changes nothing.
        "facility-in-own-town",
        OLD,
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 5, 1), Step.RELOCATE, covered_facility=True),
        ],
        [(KAGA, D(2020, 1, 1), None, None)],
    ),
    (
        "abroad-and-back",
        OLD,
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 11, 30), Step.LEAVE_ABROAD),
            Move(D(2027, 2, 1), Step.ARRIVE, KAGA),
        ],
        [(KAGA, D(2020, 1, 1), D(2026, 12, 1), None), (KAGA, D(2027, 2, 1), None, None)],
    ),
    (
        "death-on-the-last-day-of-march",
        OLD,
        [Move(D(2020, 1, 1), Step.ARRIVE, KAGA), Move(D(2027, 3, 31), Step.DIE)],
        [(KAGA, D(2020, 1, 1), D(2027, 4, 1), None)],
    ),
    (
        # 第2号 (or not insured) until 65: 第1号 from the day 65 is reached.
        "turns-65-while-resident",
        D(1961, 7, 15),
        [Move(D(2000, 1, 1), Step.ARRIVE, KAGA)],
        [(KAGA, D(2026, 7, 14), None, None)],
    ),
    (
        "born-2-29-turns-65",
        D(1960, 2, 29),
        [Move(D(2000, 1, 1), Step.ARRIVE, KAGA)],
        [(KAGA, D(2025, 2, 28), None, None)],
    ),
    (
        # Left before 65: no 第1号 period there at all.
        "left-before-65",
        D(1961, 7, 15),
        [
            Move(D(2000, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 7, 1), Step.LEAVE_DOMESTIC),
            Move(D(2026, 7, 1), Step.ARRIVE, KOMATSU),
        ],
        [(KOMATSU, D(2026, 7, 14), None, None)],
    ),
    (
        # A move on the very day 65 is reached: the new town insures from that day.
        "moves-on-the-65-day",
        D(1961, 7, 15),
        [
            Move(D(2000, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 7, 14), Step.LEAVE_DOMESTIC),
            Move(D(2026, 7, 14), Step.ARRIVE, KOMATSU),
        ],
        [(KOMATSU, D(2026, 7, 14), None, None)],
    ),
]


@pytest.mark.parametrize(
    ("case", "birth", "moves", "expected"), TIMELINE_CASES, ids=[c[0] for c in TIMELINE_CASES]
)
def test_periods_across_towns(
    case: str,
    birth: date,
    moves: list[Move],
    expected: list[tuple[str, date, date | None, str | None]],
) -> None:
    assert _periods(birth, *moves) == expected


def test_tokurei_keeps_the_premium_with_the_old_town() -> None:
    """FACTS.md: Kaga keeps charging a resident who entered a 特養 in Komatsu."""
    periods = first_category_periods(
        OLD,
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2026, 11, 3), Step.LEAVE_DOMESTIC),
            Move(D(2026, 11, 3), Step.ARRIVE, KOMATSU, covered_facility=True),
        ],
    )
    assert len(premium_months_of(periods, 2026, KAGA)) == 12
    assert premium_months_of(periods, 2026, KOMATSU) == ()


@pytest.mark.parametrize(
    "moves",
    [
        [Move(D(2020, 1, 1), Step.LEAVE_ABROAD)],
        [Move(D(2020, 1, 1), Step.ARRIVE, KAGA), Move(D(2019, 1, 1), Step.DIE)],
        [Move(D(2020, 1, 1), Step.ARRIVE, KAGA), Move(D(2020, 2, 1), Step.ARRIVE, KOMATSU)],
        [
            Move(D(2020, 1, 1), Step.ARRIVE, KAGA),
            Move(D(2020, 2, 1), Step.LEAVE_DOMESTIC),
            Move(D(2020, 2, 1), Step.DIE),
        ],
        [Move(D(2020, 1, 1), Step.RELOCATE)],
    ],
    ids=[
        "leave-without-address",
        "out-of-order",
        "arrive-twice",
        "leave-then-die",
        "relocate-nowhere",
    ],
)
def test_moves_that_do_not_fit_are_refused(moves: list[Move]) -> None:
    with pytest.raises(ValueError, match=r"needs|not in order|followed by"):
        first_category_periods(OLD, moves)
