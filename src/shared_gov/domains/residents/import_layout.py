"""The residents' CSV layout: columns, codes, and the checks each column takes.

The layout is modelled on the 住民記録 part of the intermediate standard
layout (docs/import-export.md); :class:`RowError` and :class:`Checked` are
what checking a chunk reports. Imports no part of the application but the
record's model and the check digits (worker processes import it).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from shared_gov.bulkimport.digits import CheckDigits, Digits
from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
    is_valid_serial,
)
from shared_gov.crypto.blind import compose_marks
from shared_gov.domains.residents.models import Resident
from shared_gov.validation import EARLIEST_DATE

# (column, Japanese label, required)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("id", "内部ID（UUID、省略可）", False),
    ("atena_no", "宛名番号", True),
    ("household_no", "世帯番号", True),
    ("relationship", "続柄", True),
    ("family_name", "氏", True),
    ("given_name", "名", True),
    ("family_name_kana", "氏カナ", True),
    ("given_name_kana", "名カナ", True),
    ("birth_date", "生年月日", True),
    ("sex", "性別（1 男 / 2 女）", True),
    ("address", "住所", True),
    ("postal_code", "郵便番号", False),
    ("individual_number", "個人番号", False),
    ("juminhyo_code", "住民票コード", False),
    ("phone", "電話番号", False),
    ("former_surname", "旧氏", False),
    ("domicile", "本籍", False),
    ("previous_address", "前住所", False),
    ("forward_address", "転出先", False),
    ("resident_type", "住民種別（1 日本人住民 / 2 外国人住民）", True),
    ("state", "住民状態（active / moved_out / deceased / removed）", True),
    ("resident_since", "住民となった年月日", True),
    ("address_since", "住所を定めた年月日", True),
    ("notified_on", "届出年月日", True),
    ("removed_on", "消除年月日", False),
)
HEADER = [c for c, _, _ in COLUMNS]
_SEX = {"1": "male", "2": "female"}
_TYPE = {"1": "japanese", "2": "foreign"}
_STATES = frozenset({"active", "moved_out", "deceased", "removed"})


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    """1-based data row number (the header is row 0)."""
    column: str
    reason: str


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# Column positions in COLUMNS order: a row is checked as one list of stripped
# cells, without building a dict per row (parse runs 100,000 times per file).
_AT = {c: i for i, c in enumerate(HEADER)}
_REQUIRED = tuple((_AT[c], c) for c, _, required in COLUMNS if required)
_DATE_COLUMNS = ("birth_date", "resident_since", "address_since", "notified_on", "removed_on")
_DATE_AT = tuple((_AT[c], c) for c in _DATE_COLUMNS)
_CHECKS: tuple[tuple[int, str, Callable[[str], bool], str], ...] = (
    (_AT["atena_no"], "atena_no", is_valid_serial, "check digit does not match"),
    # The members of a household share its number: check each number once.
    (
        _AT["household_no"],
        "household_no",
        functools.lru_cache(maxsize=4096)(is_valid_serial),
        "check digit does not match",
    ),
    (
        _AT["individual_number"],
        "individual_number",
        is_valid_individual_number,
        "check digit does not match",
    ),
    (_AT["juminhyo_code"], "juminhyo_code", is_valid_juminhyo_code, "must be 11 digits"),
    (_AT["postal_code"], "postal_code", is_valid_postal_code, "must be 7 digits"),
)


_SERIAL_8 = CheckDigits((2, 7, 6, 5, 4, 3, 2))
"""宛名番号 and 世帯番号 of 8 digits (checkdigits.is_valid_serial)."""
_INDIVIDUAL_NUMBER = CheckDigits((6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
"""個人番号 (checkdigits.is_valid_individual_number)."""
_COLUMN_CHECKS: dict[str, Digits] = {
    "household_no": _SERIAL_8,
    "individual_number": _INDIVIDUAL_NUMBER,
    "juminhyo_code": Digits(11),
    "postal_code": Digits(7),
}
"""The checks of :data:`_CHECKS` a clean chunk runs column-wise first (a column they
do not accept is checked value by value, as before)."""


def event_atena(value: str) -> bool:
    """A 宛名番号 an event takes as it is: 8 digits, the last the check digit.

    The rule of ``events.id_check("atena_no")`` (tests hold the two
    together; :mod:`.events` imports the database layer, which a worker must
    not load), and what the checks above and the length check below accept
    together.
    """
    return len(value) == 8 and is_valid_serial(value)


_KANA_AT = tuple((_AT[c], c) for c in ("family_name_kana", "given_name_kana"))
_LIMITS = tuple(
    (_AT[c], c, limit, f"longer than {limit} characters")
    for c, limit in (
        ("family_name", 50),
        ("given_name", 50),
        ("former_surname", 50),
        ("address", 200),
        ("domicile", 200),
        ("previous_address", 200),
        ("forward_address", 200),
    )
)
# Free text: no control, format or line-separator character, as in the API
# (validation.TEXT_PATTERN); the other columns are codes, digits, dates or kana
# and their own checks refuse such characters already.
_TEXT_AT = tuple(
    (_AT[c], c)
    for c in (
        "family_name",
        "given_name",
        "former_surname",
        "address",
        "domicile",
        "previous_address",
        "forward_address",
        "phone",
    )
)
_TOO_EARLY = f"before {EARLIEST_DATE.isoformat()}"
# Unique within the file: (position, column, only among active records).
_UNIQUE = tuple(
    (_AT[c], c, c in ("individual_number", "juminhyo_code"))
    for c in ("id", "atena_no", "individual_number", "juminhyo_code")
)
_OPTIONAL_TEXT = (
    "postal_code",
    "individual_number",
    "juminhyo_code",
    "phone",
    "former_surname",
    "domicile",
    "previous_address",
    "forward_address",
)
# The text form str(uuid.UUID(...)) gives: such an id is kept as it is.
_CANONICAL_UUID = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_KATAKANA = re.compile("[\u30a1-\u30fa\u30fb\u30fc]*")
_HIRAGANA = {c: c + 0x60 for c in range(0x3041, 0x3097)}  # ぁ..ゖ -> ァ..ヶ
_REMOVED = _STATES - {"active"}


def _kana(value: str) -> str:
    """rules.normalize_kana, without re-normalising text that already is NFKC."""
    if not unicodedata.is_normalized("NFKC", value):
        value = unicodedata.normalize("NFKC", value)
    return compose_marks(value.replace(" ", "").replace("\u3000", "").translate(_HIRAGANA))


@dataclass(slots=True)
class Checked:
    """A chunk's rows checked (everything but duplicates within the file).

    Column by column, so that it crosses between processes cheaply; no
    personal value but the numbers that must be unique in a file.
    """

    first: int
    """The number of the chunk's first row."""
    problems: dict[int, list[RowError]]
    """Row number -> its problems, in the order they are reported."""
    removed: list[bool]
    """Every row: a removed record (除票), whose numbers need not be unique."""
    uniques: tuple[list[str], ...]
    """Per column unique in a file (``_UNIQUE``), every row's value as it would be stored."""
    households: dict[str, str | None]
    """The valid rows' households, as first met -> the last active 世帯主 among
    those rows (None: none of them)."""

    @property
    def numbers(self) -> range:
        return range(self.first, self.first + len(self.removed))


def _positions(header: list[str]) -> list[int]:
    # As csv.DictReader would: a repeated column name means its last cell.
    where = {name: i for i, name in enumerate(header)}
    return [where.get(c, -1) for c in HEADER]


def _missing(header: list[str]) -> list[RowError]:
    return [
        RowError(0, c, "column missing from the header")
        for c, _, required in COLUMNS
        if required and c not in header
    ]


RECORD_FIELDS = tuple(f.name for f in fields(Resident))
"""A record's fields in :class:`Resident` order: the order of a chunk's columns."""
Columns = list[list[Any]]
"""Valid records column by column, in :data:`RECORD_FIELDS` order."""
