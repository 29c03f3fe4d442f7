"""The CSV layout's own rules (``import_layout``): its column-wise number checks are the
check-digit rules, and the 宛名番号 a worker hands to the events is what the events take."""

from __future__ import annotations

import random

from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
    is_valid_serial,
    make_individual_number,
    make_serial,
)
from shared_gov.domains.residents import events, import_layout
from tests.bulkimport.digit_columns import NUMBERS, SERIALS, assert_agrees


def test_workers_check_atena_numbers_by_the_events_rule() -> None:
    """import_layout.event_atena (the workers cannot import the events module) accepts
    exactly what events.id_check("atena_no") accepts, as it is."""
    rng = random.Random(11)  # noqa: S311 - test data
    values = [make_serial(rng.randrange(1, 9_999_999)) for _ in range(300)]
    values += [v[:-1] + str((int(v[-1]) + 1) % 10) for v in values[:100]]  # wrong check digit
    values += [v[:7] for v in values[:20]] + ["0" + v for v in values[:20]]  # wrong lengths
    values += [
        "",
        "abcdefgh",
        "１２３４５６７８",
        "1234567x",
        " 1234567",
        make_individual_number("12345678901"),
    ]
    check = events.id_check("atena_no")
    for value in values:
        assert import_layout.event_atena(value) == (check(value) == value), value
        assert check(value) in (None, value)


def test_column_check_digits_agree_with_checkdigits() -> None:
    """The layout's column-wise checks of a clean chunk accept a column exactly when
    checkdigits accepts every value of it (8-digit serials, 個人番号, 住民票コード,
    郵便番号); a household number of another length is left to checkdigits, value by
    value."""
    checks = import_layout._COLUMN_CHECKS
    for column_check, valid, single in (
        (import_layout._SERIAL_8, SERIALS, lambda v: len(v) == 8 and is_valid_serial(v)),
        (checks["household_no"], SERIALS, is_valid_serial),
        (checks["individual_number"], NUMBERS, is_valid_individual_number),
        (checks["juminhyo_code"], [n[:11] for n in NUMBERS], is_valid_juminhyo_code),
        (checks["postal_code"], [n[:7] for n in NUMBERS], is_valid_postal_code),
    ):
        assert_agrees(column_check, valid, single)
