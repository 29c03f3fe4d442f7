"""Tests for shared_gov.checkdigits, using the worked examples of the domain notes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_gov.checkdigits import (
    corporate_number_check_digit,
    individual_number_check_digit,
    is_valid_corporate_number,
    is_valid_individual_number,
    is_valid_invoice_registration_number,
    is_valid_juminhyo_code,
    is_valid_lgcode,
    is_valid_postal_code,
    is_valid_serial,
    lgcode_check_digit,
    make_individual_number,
    make_serial,
    serial_check_digit,
)

MUNICIPALITIES_CSV = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "municipalities.csv"
)

# Formats that must be rejected by every "ASCII digits only" check: full-width
# digits, Arabic-Indic digits, superscripts, whitespace, signs, hyphens.
NON_ASCII_DIGITS = ("１", "٣", "²", "৪")


def _mutate(s: str, pos: int, step: int) -> str:
    """Replace the digit at ``pos`` by a *different* digit (step 1..9)."""
    new = str((int(s[pos]) + step) % 10)
    return s[:pos] + new + s[pos + 1 :]


def _with_char(s: str, pos: int, ch: str) -> str:
    return s[:pos] + ch + s[pos + 1 :]


# --- 全国地方公共団体コード ---------------------------------------------------

LGCODES = {
    "千代田区": "131016",
    "札幌市": "011002",
    "札幌市中央区": "011011",  # r = 0 -> check 1
    "札幌市厚別区": "011070",  # r = 1 -> check 0
    "東久留米市": "132225",
    "清瀬市": "132217",
    "西東京市": "132292",
    "加賀市": "172065",
    "小松市": "172031",
    "能美市": "172111",
}
LG_WEIGHTS = (6, 5, 4, 3, 2)


def _lg_remainder(first5: str) -> int:
    return sum(int(d) * w for d, w in zip(first5, LG_WEIGHTS, strict=True)) % 11


@pytest.mark.parametrize(("name", "code"), sorted(LGCODES.items()))
def test_lgcode_vectors(name: str, code: str) -> None:
    """Every municipality code from the domain notes is valid and its digit is recomputed."""
    assert is_valid_lgcode(code), name
    assert lgcode_check_digit(code[:5]) == code[5], name


def test_lgcode_remainder_edge_cases() -> None:
    """r = 0 gives check digit 1 and r = 1 gives check digit 0."""
    assert _lg_remainder("01101") == 0
    assert lgcode_check_digit("01101") == "1"
    assert _lg_remainder("01107") == 1
    assert lgcode_check_digit("01107") == "0"


def test_lgcode_leading_zero_is_kept() -> None:
    """Codes are strings: the leading zero of Hokkaido is part of the code."""
    assert is_valid_lgcode("011002")
    assert not is_valid_lgcode("11002")


@pytest.mark.parametrize("code", sorted(LGCODES.values()))
def test_lgcode_wrong_check_digit(code: str) -> None:
    """Every other check digit is rejected."""
    for d in "0123456789":
        if d != code[5]:
            assert not is_valid_lgcode(code[:5] + d)


@pytest.mark.parametrize(
    "code",
    [
        "",
        "13101",
        "1310160",
        "13101 6",
        " 131016",
        "131016\n",
        "13101-6",
        "a31016",
        "13101x",
        "１３１０１６",
    ],
)
def test_lgcode_rejects_bad_format(code: str) -> None:
    """Wrong length, whitespace, newline, letters and full-width digits are rejected."""
    assert not is_valid_lgcode(code)


@pytest.mark.parametrize("ch", NON_ASCII_DIGITS)
def test_lgcode_rejects_non_ascii_digits(ch: str) -> None:
    """Unicode digits that str.isdigit would accept are rejected."""
    assert ch.isdigit()  # the trap this guards against
    assert not is_valid_lgcode(_with_char("131016", 0, ch))
    assert not is_valid_lgcode(_with_char("131016", 5, ch))


@pytest.mark.parametrize("bad", ["", "1310", "131016", "1310a", "１３１０１", "٣1101"])
def test_lgcode_check_digit_rejects_bad_input(bad: str) -> None:
    """The generator refuses anything but 5 ASCII digits, without echoing the value."""
    with pytest.raises(ValueError, match="first5") as excinfo:
        lgcode_check_digit(bad)
    if bad:
        assert bad not in str(excinfo.value)


def test_lgcode_single_digit_error_that_is_not_detected() -> None:
    """r = 0 and r = 10 share check digit 1, so some one-digit errors go unnoticed.

    A real example: 札幌市中央区 011011 and 札幌市南区 011061.
    """
    assert _lg_remainder("01101") == 0
    assert _lg_remainder("01106") == 10
    assert is_valid_lgcode("011011")
    assert is_valid_lgcode("011061")


@given(
    first5=st.text(alphabet="0123456789", min_size=5, max_size=5),
    pos=st.integers(min_value=0, max_value=5),
    step=st.integers(min_value=1, max_value=9),
)
def test_lgcode_property(first5: str, pos: int, step: int) -> None:
    """Appending the check digit gives a valid code; a one-digit change is caught
    unless it moves the remainder between 0 and 10.

    Changing digit i by d changes the sum by w_i * d with w_i in 2..6 and
    d in ±1..±9; 11 is prime, so the remainder always changes. The check
    digit is (11 - r) mod 10, which is one-to-one except that r = 0 and
    r = 10 both give 1. A change of the check digit itself is always caught.
    """
    code = first5 + lgcode_check_digit(first5)
    assert is_valid_lgcode(code)
    mutated = _mutate(code, pos, step)
    if pos == 5:
        assert not is_valid_lgcode(mutated)
    else:
        remainders = {_lg_remainder(first5), _lg_remainder(mutated[:5])}
        assert len(remainders) == 2
        assert is_valid_lgcode(mutated) == (remainders == {0, 10})


def test_municipalities_csv_all_valid() -> None:
    """Every code in the shared open-data list of municipalities passes."""
    if not MUNICIPALITIES_CSV.is_file():
        pytest.skip(f"{MUNICIPALITIES_CSV} not present")
    with MUNICIPALITIES_CSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 1000
    invalid = [row["lgcode"] for row in rows if not is_valid_lgcode(row["lgcode"])]
    assert invalid == []


# --- 個人番号 ---------------------------------------------------------------

IN_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _in_remainder(first11: str) -> int:
    return sum(int(d) * w for d, w in zip(first11, IN_WEIGHTS, strict=True)) % 11


@pytest.mark.parametrize("number", ["123456789018", "983205673214"])
def test_individual_number_valid_vectors(number: str) -> None:
    """The valid examples pass and their check digit is recomputed."""
    assert is_valid_individual_number(number)
    assert individual_number_check_digit(number[:11]) == number[11]
    assert make_individual_number(number[:11]) == number


def test_individual_number_invalid_vector() -> None:
    """The invalid example from the domain notes is rejected."""
    assert not is_valid_individual_number("983205673210")


@pytest.mark.parametrize(
    "number",
    [
        "",
        "12345678901",
        "1234567890180",
        "12345678901８",
        "１２３４５６７８９０１８",
        "1234-5678-9018",
        "123456789018 ",
        "12345678901a",
    ],
)
def test_individual_number_rejects_bad_format(number: str) -> None:
    """Wrong length, full-width digits, separators and letters are rejected."""
    assert not is_valid_individual_number(number)


@pytest.mark.parametrize("ch", NON_ASCII_DIGITS)
def test_individual_number_rejects_non_ascii_digits(ch: str) -> None:
    """Unicode digits are rejected wherever they appear."""
    assert not is_valid_individual_number(_with_char("123456789018", 3, ch))


def test_individual_number_check_digit_rejects_bad_input_without_echo() -> None:
    """Error messages never contain the (personal) value."""
    for bad in ["1234567890", "123456789012", "1234567890a", "１２３４５６７８９０１"]:
        with pytest.raises(ValueError, match="first11") as excinfo:
            individual_number_check_digit(bad)
        assert bad not in str(excinfo.value)
        with pytest.raises(ValueError, match="first11"):
            make_individual_number(bad)


def test_individual_number_low_remainders_give_zero() -> None:
    """r = 0 and r = 1 both give check digit 0."""
    assert _in_remainder("00000000000") == 0
    assert individual_number_check_digit("00000000000") == "0"
    # 7 * 8 = 56 = 5 * 11 + 1
    assert _in_remainder("00000800000") == 1
    assert individual_number_check_digit("00000800000") == "0"


@given(
    first11=st.text(alphabet="0123456789", min_size=11, max_size=11),
    pos=st.integers(min_value=0, max_value=11),
    step=st.integers(min_value=1, max_value=9),
)
def test_individual_number_property(first11: str, pos: int, step: int) -> None:
    """make_individual_number is valid; a one-digit change is caught unless
    it moves the remainder between 0 and 1 (both give check digit 0).

    Weights are 2..7 and 11 is prime, so a one-digit change always changes r;
    the check digit map is one-to-one on r = 2..10.
    """
    number = make_individual_number(first11)
    assert is_valid_individual_number(number)
    mutated = _mutate(number, pos, step)
    if pos == 11:
        assert not is_valid_individual_number(mutated)
    else:
        remainders = {_in_remainder(first11), _in_remainder(mutated[:11])}
        assert len(remainders) == 2
        assert is_valid_individual_number(mutated) == (remainders == {0, 1})


# --- 宛名番号 / 世帯番号 -----------------------------------------------------


def test_serial_vector() -> None:
    """Base 0000001 has check digit 9 (weights 2..7 from the right)."""
    assert serial_check_digit("0000001") == "9"
    assert make_serial(1) == "00000019"
    assert is_valid_serial("00000019")


def test_serial_weights_cycle_from_the_right() -> None:
    """The 7th digit from the right has weight 2 again (2,3,4,5,6,7,2)."""
    # 1 * 2 = 2 -> 11 - 2 = 9
    assert serial_check_digit("1000000") == "9"
    # 1 * 7 = 7 -> 11 - 7 = 4
    assert serial_check_digit("0100000") == "4"
    # Length-independent: leading zeros do not change the digit.
    assert serial_check_digit("1") == serial_check_digit("0000001")


def test_serial_remainder_zero_and_one() -> None:
    """r = 0 gives 0; r = 1 (unconfirmed in the spec) also gives 0."""
    assert serial_check_digit("0000000") == "0"
    # 6 * 2 = 12 -> r = 1
    assert serial_check_digit("0000006") == "0"
    # 1*3 + 4*2 = 11 -> r = 0
    assert serial_check_digit("0000014") == "0"


def test_make_serial_bounds() -> None:
    """make_serial covers 1..9_999_999 as 8 characters and rejects the rest."""
    assert make_serial(9_999_999)[:7] == "9999999"
    for n in (1, 42, 1234567, 9_999_999):
        s = make_serial(n)
        assert len(s) == 8
        assert int(s[:7]) == n
        assert is_valid_serial(s)
    for n in (0, -1, 10_000_000):
        with pytest.raises(ValueError, match="between"):
            make_serial(n)


@pytest.mark.parametrize("s", ["", "9", "0000001０", "00000018", "0000001 9", "０００００００１９"])
def test_serial_rejects(s: str) -> None:
    """Too short, full-width digits, wrong check digit, whitespace."""
    assert not is_valid_serial(s)


@given(n=st.integers(min_value=1, max_value=9_999_999), step=st.integers(1, 9))
def test_serial_property(n: int, step: int) -> None:
    """Every made serial is valid; changing its check digit makes it invalid."""
    s = make_serial(n)
    assert is_valid_serial(s)
    assert not is_valid_serial(_mutate(s, 7, step))


# --- 住民票コード / 郵便番号 --------------------------------------------------


def test_juminhyo_code_format() -> None:
    """11 ASCII digits, nothing else."""
    assert is_valid_juminhyo_code("01234567890")
    for bad in ["", "0123456789", "012345678901", "0123456789０", "0123456789a", "01234 67890"]:
        assert not is_valid_juminhyo_code(bad)


def test_postal_code_format() -> None:
    """7 ASCII digits without a hyphen."""
    assert is_valid_postal_code("9231198")
    assert is_valid_postal_code("0600001")
    for bad in ["", "923-1198", "923119", "92311980", "９２３１１９８", "923119a", "〒9231198"]:
        assert not is_valid_postal_code(bad)


# --- 法人番号 / インボイス登録番号 -------------------------------------------


@pytest.mark.parametrize("number", ["7123456789012", "4011001098993", "8000020130001"])
def test_corporate_number_vectors(number: str) -> None:
    """The valid examples pass; the check digit is the first digit."""
    assert is_valid_corporate_number(number)
    assert corporate_number_check_digit(number[1:]) == number[0]
    assert is_valid_invoice_registration_number("T" + number)


@pytest.mark.parametrize("number", ["7123456789012", "4011001098993", "8000020130001"])
def test_corporate_number_wrong_check_digit(number: str) -> None:
    """Any other first digit is rejected, as is the check digit placed last."""
    for d in "0123456789":
        if d != number[0]:
            assert not is_valid_corporate_number(d + number[1:])
    assert not is_valid_corporate_number(number[1:] + number[0])


@pytest.mark.parametrize(
    "s",
    ["", "712345678901", "71234567890120", "７123456789012", "7123456789O12", "7-123456789012"],
)
def test_corporate_number_rejects_bad_format(s: str) -> None:
    """Wrong length, full-width digits, letter O for zero and separators."""
    assert not is_valid_corporate_number(s)


@pytest.mark.parametrize(
    "s",
    [
        "4011001098993",
        "t4011001098993",
        "Ｔ4011001098993",
        "T 4011001098993",
        "T4011001098994",
        "TT4011001098993",
        "T",
    ],
)
def test_invoice_registration_number_rejects(s: str) -> None:
    """Needs an ASCII upper-case T directly followed by a valid corporate number."""
    assert not is_valid_invoice_registration_number(s)


def test_corporate_number_check_digit_rejects_bad_input() -> None:
    """Only 12 ASCII digits are accepted as the base."""
    for bad in ["12345678901", "1234567890123", "１２３４５６７８９０１２"]:
        with pytest.raises(ValueError, match="base12"):
            corporate_number_check_digit(bad)


@given(
    base=st.text(alphabet="0123456789", min_size=12, max_size=12),
    pos=st.integers(min_value=0, max_value=12),
    step=st.integers(min_value=1, max_value=9),
)
def test_corporate_number_property(base: str, pos: int, step: int) -> None:
    """A one-digit change is caught unless it swaps 0 and 9 in the base.

    Weights are 1 or 2 and the modulus is 9: w * d is a multiple of 9 only
    for d = ±9, i.e. replacing 0 by 9 or 9 by 0.
    """
    number = corporate_number_check_digit(base) + base
    assert is_valid_corporate_number(number)
    mutated = _mutate(number, pos, step)
    undetectable = pos > 0 and {number[pos], mutated[pos]} == {"0", "9"}
    assert is_valid_corporate_number(mutated) == undetectable
