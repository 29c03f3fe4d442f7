"""One town generated: households given addresses, names, dates and unique numbers.

:func:`generate_town` draws household shapes (:mod:`.shapes`) until the town
has its population; :class:`_Town` keeps the numbers and addresses already
used and turns each draft into a :class:`~.records.SyntheticHousehold`.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from itertools import accumulate

from shared_gov.checkdigits import make_individual_number
from shared_gov.domains.residents.seed.names import (
    _FEMALE_NAMES_BY_COHORT,
    _MALE_NAMES_BY_COHORT,
    FAMILY_NAMES,
    _cohort,
)
from shared_gov.domains.residents.seed.places import (
    _BUILDING_STYLES,
    _KANJI_NUMERALS,
    _MOBILE_PREFIXES,
    _PHONE_AREA_CODE,
    _POSTAL_PREFIX,
    TOWN_DISTRICTS,
)
from shared_gov.domains.residents.seed.records import Sex, SyntheticHousehold, SyntheticPerson
from shared_gov.domains.residents.seed.shapes import (
    _APARTMENT_SHAPES,
    _SHAPE_CUM_WEIGHTS,
    _SHAPE_FUNCS,
    _Draft,
    _Shape,
)


def _add_years(d: date, years: int) -> date:
    """The same calendar day ``years`` later (or earlier, if negative).

    29 February becomes 28 February in a common year.
    """
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def _birth_date(rng: random.Random, age: int, today: date) -> date:
    """A uniformly random birth date of someone who is ``age`` on ``today``."""
    latest = _add_years(today, -age)
    earliest = _add_years(today, -(age + 1)) + timedelta(days=1)
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


def _random_date(rng: random.Random, earliest: date, latest: date) -> date:
    if latest <= earliest:
        return latest
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


class _Town:
    """Mutable state while one town is generated: used numbers and addresses."""

    def __init__(
        self,
        rng: random.Random,
        *,
        prefecture: str,
        city: str,
        postal_prefix: str,
        phone_area_code: str,
        residents: int,
        today: date,
    ) -> None:
        self.rng = rng
        self.today = today
        self.prefix = prefecture + city
        self.phone_area_code = phone_area_code
        self.individual_numbers: set[str] = set()
        self.juminhyo_codes: set[str] = set()
        self.used_lots: set[tuple[str, int, int, int]] = set()
        self.used_phones: set[str] = set()
        self.family_cum_weights = tuple(accumulate(1.0 / (i + 8) for i in range(len(FAMILY_NAMES))))

        # Each 町 has its own postal code and number of 丁目, as in a real town.
        districts = rng.sample(TOWN_DISTRICTS, k=min(len(TOWN_DISTRICTS), rng.randint(12, 20)))
        space = 10 ** (7 - len(postal_prefix))
        suffixes = rng.sample(range(space), k=min(space, len(districts)))
        width = 7 - len(postal_prefix)
        self.districts: list[tuple[str, int, str]] = [
            (
                name,
                rng.randint(1, 5),
                f"{postal_prefix}{suffixes[i % len(suffixes)]:0{width}d}",
            )
            for i, name in enumerate(districts)
        ]
        self.postal_codes = {name: code for name, _, code in self.districts}
        # Enough 番 that at most about a third of the lots are taken.
        chome_total = sum(chome_count for _, chome_count, _ in self.districts)
        self.max_ban = max(30, -(-3 * residents // (chome_total * 25)))

        # Apartment buildings with free rooms: ((町, 丁目, 番, 号), name, free rooms).
        self.buildings: list[tuple[tuple[str, int, int, int], str, list[str]]] = []
        for _ in range(max(2, residents // 80)):
            lot = self._free_lot()
            floors = rng.randint(2, 5)
            per_floor = rng.randint(4, 8)
            rooms = [f"{f}{r:02d}" for f in range(1, floors + 1) for r in range(1, per_floor + 1)]
            rng.shuffle(rooms)
            name = rng.choice(_BUILDING_STYLES) + lot[0].removesuffix("町")
            if rng.random() < 0.4:
                name += rng.choice(("東", "西", "南", "北"))
            self.buildings.append((lot, name, rooms))

    # -- addresses --

    def _free_lot(self) -> tuple[str, int, int, int]:
        rng = self.rng
        while True:
            name, chome_count, _ = rng.choice(self.districts)
            lot = (
                name,
                rng.randint(1, chome_count),
                rng.randint(1, self.max_ban),
                rng.randint(1, 25),
            )
            if lot not in self.used_lots:
                self.used_lots.add(lot)
                return lot

    def _format_lot(self, lot: tuple[str, int, int, int]) -> str:
        name, chome, ban, go = lot
        return f"{self.prefix}{name}{_KANJI_NUMERALS[chome - 1]}丁目{ban}番{go}号"

    def address(self, apartment: bool) -> tuple[str, str, bool]:
        """(address, postal code, is_apartment) of a free dwelling."""
        if apartment and self.buildings:
            index = self.rng.randrange(len(self.buildings))
            lot, name, rooms = self.buildings[index]
            room = rooms.pop()
            if not rooms:
                # Full: drop it from the list (order is irrelevant, the pick is random).
                self.buildings[index] = self.buildings[-1]
                self.buildings.pop()
            return f"{self._format_lot(lot)} {name} {room}号室", self.postal_codes[lot[0]], True
        lot = self._free_lot()
        return self._format_lot(lot), self.postal_codes[lot[0]], False

    # -- numbers --

    def individual_number(self) -> str:
        while True:
            number = make_individual_number(f"{self.rng.randrange(10**11):011d}")
            if number not in self.individual_numbers:
                self.individual_numbers.add(number)
                return number

    def juminhyo_code(self) -> str:
        while True:
            code = f"{self.rng.randrange(10**11):011d}"
            if code not in self.juminhyo_codes:
                self.juminhyo_codes.add(code)
                return code

    def landline(self) -> str:
        area = self.phone_area_code
        exchange_digits = 6 - len(area)
        while True:
            exchange = str(self.rng.randint(2, 9)) + "".join(
                str(self.rng.randrange(10)) for _ in range(exchange_digits - 1)
            )
            number = f"{area}-{exchange}-{self.rng.randrange(10_000):04d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def mobile(self) -> str:
        rng = self.rng
        while True:
            prefix = rng.choices(_MOBILE_PREFIXES, weights=(50, 40, 10))[0]
            number = f"{prefix}-{rng.randint(1000, 9999)}-{rng.randrange(10_000):04d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    # -- people --

    def family_name(self) -> tuple[str, str]:
        return self.rng.choices(FAMILY_NAMES, cum_weights=self.family_cum_weights)[0]

    def given_name(self, sex: Sex, birth: date, taken: set[str]) -> tuple[str, str]:
        cohorts = _MALE_NAMES_BY_COHORT if sex == "male" else _FEMALE_NAMES_BY_COHORT
        pool = cohorts[_cohort(birth)]
        while True:
            name = self.rng.choice(pool)
            if name[0] not in taken:
                taken.add(name[0])
                return name

    def household(self, shape: _Shape, drafts: list[_Draft]) -> SyntheticHousehold:
        rng = self.rng
        head_age = drafts[0].age
        family = self.family_name()
        landline = self.landline() if rng.random() < (0.8 if head_age >= 65 else 0.3) else None
        taken: set[str] = set()
        members: list[SyntheticPerson] = []
        for draft in drafts:
            birth = _birth_date(rng, draft.age, self.today)
            family_name, family_kana = family if draft.own_family else self.family_name()
            given_name, given_kana = self.given_name(draft.sex, birth, taken)
            phone: str | None
            if draft.age < 13:
                phone = None
            elif rng.random() < (0.9 if draft.age < 70 else 0.55):
                phone = self.mobile()
            else:
                phone = landline
            members.append(
                SyntheticPerson(
                    family_name=family_name,
                    given_name=given_name,
                    family_name_kana=family_kana,
                    given_name_kana=given_kana,
                    birth_date=birth,
                    sex=draft.sex,
                    relationship=draft.relationship,
                    individual_number=self.individual_number(),
                    juminhyo_code=self.juminhyo_code(),
                    phone=phone,
                )
            )

        apartment = rng.random() < _APARTMENT_SHAPES.get(shape, 0.0)
        address, postal_code, in_apartment = self.address(apartment)
        # Moved in once the head was an adult (so after the oldest member was
        # born); apartment dwellers move more often.
        earliest = min(_add_years(members[0].birth_date, 18), self.today)
        if in_apartment:
            earliest = max(earliest, _add_years(self.today, -12))
        resident_since = _random_date(rng, earliest, self.today)
        return SyntheticHousehold(
            address=address,
            postal_code=postal_code,
            resident_since=resident_since,
            members=tuple(members),
        )


def generate_town(
    *,
    prefecture: str,
    city: str,
    postal_prefix: str,
    phone_area_code: str,
    residents: int,
    seed: int,
    today: date,
) -> list[SyntheticHousehold]:
    """Invent the households of a town with exactly ``residents`` people.

    ``prefecture`` and ``city`` are written in front of every address (e.g.
    ``"石川県"``, ``"能美市"``); ``postal_prefix`` (1–6 ASCII digits, e.g.
    ``"923"``) starts every postal code; ``phone_area_code`` (``"0"`` and 1–4
    digits, e.g. ``"0761"``) is used for landlines. The result depends only on
    the arguments: the same arguments give the same households.
    """
    if isinstance(residents, bool) or not isinstance(residents, int):
        raise TypeError("residents must be an int")
    if residents < 0:
        raise ValueError("residents must not be negative")
    if not prefecture or not city:
        raise ValueError("prefecture and city must not be empty")
    if _POSTAL_PREFIX.fullmatch(postal_prefix) is None:
        raise ValueError("postal_prefix must be 1 to 6 ASCII digits")
    if _PHONE_AREA_CODE.fullmatch(phone_area_code) is None:
        raise ValueError("phone_area_code must be 0 followed by 1 to 4 ASCII digits")

    # Not for security: demo data must be reproducible from the seed.
    rng = random.Random(seed)  # noqa: S311
    town = _Town(
        rng,
        prefecture=prefecture,
        city=city,
        postal_prefix=postal_prefix,
        phone_area_code=phone_area_code,
        residents=residents,
        today=today,
    )
    households: list[SyntheticHousehold] = []
    remaining = residents
    while remaining > 0:
        shape = rng.choices(_SHAPE_FUNCS, cum_weights=_SHAPE_CUM_WEIGHTS)[0]
        drafts = shape(rng, remaining)
        if drafts is None:
            continue
        households.append(town.household(shape, drafts))
        remaining -= len(drafts)
    return households
