"""Columns of numbers for tests of column-wise checks, and the agreement they must show."""

from __future__ import annotations

import random
from collections.abc import Callable

from shared_gov.bulkimport.digits import Digits
from shared_gov.checkdigits import make_individual_number, make_serial

_RNG = random.Random(12)  # noqa: S311 - test data
SERIALS = [make_serial(_RNG.randrange(1, 9_999_999)) for _ in range(2000)]
"""8-digit serial numbers (宛名番号, 世帯番号) with their check digit."""
NUMBERS = [make_individual_number(f"{_RNG.randrange(10**11):011d}") for _ in range(2000)]
"""個人番号 with their check digit."""


def assert_agrees(column_check: Digits, valid: list[str], single: Callable[[str], bool]) -> None:
    """``column_check`` accepts a column exactly when ``single`` accepts each value
    of it; a value of another length is never accepted column-wise (the caller
    checks such a column value by value)."""
    assert all(map(single, valid))
    assert column_check.all_valid(valid)
    assert column_check.all_valid([])
    variants = [
        v[:i] + d + v[i + 1 :] for v in valid[:60] for i in range(len(v)) for d in "0123456789"
    ]
    first = valid[0]
    variants += [first[:-1], first + "0", "０" + first[1:], first[:3] + " " + first[4:]]
    for variant in variants:
        fast = column_check.all_valid([*valid[:5], variant])
        if len(variant) == len(first):
            assert fast == single(variant), variant
        else:
            assert not fast, variant
