"""Household shapes (single elderly, couples, nuclear families, three generations, …)
and how often each occurs: each shape drafts its members' 続柄, ages and sexes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from shared_gov.domains.residents.seed.records import Sex

_MAX_AGE: Final = 100


@dataclass(frozen=True, slots=True)
class _Draft:
    """A member before names, dates and numbers are filled in."""

    relationship: str
    age: int
    sex: Sex
    own_family: bool = True
    """False for 同居人 / unrelated 縁故者, who carry another family name."""


def _other(sex: Sex) -> Sex:
    return "female" if sex == "male" else "male"


def _spouse(rng: random.Random, head_age: int, head_sex: Sex) -> _Draft:
    # Husbands are on average about two years older than their wives.
    gap = rng.choice((-2, -1, 0, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 8))
    if head_sex == "male":
        age = head_age - gap
        relationship = "妻"
    else:
        age = head_age + gap
        relationship = "夫"
    return _Draft(relationship, max(18, min(_MAX_AGE, age)), _other(head_sex))


def _child_ages(
    rng: random.Random, parent_ages: Sequence[int], count: int, *, min_age: int, max_age: int
) -> list[int] | None:
    """Ages of ``count`` children, eldest first, so that every parent is 20–45 years older.

    The eldest is born when the younger parent is around 29 (the usual age at
    a first birth in Japan); siblings follow one to four years apart.
    """
    lo = max(min_age, max(parent_ages) - 45)
    hi = min(max_age, min(parent_ages) - 20)
    if hi < lo:
        return None
    eldest = min(parent_ages) - round(rng.triangular(20, 42, 29))
    ages = [max(lo, min(hi, eldest))]
    for _ in range(count - 1):
        ages.append(max(lo, ages[-1] - rng.randint(1, 4)))
    return ages


def _children(
    rng: random.Random,
    relationship: str,
    parent_ages: Sequence[int],
    count: int,
    *,
    min_age: int = 0,
    max_age: int = 35,
) -> list[_Draft] | None:
    ages = _child_ages(rng, parent_ages, count, min_age=min_age, max_age=max_age)
    if ages is None:
        return None
    return [_Draft(relationship, age, rng.choice(("male", "female"))) for age in ages]


def _elderly_age(rng: random.Random, lo: int = 65) -> int:
    return min(_MAX_AGE, round(rng.triangular(lo, 98, 76)))


def _single_elderly(rng: random.Random, room: int) -> list[_Draft] | None:
    # Most people living alone past 65 are widowed women.
    sex: Sex = "female" if rng.random() < 0.68 else "male"
    return [_Draft("世帯主", _elderly_age(rng), sex)]


def _single_adult(rng: random.Random, room: int) -> list[_Draft] | None:
    # Young people after leaving home, and a good share of middle-aged singles.
    age = rng.randint(18, 34) if rng.random() < 0.5 else rng.randint(35, 64)
    sex: Sex = "male" if rng.random() < 0.58 else "female"
    return [_Draft("世帯主", age, sex)]


def _couple_elderly(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_sex: Sex = "male" if rng.random() < 0.95 else "female"
    head_age = round(rng.triangular(65, 92, 72))
    return [_Draft("世帯主", head_age, head_sex), _spouse(rng, head_age, head_sex)]


def _couple_working_age(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_sex: Sex = "male" if rng.random() < 0.92 else "female"
    # Mostly couples whose children have left home, some newly-weds.
    head_age = round(rng.triangular(23, 66, 60))
    return [_Draft("世帯主", head_age, head_sex), _spouse(rng, head_age, head_sex)]


def _nuclear(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 3:
        return None
    count = min(room - 2, rng.choices((1, 2, 3), weights=(50, 40, 10))[0])
    head_sex: Sex = "male" if rng.random() < 0.95 else "female"
    head_age = round(rng.triangular(26, 64, 48))
    spouse = _spouse(rng, head_age, head_sex)
    kids = _children(rng, "子", (head_age, spouse.age), count)
    if kids is None:
        return None
    return [_Draft("世帯主", head_age, head_sex), spouse, *kids]


def _single_parent(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    count = min(room - 1, rng.choices((1, 2, 3), weights=(55, 38, 7))[0])
    head_sex: Sex = "female" if rng.random() < 0.86 else "male"
    head_age = rng.randint(25, 58)
    kids = _children(rng, "子", (head_age,), count)
    if kids is None:
        return None
    return [_Draft("世帯主", head_age, head_sex), *kids]


def _three_generations(rng: random.Random, room: int) -> list[_Draft] | None:
    """Head and spouse with children, living with the head's parent(s)."""
    if room < 4:
        return None
    parents_kind = rng.choices(("both", "mother", "father"), weights=(55, 35, 10))[0]
    n_parents = 2 if parents_kind == "both" else 1
    count = min(room - 2 - n_parents, rng.choices((1, 2, 3), weights=(35, 45, 20))[0])
    head_age = round(rng.triangular(30, 60, 44))
    spouse = _spouse(rng, head_age, "male")
    kids = _children(rng, "子", (head_age, spouse.age), count)
    if kids is None:
        return None
    members = [_Draft("世帯主", head_age, "male"), spouse]
    mother = min(_MAX_AGE, head_age + rng.randint(22, 38))
    father = max(head_age + 20, min(_MAX_AGE, head_age + 45, mother + rng.randint(-1, 6)))
    if parents_kind in ("both", "father"):
        members.append(_Draft("父", father, "male"))
    if parents_kind in ("both", "mother"):
        members.append(_Draft("母", mother, "female"))
    return members + kids


def _three_generations_elder_head(rng: random.Random, room: int) -> list[_Draft] | None:
    """An older head and spouse, a married child with spouse, and grandchildren."""
    if room < 3:
        return None
    head_age = round(rng.triangular(58, 88, 68))
    members = [_Draft("世帯主", head_age, "male")]
    parent_ages = [head_age]
    if room >= 4 and rng.random() < 0.75:
        spouse = _spouse(rng, head_age, "male")
        members.append(spouse)
        parent_ages.append(spouse.age)
    child_ages = _child_ages(rng, parent_ages, 1, min_age=25, max_age=55)
    if child_ages is None:
        return None
    child_age = child_ages[0]
    child_sex: Sex = "male" if rng.random() < 0.8 else "female"
    child_in_law = _spouse(rng, child_age, child_sex)
    members.append(_Draft("子", child_age, child_sex))
    members.append(
        _Draft("子の妻" if child_sex == "male" else "子の夫", child_in_law.age, child_in_law.sex)
    )
    count = min(room - len(members), rng.choices((0, 1, 2, 3), weights=(30, 35, 27, 8))[0])
    if count > 0:
        grandchildren = _children(rng, "孫", (child_age, child_in_law.age), count)
        if grandchildren is None:
            return None
        members.extend(grandchildren)
    return members


def _elder_with_adult_child(rng: random.Random, room: int) -> list[_Draft] | None:
    """An elderly parent (sometimes a couple) with an unmarried adult child."""
    if room < 2:
        return None
    head_sex: Sex = "female" if rng.random() < 0.6 else "male"
    head_age = _elderly_age(rng, lo=68)
    members = [_Draft("世帯主", head_age, head_sex)]
    parent_ages = [head_age]
    if room >= 3 and rng.random() < 0.3:
        spouse = _spouse(rng, head_age, head_sex)
        members.append(spouse)
        parent_ages.append(spouse.age)
    kids = _children(rng, "子", parent_ages, 1, min_age=25, max_age=70)
    if kids is None:
        return None
    return members + kids


def _siblings(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_age = rng.randint(45, 85)
    head_sex: Sex = rng.choice(("male", "female"))
    sibling_sex: Sex = rng.choice(("male", "female"))
    diff = rng.choice((-1, 1)) * rng.randint(1, 10)
    sibling_age = max(18, min(_MAX_AGE, head_age + diff))
    if sibling_age > head_age:
        relationship = "兄" if sibling_sex == "male" else "姉"
    else:
        sibling_age = min(sibling_age, head_age - 1)
        relationship = "弟" if sibling_sex == "male" else "妹"
    return [_Draft("世帯主", head_age, head_sex), _Draft(relationship, sibling_age, sibling_sex)]


def _with_grandparent(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_age = rng.randint(20, 38)
    grandparent_age = min(_MAX_AGE, head_age + rng.randint(45, 62))
    if rng.random() < 0.8:
        grandparent = _Draft("祖母", grandparent_age, "female")
    else:
        grandparent = _Draft("祖父", grandparent_age, "male")
    return [_Draft("世帯主", head_age, rng.choice(("male", "female"))), grandparent]


def _cohabitants(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_age = rng.randint(20, 45)
    other_age = max(18, head_age + rng.randint(-5, 5))
    head_sex: Sex = rng.choice(("male", "female"))
    other_sex: Sex = rng.choice(("male", "female"))
    return [
        _Draft("世帯主", head_age, head_sex),
        _Draft("同居人", other_age, other_sex, own_family=False),
    ]


def _with_relative(rng: random.Random, room: int) -> list[_Draft] | None:
    """An elderly head living with a more distant relative (a niece, say)."""
    if room < 2:
        return None
    head_age = _elderly_age(rng, lo=70)
    relative_age = rng.randint(25, 65)
    return [
        _Draft("世帯主", head_age, rng.choice(("male", "female"))),
        _Draft(
            "縁故者", relative_age, rng.choice(("male", "female")), own_family=rng.random() < 0.5
        ),
    ]


_Shape = Callable[[random.Random, int], list[_Draft] | None]

# Relative frequencies of household types, per household. Loosely follows the
# 2020 census for a regional town: fewer one-person households than a big
# city, more three-generation homes.
_SHAPES: Final[tuple[tuple[_Shape, float], ...]] = (
    (_single_elderly, 13.0),
    (_single_adult, 18.0),
    (_couple_elderly, 13.0),
    (_couple_working_age, 12.0),
    (_nuclear, 15.0),
    (_single_parent, 4.5),
    (_three_generations, 4.5),
    (_three_generations_elder_head, 4.0),
    (_elder_with_adult_child, 8.0),
    (_siblings, 1.5),
    (_with_grandparent, 0.7),
    (_cohabitants, 1.8),
    (_with_relative, 0.8),
)
_SHAPE_FUNCS: Final = tuple(shape for shape, _ in _SHAPES)
_SHAPE_CUM_WEIGHTS: Final = tuple(accumulate(weight for _, weight in _SHAPES))

# Households that more often live in an apartment building.
_APARTMENT_SHAPES: Final[dict[_Shape, float]] = {
    _single_adult: 0.7,
    _couple_working_age: 0.5,
    _cohabitants: 0.8,
    _single_parent: 0.5,
    _nuclear: 0.15,
    _single_elderly: 0.1,
}
