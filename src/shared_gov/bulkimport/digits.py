"""Whole columns of numbers checked at once: fixed-length digits, modulus-11 check digits.

The fast path of a clean CSV chunk: one pass in C over a column instead of a
Python call per value. Knows no record layout; a domain says which column
takes which check (the residents' import: :mod:`shared_gov.domains.residents.import_layout`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Final


class Digits:
    """Checks a whole column of numbers at once (the fast path of a clean chunk).

    This one: exactly ``length`` ASCII digits each, as ``checkdigits``
    requires of 住民票コード and 郵便番号 — one ``join`` and two string
    tests in C instead of a regular expression per value.
    """

    __slots__ = ("_length",)

    def __init__(self, length: int) -> None:
        self._length = length

    def all_valid(self, values: list[str]) -> bool:
        """True if every value is such a number; False if any is not."""
        if not values:
            return True
        if set(map(len, values)) != {self._length}:
            return False
        joined = "".join(values)
        # ASCII, and then isdigit() means 0-9 only (what checkdigits accepts).
        return joined.isascii() and joined.isdigit()


class CheckDigits(Digits):
    """Numbers whose last digit is a modulus-11 check digit, a whole column at once.

    For numbers of ``len(weights) + 1`` ASCII digits whose last digit is the
    check digit of the others: r = the weighted sum (``weights`` left to
    right) mod 11, then 0 if r <= 1, else 11 - r. That is the rule of
    :mod:`shared_gov.checkdigits` for 宛名番号 / 世帯番号 (8 digits: weights 2
    to 7 from the right) and for 個人番号 (12 digits); tests hold the two
    to the same answers. The weighted sum is read from tables of digit
    groups (a ``map`` of dict lookups per group, in C) instead of a Python
    call per number and digit: about a tenth of the cost (measured; the
    check digits were most of a clean chunk's checking).
    """

    __slots__ = ("_digit", "_groups", "_last", "_weights")

    _GROUP: Final = 4
    """Digits per table (10,000 entries)."""

    def __init__(self, weights: tuple[int, ...]) -> None:
        super().__init__(len(weights) + 1)
        self._weights = weights
        self._last = operator.itemgetter(len(weights))
        self._groups: list[tuple[Callable[[str], str], dict[str, int]]] = []
        self._digit: dict[int, str] = {}

    def _tables(self) -> list[tuple[Callable[[str], str], dict[str, int]]]:
        # Built on first use: only a process that checks numbers pays (a few ms).
        if not self._groups:
            weights = self._weights
            for start in range(0, len(weights), self._GROUP):
                part = weights[start : start + self._GROUP]
                # Digit by digit: each table from the previous one (a few ms in all).
                table = {"": 0}
                for weight in part:
                    table = {
                        digits + d: total + weight * n
                        for digits, total in table.items()
                        for n, d in enumerate("0123456789")
                    }
                cut = operator.itemgetter(slice(start, start + len(part)))
                self._groups.append((cut, table))
            self._digit = {
                total: "0" if total % 11 <= 1 else str(11 - total % 11)
                for total in range(9 * sum(weights) + 1)
            }
        return self._groups

    def all_valid(self, values: list[str]) -> bool:
        """True if every value is such a number with its check digit; False if any is not."""
        if not values:
            return True
        if not super().all_valid(values):
            return False
        (cut, table), *rest = self._tables()
        sums: Iterator[int] = map(table.__getitem__, map(cut, values))
        for cut, table in rest:
            sums = map(operator.add, sums, map(table.__getitem__, map(cut, values)))
        return all(map(operator.eq, map(self._digit.__getitem__, sums), map(self._last, values)))
