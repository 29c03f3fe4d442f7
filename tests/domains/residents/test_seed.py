"""Tests for the synthetic demo town generator (shared_gov.domains.residents.seed)."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date

import pytest

from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
)
from shared_gov.domains.residents.seed import (
    FAMILY_NAMES,
    FEMALE_GIVEN_NAMES,
    MALE_GIVEN_NAMES,
    RELATIONSHIPS,
    SyntheticHousehold,
    SyntheticPerson,
    generate_town,
)

TODAY = date(2025, 4, 1)
KATAKANA = re.compile(r"[ァ-ヶー]+")
LANDLINE = re.compile(r"0761-[2-9][0-9]-[0-9]{4}")
MOBILE = re.compile(r"0[789]0-[0-9]{4}-[0-9]{4}")

TOWN_ARGS: dict[str, str] = {
    "prefecture": "石川県",
    "city": "能美市",
    "postal_prefix": "923",
    "phone_area_code": "0761",
}


def _town(residents: int, seed: int = 7, today: date = TODAY) -> list[SyntheticHousehold]:
    return generate_town(**TOWN_ARGS, residents=residents, seed=seed, today=today)


def _people(households: list[SyntheticHousehold]) -> list[SyntheticPerson]:
    return [p for h in households for p in h.members]


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _years_later(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 Feb
        return d.replace(year=d.year + years, day=28)


@pytest.fixture(scope="module")
def town() -> list[SyntheticHousehold]:
    return _town(2000)


@pytest.fixture(scope="module")
def people(town: list[SyntheticHousehold]) -> list[SyntheticPerson]:
    return _people(town)


# --- Determinism and size ------------------------------------------------------


def test_same_arguments_same_town() -> None:
    """The output depends only on the arguments."""
    assert _town(300, seed=42) == _town(300, seed=42)


def test_different_seed_different_town() -> None:
    """Another seed gives another town."""
    assert _town(300, seed=1) != _town(300, seed=2)


def test_global_random_state_untouched() -> None:
    """The generator uses its own Random instance, never the module-level one."""
    random.seed(12345)
    state = random.getstate()
    _town(200)
    assert random.getstate() == state


@pytest.mark.parametrize("residents", [0, 1, 2, 3, 5, 17, 100, 2000])
def test_exact_resident_count(residents: int) -> None:
    """Exactly the requested number of people, spread over non-empty households."""
    households = _town(residents, seed=residents)
    assert sum(len(h.members) for h in households) == residents
    assert all(h.members for h in households)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("residents", -1),
        ("postal_prefix", "92-"),
        ("postal_prefix", "９２３"),
        ("postal_prefix", ""),
        ("phone_area_code", "761"),
        ("phone_area_code", "0761-"),
        ("phone_area_code", "076123"),
        ("prefecture", ""),
    ],
)
def test_rejects_bad_arguments(field: str, value: object) -> None:
    """Malformed arguments raise ValueError."""
    args: dict[str, object] = {**TOWN_ARGS, "residents": 10, "seed": 1, "today": TODAY}
    args[field] = value
    with pytest.raises(ValueError, match=field.split("_")[0]):
        generate_town(**args)  # type: ignore[arg-type]


# --- Identifiers -------------------------------------------------------------------


def test_individual_numbers_valid_and_unique(people: list[SyntheticPerson]) -> None:
    """Every 個人番号 has a valid check digit and none repeats."""
    numbers = [p.individual_number for p in people]
    assert all(is_valid_individual_number(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)


def test_juminhyo_codes_valid_and_unique(people: list[SyntheticPerson]) -> None:
    """Every 住民票コード is 11 ASCII digits and none repeats."""
    codes = [p.juminhyo_code for p in people]
    assert all(is_valid_juminhyo_code(c) for c in codes)
    assert len(set(codes)) == len(codes)


def test_postal_codes(town: list[SyntheticHousehold]) -> None:
    """7 ASCII digits starting with the town's prefix."""
    for h in town:
        assert is_valid_postal_code(h.postal_code)
        assert h.postal_code.startswith("923")


def test_addresses(town: list[SyntheticHousehold]) -> None:
    """Addresses are inside the town, with 丁目・番・号; no two households share one."""
    pattern = re.compile(r"石川県能美市\S+?[一二三四五]丁目[0-9]+番[0-9]+号( \S+ [0-9]+号室)?")
    for h in town:
        assert pattern.fullmatch(h.address), h.address
    addresses = [h.address for h in town]
    assert len(set(addresses)) == len(addresses)
    assert any("号室" in a for a in addresses)
    assert any("号室" not in a for a in addresses)


def test_phones(people: list[SyntheticPerson]) -> None:
    """Landlines use the town's area code; mobiles are 0X0-XXXX-XXXX; some have none."""
    phones = [p.phone for p in people]
    assert None in phones
    assert any(p is not None and LANDLINE.fullmatch(p) for p in phones)
    assert any(p is not None and MOBILE.fullmatch(p) for p in phones)
    for phone in phones:
        assert phone is None or LANDLINE.fullmatch(phone) or MOBILE.fullmatch(phone), phone


def test_other_area_code_lengths() -> None:
    """Landline numbers always have 10 digits, whatever the area code's length."""
    for area in ("03", "076", "0761", "01267"):
        args = {**TOWN_ARGS, "phone_area_code": area}
        households = generate_town(**args, residents=300, seed=3, today=TODAY)
        landlines = {p.phone for p in _people(households) if p.phone and p.phone.startswith(area)}
        landlines = {p for p in landlines if not MOBILE.fullmatch(p)}
        assert landlines
        for phone in landlines:
            assert phone.split("-")[0] == area
            assert len(phone.replace("-", "")) == 10


# --- Households and relationships --------------------------------------------------


def test_head_first(town: list[SyntheticHousehold]) -> None:
    """The first member is the one and only 世帯主."""
    for h in town:
        assert h.members[0].relationship == "世帯主"
        assert [m.relationship for m in h.members].count("世帯主") == 1


def test_relationships_known(people: list[SyntheticPerson]) -> None:
    """Every 続柄 is one of RELATIONSHIPS, and the common ones all occur."""
    used = {p.relationship for p in people}
    assert used <= RELATIONSHIPS
    assert {"世帯主", "妻", "子", "父", "母", "孫", "子の妻"} <= used


def test_children_younger_than_head(town: list[SyntheticHousehold]) -> None:
    """A 子 is at least 15 years younger than the head (20–45 by construction)."""
    for h in town:
        head = h.members[0]
        for m in h.members:
            if m.relationship == "子":
                assert m.birth_date >= _years_later(head.birth_date, 15)


def test_spouses_share_family_name(town: list[SyntheticHousehold]) -> None:
    """妻 / 夫 carry the head's family name and the other sex."""
    for h in town:
        head = h.members[0]
        for m in h.members:
            if m.relationship in {"妻", "夫"}:
                assert (m.family_name, m.family_name_kana) == (
                    head.family_name,
                    head.family_name_kana,
                )
                assert m.sex != head.sex
                assert (m.relationship == "妻") == (m.sex == "female")


def test_household_shapes(town: list[SyntheticHousehold]) -> None:
    """Single, couple, family and three-generation households all occur."""
    sizes = Counter(len(h.members) for h in town)
    assert sizes[1] > 0
    assert sizes[2] > 0
    assert sum(v for k, v in sizes.items() if k >= 4) > 0
    assert any({"父", "母"} & {m.relationship for m in h.members} for h in town)
    assert any("孫" in {m.relationship for m in h.members} for h in town)


# --- Dates and demography ------------------------------------------------------------


def test_birth_dates_not_in_future(people: list[SyntheticPerson]) -> None:
    """Nobody is born after ``today``."""
    assert all(p.birth_date <= TODAY for p in people)


def test_resident_since(town: list[SyntheticHousehold]) -> None:
    """The move-in date lies between the oldest member's birth and today."""
    for h in town:
        oldest = min(m.birth_date for m in h.members)
        assert oldest <= h.resident_since <= TODAY


def test_age_distribution(people: list[SyntheticPerson]) -> None:
    """Roughly a Japanese town of the 2020s: about 29 % 65+, about 11 % under 15."""
    ages = [_age(p.birth_date, TODAY) for p in people]
    assert len(ages) == 2000
    assert 0.20 <= sum(a >= 65 for a in ages) / len(ages) <= 0.40
    assert 0.06 <= sum(a < 15 for a in ages) / len(ages) <= 0.18
    assert max(ages) <= 100


def test_sex_ratio(people: list[SyntheticPerson]) -> None:
    """About as many women as men."""
    assert 0.45 <= sum(p.sex == "female" for p in people) / len(people) <= 0.56


def test_today_on_29_february() -> None:
    """A leap day as ``today`` works and nobody is born after it."""
    today = date(2024, 2, 29)
    households = _town(1500, seed=11, today=today)
    people = _people(households)
    assert len(people) == 1500
    assert all(p.birth_date <= today for p in people)
    assert all(h.resident_since <= today for h in households)


# --- Names -----------------------------------------------------------------------------


def test_kana_is_full_width_katakana(people: list[SyntheticPerson]) -> None:
    """フリガナ fields are full-width katakana only."""
    for p in people:
        assert KATAKANA.fullmatch(p.family_name_kana), p.family_name_kana
        assert KATAKANA.fullmatch(p.given_name_kana), p.given_name_kana


def test_name_lists() -> None:
    """Enough names, each with a katakana reading."""
    assert len({name for name, _ in FAMILY_NAMES}) >= 60
    assert len({name for name, _ in MALE_GIVEN_NAMES}) >= 40
    assert len({name for name, _ in FEMALE_GIVEN_NAMES}) >= 40
    for _, kana in (*FAMILY_NAMES, *MALE_GIVEN_NAMES, *FEMALE_GIVEN_NAMES):
        assert KATAKANA.fullmatch(kana), kana


def test_given_names_match_sex(people: list[SyntheticPerson]) -> None:
    """Men get names from the male list, women from the female list."""
    male = {name for name, _ in MALE_GIVEN_NAMES}
    female = {name for name, _ in FEMALE_GIVEN_NAMES}
    for p in people:
        assert p.given_name in (male if p.sex == "male" else female)
