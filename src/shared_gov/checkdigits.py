"""Check digits and format checks for Japanese public identifiers.

Pure functions used to validate identifiers before they are stored, and to
generate valid synthetic ones for tests and demos. Each rule cites where it
comes from:

* 全国地方公共団体コード (local government code, 6 digits): 2-digit prefecture +
  3-digit municipality code of JIS X 0402, plus a modulus-11 check digit.
* 個人番号 (Individual Number, 12 digits): the check digit defined under the
  番号法 (行政手続における特定の個人を識別するための番号の利用等に関する法律)
  and its implementing ordinances.
* 宛名番号 / 世帯番号: serial numbers with a trailing modulus-11 check digit,
  weights 2–7 cycling from the right, per 住民記録システム標準仕様書.
  What happens for remainder 1 is *unconfirmed* in the specification text we
  have; this module takes 0, as the project's domain notes instruct.
* 住民票コード (11 digits, an item of the 住民票 under 住民基本台帳法 §7):
  format check only, since the project's domain notes give no check-digit
  rule for it.
* 法人番号 (corporate number, 13 digits, assigned by the National Tax Agency):
  the check digit is the *first* digit.
* 適格請求書発行事業者登録番号 (qualified invoice issuer registration number):
  ``"T"`` + the issuer's 13-digit corporate number.
* 郵便番号 (postal code): 7 digits, stored without the hyphen.

The domain notes these rules were taken from, with worked examples, are in
the shared project notes (``domain/FACTS.md``).

Only ASCII digits ``0``–``9`` are accepted. ``str.isdigit`` is deliberately
not used: it accepts full-width digits (``"１"``) and other Unicode digits
(``"٣"``), which would be stored and compared as different strings.

Error messages never contain the value that was checked: these identifiers
are personal data (an Individual Number may only be handled for purposes the
law lists), and exception messages end up in logs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

__all__ = [
    "corporate_number_check_digit",
    "individual_number_check_digit",
    "is_valid_corporate_number",
    "is_valid_individual_number",
    "is_valid_invoice_registration_number",
    "is_valid_juminhyo_code",
    "is_valid_lgcode",
    "is_valid_postal_code",
    "is_valid_serial",
    "lgcode_check_digit",
    "make_individual_number",
    "make_serial",
    "serial_check_digit",
]

_DIGITS: Final = re.compile(r"[0-9]+")

# Weights read left to right over the digits that precede the check digit.
_LGCODE_WEIGHTS: Final = (6, 5, 4, 3, 2)
# Pn is the n-th digit from the right; Qn = n + 1 (n <= 6) or n - 5 (n >= 7).
_INDIVIDUAL_NUMBER_WEIGHTS: Final = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

SERIAL_BASE_LENGTH: Final = 7
"""Digits before the check digit in numbers made by :func:`make_serial`."""

SERIAL_MAX: Final = 10**SERIAL_BASE_LENGTH - 1


def _is_ascii_digits(s: object, length: int | None = None) -> bool:
    """True when ``s`` is a str of ASCII digits (of exactly ``length`` if given)."""
    if not isinstance(s, str) or _DIGITS.fullmatch(s) is None:
        return False
    return length is None or len(s) == length


def _require_digits(value: str, length: int | None, what: str) -> None:
    """Raise ValueError (naming the argument, never its value) on a bad format."""
    if not _is_ascii_digits(value, length):
        size = f"{length} " if length is not None else ""
        raise ValueError(f"{what} must be {size}ASCII digits")


def _weighted_sum(digits: str, weights: Sequence[int]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True))


# --- 全国地方公共団体コード ---------------------------------------------------


def lgcode_check_digit(first5: str) -> str:
    """Check digit of a local government code (全国地方公共団体コード).

    Weights 6, 5, 4, 3, 2 on the five digits, ``r = sum mod 11``; the check
    digit is the last digit of ``11 - r`` (so r = 0 gives 1, r = 1 gives 0).

    >>> lgcode_check_digit("13101")
    '6'
    """
    _require_digits(first5, 5, "first5")
    r = _weighted_sum(first5, _LGCODE_WEIGHTS) % 11
    return str((11 - r) % 10)


def is_valid_lgcode(code: str) -> bool:
    """True for a 6-digit local government code whose check digit matches.

    Because r = 0 and r = 10 both give check digit 1, this check does not
    catch every single-digit error: 011011 (札幌市中央区) and 011061
    (札幌市南区) differ in one digit and are both valid.
    """
    if not _is_ascii_digits(code, 6):
        return False
    return lgcode_check_digit(code[:5]) == code[5]


# --- 個人番号 ---------------------------------------------------------------


def individual_number_check_digit(first11: str) -> str:
    """Check digit (12th digit) of an Individual Number (個人番号).

    Weights 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2 left to right,
    ``r = sum mod 11``; the check digit is 0 if r <= 1, else ``11 - r``.
    """
    _require_digits(first11, 11, "first11")
    r = _weighted_sum(first11, _INDIVIDUAL_NUMBER_WEIGHTS) % 11
    return "0" if r <= 1 else str(11 - r)


def is_valid_individual_number(s: str) -> bool:
    """True for 12 ASCII digits whose last digit is the correct check digit."""
    if not _is_ascii_digits(s, 12):
        return False
    return individual_number_check_digit(s[:11]) == s[11]


def make_individual_number(first11: str) -> str:
    """Append the check digit to 11 digits, giving a valid 12-digit number.

    Meant for synthetic test and demo data only.
    """
    return first11 + individual_number_check_digit(first11)


# --- 宛名番号 / 世帯番号 -----------------------------------------------------


def serial_check_digit(base: str) -> str:
    """Modulus-11 check digit for a 宛名番号 / 世帯番号 base of any length.

    Weights 2, 3, 4, 5, 6, 7 applied from the rightmost base digit leftwards,
    repeating; ``r = sum mod 11``; r = 0 gives 0, otherwise ``11 - r``.
    r = 1 would give 10, which is not a digit: the standard specification
    text we have does not say what to do (unconfirmed), so this takes 0.

    >>> serial_check_digit("0000001")
    '9'
    """
    _require_digits(base, None, "base")
    total = sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(base)))
    r = total % 11
    return "0" if r <= 1 else str(11 - r)


def is_valid_serial(s: str) -> bool:
    """True for at least two ASCII digits whose last is the check digit of the rest."""
    if not _is_ascii_digits(s) or len(s) < 2:
        return False
    return serial_check_digit(s[:-1]) == s[-1]


def make_serial(n: int) -> str:
    """Format serial number ``n`` as a 7-digit zero-padded base plus check digit.

    >>> make_serial(1)
    '00000019'

    Raises ValueError unless ``1 <= n <= 9_999_999``.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError("n must be an int")
    if not 1 <= n <= SERIAL_MAX:
        raise ValueError(f"n must be between 1 and {SERIAL_MAX}")
    base = f"{n:0{SERIAL_BASE_LENGTH}d}"
    return base + serial_check_digit(base)


# --- 住民票コード -------------------------------------------------------------


def is_valid_juminhyo_code(s: str) -> bool:
    """True for 11 ASCII digits (format only: no check-digit rule is known here)."""
    return _is_ascii_digits(s, 11)


# --- 法人番号 / インボイス登録番号 -------------------------------------------


def corporate_number_check_digit(base12: str) -> str:
    """Check digit (the FIRST digit) of a corporate number (法人番号).

    With Pn the n-th digit of the 12-digit base counted from the right and
    Qn = 1 for odd n, 2 for even n: ``check = 9 - (sum(Pn * Qn) mod 9)``,
    so it is always 1–9.
    """
    _require_digits(base12, 12, "base12")
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(base12), start=1))
    return str(9 - total % 9)


def is_valid_corporate_number(s: str) -> bool:
    """True for 13 ASCII digits whose first digit is the check digit of the rest."""
    if not _is_ascii_digits(s, 13):
        return False
    return corporate_number_check_digit(s[1:]) == s[0]


def is_valid_invoice_registration_number(s: str) -> bool:
    """True for ``"T"`` (ASCII, upper case) followed by a valid corporate number."""
    if not isinstance(s, str) or not s.startswith("T"):
        return False
    return is_valid_corporate_number(s[1:])


# --- 郵便番号 -----------------------------------------------------------------


def is_valid_postal_code(s: str) -> bool:
    """True for exactly 7 ASCII digits (no hyphen)."""
    return _is_ascii_digits(s, 7)
