"""Whole columns of numbers checked at once (``bulkimport.digits``) give the answers
``checkdigits`` gives value by value, for every modulus-11 rule and fixed length."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared_gov.bulkimport.digits import CheckDigits, Digits
from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
    is_valid_serial,
)
from tests.bulkimport.digit_columns import NUMBERS, SERIALS, assert_agrees


@pytest.mark.parametrize(
    ("column_check", "valid", "single"),
    [
        (
            CheckDigits((2, 7, 6, 5, 4, 3, 2)),
            SERIALS,
            lambda v: len(v) == 8 and is_valid_serial(v),
        ),
        (CheckDigits((6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)), NUMBERS, is_valid_individual_number),
        (Digits(11), [n[:11] for n in NUMBERS], is_valid_juminhyo_code),
        (Digits(7), [n[:7] for n in NUMBERS], is_valid_postal_code),
    ],
    ids=["serial", "individual_number", "11_digits", "7_digits"],
)
def test_columns_agree_with_checkdigits(
    column_check: Digits, valid: list[str], single: Callable[[str], bool]
) -> None:
    assert_agrees(column_check, valid, single)


def test_tables_are_built_once_and_only_when_used() -> None:
    check = CheckDigits((2, 7, 6, 5, 4, 3, 2))
    assert check._groups == []  # nothing built by constructing it (worker start-up)
    assert check.all_valid(SERIALS[:3])
    tables = check._groups
    assert check.all_valid(SERIALS[3:6])
    assert check._groups is tables
