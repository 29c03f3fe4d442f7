"""The worker side of the resident import: reading, checking and sealing chunks.

What :mod:`.transfer`'s worker processes run, and nothing more: a chunk's
rows are read, checked (check digits, dates, codes, kana, lengths — column
by column when the chunk is clean, row by row for the report when it is
not) and, when clean, encrypted, blind-indexed and framed as binary COPY
data per table. The loading process (:mod:`.transfer`, the public entry)
compares the file with the town, finds duplicates across chunks, writes the
events and sends the COPYs.

Kept apart so that a spawned worker imports only what this takes — the
check digits, envelopes, blind indexes, the record's fields, msgspec and
csv — and not the application (SQLAlchemy through ``shared_gov.db``, the
keyring, the policy engine): that was about half a CPU-second per worker
and import, spent while PostgreSQL waited for the first chunks (measured).
So nothing here imports :mod:`shared_gov.db`, the repository, the keyring
or the events module: the keys arrive as plain bytes (:class:`SealingKeys`),
the column layout is written out here and held to the repository's by
:mod:`.transfer` when it is imported, and the events are built by the
loading process from the ids and 宛名番号 a chunk returns (:class:`Framed`).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gc
import io
import operator
import re
import struct
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import date
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, Final, NamedTuple

import msgspec

from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
    is_valid_serial,
)
from shared_gov.crypto.blind import BlindIndex, compound, normalize_digits, normalize_kana
from shared_gov.crypto.envelope import NULL_FIELD, ColumnSealer
from shared_gov.domains.residents.models import HEAD, RELATIONSHIPS, Resident
from shared_gov.validation import EARLIEST_DATE, NOT_TEXT, TEXT_REFUSED

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


class _Digits:
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


class _CheckDigits(_Digits):
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


_SERIAL_8 = _CheckDigits((2, 7, 6, 5, 4, 3, 2))
"""宛名番号 and 世帯番号 of 8 digits (checkdigits.is_valid_serial)."""
_INDIVIDUAL_NUMBER = _CheckDigits((6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
"""個人番号 (checkdigits.is_valid_individual_number)."""
_COLUMN_CHECKS: dict[str, _Digits] = {
    "household_no": _SERIAL_8,
    "individual_number": _INDIVIDUAL_NUMBER,
    "juminhyo_code": _Digits(11),
    "postal_code": _Digits(7),
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
    """service.normalize_kana, without re-normalising text that already is NFKC."""
    if not unicodedata.is_normalized("NFKC", value):
        value = unicodedata.normalize("NFKC", value)
    return value.replace(" ", "").replace("\u3000", "").translate(_HIRAGANA)


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


def check_rows(
    rows: Iterable[list[str]], positions: list[int], first: int, today: date
) -> tuple[Checked, list[Resident]]:
    """Check CSV rows (blank lines already left out) numbered from ``first``.

    Returns what the main process needs and the records of the valid rows.
    Pure and picklable both ways; duplicates within the file are found by
    ``transfer.FileErrors`` over all chunks in order.
    """
    rows = rows if isinstance(rows, list) else list(rows)
    clean = _check_clean(rows, positions, first, today)
    if clean is None:
        return _check_one_by_one(rows, positions, first, today)
    checked, columns = clean
    return checked, list(map(Resident, *columns))


def check_columns(
    rows: list[list[str]], positions: list[int], first: int, today: date
) -> tuple[Checked, Columns | None]:
    """:func:`check_rows` for loading: the valid records column by column, None if any
    row has a problem (nothing of such a file is loaded)."""
    clean = _check_clean(rows, positions, first, today)
    if clean is not None:
        return clean
    checked, residents = _check_one_by_one(rows, positions, first, today)
    return checked, None if checked.problems else record_columns(residents)


def record_columns(residents: Sequence[Resident]) -> Columns:
    """Records column by column, in :data:`RECORD_FIELDS` order."""
    return [list(c) for c in zip(*map(_record_values, residents), strict=True)]


_record_values = attrgetter(*RECORD_FIELDS)


def _check_clean(
    rows: list[list[str]], positions: list[int], first: int, today: date
) -> tuple[Checked, Columns] | None:
    """:func:`check_rows` for a chunk without a single problem, column by column.

    The same checks as :func:`_check_one_by_one` (a row passes here only if
    it passes there; tests hold the two to the same records), each run over
    a whole column with C-level ``map``/``set``/``max`` instead of a Python
    loop per row and cell: about half the cost (measured). At the first
    problem it gives up (None) and the chunk is checked row by row, which
    also writes the report; a file with a problem is never loaded, so only
    clean files need the speed.
    """
    n = len(rows)
    if not n:
        return None
    widths = set(map(len, rows))
    # Rows of one width (the usual file): the file's columns in one C call.
    across = list(zip(*rows, strict=True)) if len(widths) == 1 else []
    shortest = min(widths)

    def column(name: str) -> list[str]:
        i = positions[_AT[name]]
        if i < 0:
            return [""] * n
        if i < len(across):
            return list(map(str.strip, across[i]))
        if i < shortest:
            return list(map(str.strip, map(operator.itemgetter(i), rows)))
        return [r[i].strip() if i < len(r) else "" for r in rows]

    cells = {name: column(name) for name in HEADER}
    if any("" in cells[name] for _, name in _REQUIRED):
        return None
    dates: dict[str, list[date | None]] = {}
    for name in _DATE_COLUMNS:
        values = cells[name]
        if "" in values:
            parsed = [_date(v) if v else None for v in values]
            if any(v and d is None for v, d in zip(values, parsed, strict=True)):
                return None
        else:
            try:
                parsed = list(map(date.fromisoformat, values))
            except ValueError:
                return None
        if max(filter(None, parsed), default=today) > today:
            return None
        if min(filter(None, parsed), default=today) < EARLIEST_DATE:
            return None
        dates[name] = parsed
    for _, name, check, _ in _CHECKS:
        if name == "atena_no":
            continue  # below
        values = cells[name]
        if "" in values:
            values = list(filter(None, values))
        column_check = _COLUMN_CHECKS.get(name)
        if column_check is not None and column_check.all_valid(values):
            continue
        if not all(map(check, values)):
            return None
    # 宛名番号: 8 digits whose last is the check digit, checked the way events
    # check them (the same rule: _SERIAL_8 accepts a column exactly when
    # event_atena accepts each), so the events take them as they are.
    if not _SERIAL_8.all_valid(cells["atena_no"]):
        return None
    ids = cells["id"]
    if not all(map(_CANONICAL_UUID.fullmatch, filter(None, ids))):
        try:
            ids = [str(uuid.UUID(v)) if v else v for v in ids]
        except ValueError:
            return None
    states = cells["state"]
    for name, known in (
        ("sex", _SEX),
        ("resident_type", _TYPE),
        ("state", _STATES),
        ("relationship", RELATIONSHIPS),
    ):
        if not set(cells[name]).issubset(known):
            return None
    kana = {}
    for _, name in _KANA_AT:
        # Each distinct name once: kana names repeat a lot in a register.
        # (A memo for this chunk only: no personal value outlives the check.)
        normalized = {v: _kana(v) for v in set(cells[name])}
        if not all(map(_KATAKANA.fullmatch, normalized.values())):
            return None
        kana[name] = list(map(normalized.__getitem__, cells[name]))
    if any(max(map(len, cells[name])) > limit for _, name, limit, _ in _LIMITS):
        return None
    # Per column over its joined cells (joining adds no character): every
    # character TEXT_PATTERN refuses is one str.isprintable refuses, which is
    # 8x faster than the search (measured); only a column it does not accept
    # (an ideographic space, 外字) is searched.
    for _, name in _TEXT_AT:
        joined = "".join(cells[name])
        if not joined.isprintable() and NOT_TEXT.search(joined):
            return None
    if _REMOVED.isdisjoint(states):
        removed = [False] * n
    else:
        removed = [s in _REMOVED for s in states]
        if any(r and not on for r, on in zip(removed, cells["removed_on"], strict=True)):
            return None
    uniques = tuple(ids if c == "id" else cells[c] for _, c, _ in _UNIQUE)
    if "" in ids:
        ids = [v or str(uuid.uuid4()) for v in ids]
    households, relationships = cells["household_no"], cells["relationship"]
    heads: dict[str, str | None] = dict.fromkeys(households)
    for household, relationship, state, rid in zip(
        households, relationships, states, ids, strict=True
    ):
        if relationship == HEAD and state == "active":
            heads[household] = rid

    def optional(name: str) -> list[str | None]:
        values = cells[name]
        return [v or None for v in values] if "" in values else list(values)

    record: dict[str, list[Any]] = {
        "id": ids,
        "atena_no": cells["atena_no"],
        "version": [1] * n,
        "state": states,
        "resident_type": list(map(_TYPE.__getitem__, cells["resident_type"])),
        "household_no": households,
        "relationship": relationships,
        "family_name": cells["family_name"],
        "given_name": cells["given_name"],
        **kana,
        **{name: dates[name] for name in _DATE_COLUMNS},
        "sex": list(map(_SEX.__getitem__, cells["sex"])),
        "address": cells["address"],
        **{name: optional(name) for name in _OPTIONAL_TEXT},
        "history_no": [1] * n,
        "support_measure": [False] * n,
    }
    checked = Checked(first, {}, removed, uniques, heads)
    return checked, [record[name] for name in RECORD_FIELDS]


def _check_one_by_one(
    rows: list[list[str]], positions: list[int], first: int, today: date
) -> tuple[Checked, list[Resident]]:
    """:func:`check_rows` row by row: every problem of every row, in report order."""
    checked = Checked(first, {}, [], tuple([] for _ in _UNIQUE), {})
    residents: list[Resident] = []
    unique_at = [i for i, _, _ in _UNIQUE]
    for number, raw in enumerate(rows, start=first):
        width = len(raw)
        row = [raw[i].strip() if 0 <= i < width else "" for i in positions]
        problems: list[RowError] = [
            RowError(number, column, "required") for i, column in _REQUIRED if not row[i]
        ]
        dates: list[date | None] = []
        for i, column in _DATE_AT:
            value = row[i]
            parsed = _date(value) if value else None
            if value and parsed is None:
                problems.append(RowError(number, column, "not a date (YYYY-MM-DD)"))
            elif parsed is not None and parsed > today:
                problems.append(RowError(number, column, "in the future"))
            elif parsed is not None and parsed < EARLIEST_DATE:
                problems.append(RowError(number, column, _TOO_EARLY))
            dates.append(parsed)
        for i, column, check, reason in _CHECKS:
            if row[i] and not check(row[i]):
                problems.append(RowError(number, column, reason))
        # The register's 宛名番号 are 8 digits (search, sequences and events
        # rely on it).
        atena = row[_AT["atena_no"]]
        if atena and len(atena) != 8:
            problems.append(RowError(number, "atena_no", "must be 8 digits"))
        rid = row[_AT["id"]]
        if rid:
            try:
                rid = row[_AT["id"]] = str(uuid.UUID(rid))
            except ValueError:
                problems.append(RowError(number, "id", "not a UUID"))
        sex, kind, state = row[_AT["sex"]], row[_AT["resident_type"]], row[_AT["state"]]
        relationship = row[_AT["relationship"]]
        if sex and sex not in _SEX:
            problems.append(RowError(number, "sex", "must be 1 or 2"))
        if kind and kind not in _TYPE:
            problems.append(RowError(number, "resident_type", "must be 1 or 2"))
        if state and state not in _STATES:
            problems.append(RowError(number, "state", "not a known state"))
        if relationship and relationship not in RELATIONSHIPS:
            problems.append(RowError(number, "relationship", "not a known 続柄"))
        kana: list[str] = []
        for i, column in _KANA_AT:
            value = _kana(row[i])
            kana.append(value)
            if value and not _KATAKANA.fullmatch(value):
                problems.append(RowError(number, column, "must be written in kana"))
        for i, column, limit, reason in _LIMITS:
            if len(row[i]) > limit:
                problems.append(RowError(number, column, reason))
        for i, column in _TEXT_AT:
            if NOT_TEXT.search(row[i]):
                problems.append(RowError(number, column, TEXT_REFUSED))
        removed = state in _REMOVED
        if removed and not row[_AT["removed_on"]]:
            problems.append(RowError(number, "removed_on", "required for a removed resident"))
        checked.removed.append(removed)
        for values, i in zip(checked.uniques, unique_at, strict=True):
            values.append(row[i])
        if problems:
            checked.problems[number] = problems
            continue
        resident = Resident(
            id=rid or str(uuid.uuid4()),
            atena_no=atena,
            version=1,
            state=state,
            resident_type=_TYPE[kind],
            household_no=row[_AT["household_no"]],
            relationship=relationship,
            family_name=row[_AT["family_name"]],
            given_name=row[_AT["given_name"]],
            family_name_kana=kana[0],
            given_name_kana=kana[1],
            birth_date=dates[0],  # type: ignore[arg-type]
            sex=_SEX[sex],
            address=row[_AT["address"]],
            postal_code=row[_AT["postal_code"]] or None,
            individual_number=row[_AT["individual_number"]] or None,
            juminhyo_code=row[_AT["juminhyo_code"]] or None,
            phone=row[_AT["phone"]] or None,
            former_surname=row[_AT["former_surname"]] or None,
            domicile=row[_AT["domicile"]] or None,
            previous_address=row[_AT["previous_address"]] or None,
            forward_address=row[_AT["forward_address"]] or None,
            resident_since=dates[1],  # type: ignore[arg-type]
            address_since=dates[2],  # type: ignore[arg-type]
            notified_on=dates[3],  # type: ignore[arg-type]
            removed_on=dates[4],
            history_no=1,
        )
        residents.append(resident)
        heads = checked.households
        if resident.household_no not in heads:
            heads[resident.household_no] = None
        if relationship == HEAD and state == "active":
            heads[resident.household_no] = resident.id
    return checked, residents


# --- COPY payloads -------------------------------------------------------------------
#
# A clean chunk becomes the bytes of a binary COPY per table, built where it
# was checked (a worker process for a large file), so the loading process
# only sends them: encoding a hundred thousand records again there, value by
# value (``copy_records_to_table``), cost about a second of its CPU
# (measured), all of it while PostgreSQL waited for the next chunk.

# The residents table's layout, written out rather than imported (the
# repository and the keyring import the database layer); :mod:`.transfer`
# refuses to load if it ever differs from theirs.
PLAIN: tuple[str, ...] = (
    "id",
    "atena_no",
    "version",
    "state",
    "household_no",
    "history_no",
    "support_measure",
)
"""The record's fields stored as they are (``repository.PLAIN``), in record order."""
ENCRYPTED = tuple(c for c in RECORD_FIELDS if c not in PLAIN)
"""The record's fields stored encrypted (``repository.ENCRYPTED``), in record order."""
INDEXES: tuple[str, ...] = ("individual_number", "kana_birth", "phone", "juminhyo_code")
"""The blind indexes stored beside residents (``keyring.RESIDENT_INDEXES``)."""
BLIND = tuple(f"bidx_{name}{alt}" for name in INDEXES for alt in ("", "_alt"))
"""Both columns of every index (``repository.BLIND``), always written."""
RESIDENT_COLUMNS: tuple[str, ...] = (*PLAIN, *ENCRYPTED, *BLIND)
"""The residents columns a load writes, in COPY order (those ``repository.insert`` writes)."""
HISTORY_COLUMNS = (
    "resident_id",
    "history_no",
    "reason",
    "move_date",
    "notified_on",
    "snapshot",
    "processed_on",
)
_HISTORY_SEALED = ("reason", "move_date", "notified_on", "snapshot")
_IMPORT_REASON = b"import"
"""The history entry's 異動事由 (what ``repository.append_history`` stores for an import)."""

# Binary COPY: signature, flags (none), header extension length (0); then per
# row a 16-bit field count and each field as a 32-bit length (-1: NULL) and
# its bytes in the column type's binary form; then -1 as the field count.
_COPY_HEAD = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TAIL = b"\xff\xff"
_field_length = struct.Struct(">i").pack
_int4_field = functools.partial(struct.Struct(">ii").pack, 4)
_int8_field = functools.partial(struct.Struct(">iq").pack, 8)
_UUID_LENGTH = _field_length(16)
_BOOL_FIELDS = {False: _field_length(1) + b"\x00", True: _field_length(1) + b"\x01"}
_PG_EPOCH = date(2000, 1, 1).toordinal()
"""PostgreSQL's binary dates count days from 2000-01-01."""
_PLAIN_TYPES = {
    "id": "uuid",
    "atena_no": "text",
    "version": "int4",
    "state": "text",
    "household_no": "text",
    "history_no": "int4",
    "support_measure": "bool",
}
if set(_PLAIN_TYPES) != set(PLAIN):
    raise RuntimeError("_PLAIN_TYPES must follow PLAIN")  # pragma: no cover


def _text_fields(values: Iterable[str]) -> list[bytes]:
    encoded = list(map(str.encode, values))
    return list(map(operator.add, map(_field_length, map(len, encoded)), encoded))


def _uuid_fields(ids: Iterable[str]) -> list[bytes]:
    # Ids are canonical by now (check_rows): 32 hex digits and four hyphens.
    return [_UUID_LENGTH + bytes.fromhex(rid.replace("-", "")) for rid in ids]


def _plain_fields(name: str, values: Sequence[Any]) -> list[bytes]:
    kind = _PLAIN_TYPES[name]
    if kind == "uuid":
        return _uuid_fields(values)
    if kind == "int4":
        return list(map(_int4_field, values))
    if kind == "bool":
        return list(map(_BOOL_FIELDS.__getitem__, values))
    return _text_fields(values)


def _utf8(values: Sequence[Any], dates: bool) -> list[bytes | None]:
    """A column's values as the envelopes hold them: UTF-8 text, dates in ISO form."""
    if dates:
        distinct = set(values)
        if len(distinct) * 4 <= len(values):
            # A register's record dates repeat (届出年月日, 住民となった年月日 …):
            # each distinct one formatted once.
            text = {d: None if d is None else d.isoformat().encode() for d in distinct}
            return list(map(text.__getitem__, values))
    if None not in values:  # most columns: one C-level pass
        return list(map(str.encode, map(date.isoformat, values) if dates else values))
    if dates:
        return [None if v is None else v.isoformat().encode() for v in values]
    return [None if v is None else v.encode() for v in values]


def _copy_data(columns: Sequence[Sequence[bytes]], rows: int) -> bytes:
    """A whole binary COPY from its columns' fields: one join, no loop per row in Python."""
    count = struct.pack(">h", len(columns))
    # Joined row by row, then all rows: faster than one join over every field.
    body = map(b"".join, zip(repeat(count, rows), *columns, strict=True))
    return b"".join(chain((_COPY_HEAD,), body, (_COPY_TAIL,)))


@dataclass(frozen=True, slots=True, repr=False)
class SealingKeys:
    """A town's write keys as a worker gets them: plain bytes, picklable.

    What ``keyring.WriteKeys`` holds (:mod:`.transfer` converts it), with
    each blind index's live versions already placed in their residents
    columns; unpickling it needs only this module. Key bytes never appear
    in the repr, so they cannot reach a log or a traceback through it.
    """

    tenant: str
    deks: dict[str, tuple[int, bytes]]
    """Data key name (``table.column``) -> its write version and key."""
    indexes: dict[str, tuple[tuple[str, int, bytes], ...]]
    """Blind index name -> (residents column, bits, key) of each live version
    (two while its key is rotated: both are written)."""

    def __repr__(self) -> str:
        return (
            f"SealingKeys(tenant={self.tenant!r}, {len(self.deks)} data keys, "
            f"{len(self.indexes)} blind indexes)"
        )


class Framed(NamedTuple):
    """A clean chunk, sealed and framed: what it writes to each table."""

    residents: bytes
    """Binary COPY of the residents rows (:data:`RESIDENT_COLUMNS`)."""
    history: bytes
    """Binary COPY of their history entries (:data:`HISTORY_COLUMNS`)."""
    ids: list[str]
    """The records' ids (canonical UUIDs), in file order: their events' resident ids."""
    atena: list[str]
    """Their 宛名番号, each accepted by :func:`event_atena` (the events' rule)."""


class Framer:
    """Turns checked records into what a load writes, for one town's write keys.

    The same values ``repository.insert`` and ``repository.append_history``
    store (envelopes that decrypt to the same text at the same place, the
    same blind-index values, the same snapshot), built column by column
    (:class:`ColumnSealer`) and framed as binary COPY. Never shows a key in
    a repr.
    """

    __slots__ = ("_history", "_indexes", "_residents")

    def __init__(self, keys: SealingKeys) -> None:
        def sealer(table: str, column: str) -> ColumnSealer:
            version, key = keys.deks[f"{table}.{column}"]
            return ColumnSealer(key, version, (keys.tenant, table, column))

        self._residents = tuple(sealer("residents", c) for c in ENCRYPTED)
        self._history = tuple(sealer("resident_history", c) for c in _HISTORY_SEALED)
        self._indexes = {
            name: tuple((column, BlindIndex(key, bits)) for column, bits, key in versions)
            for name, versions in keys.indexes.items()
        }

    def __repr__(self) -> str:
        return "Framer()"  # never the keys

    def write(self, columns: Columns, processed_on: date) -> Framed:
        """What loading these records (new, as an import makes them) writes.

        ``columns``: valid records column by column, as :func:`check_columns`
        (or :func:`record_columns` of what :func:`check_rows` accepted) gives
        them; their 宛名番号 are not checked again for the events.
        """
        record = dict(zip(RECORD_FIELDS, columns, strict=True))
        ids: list[str] = record["id"]
        count = len(ids)
        if not count:
            raise ValueError("no records to write")  # a chunk always has rows
        places = ColumnSealer.places(ids)
        # Struct instances with the record's fields: the snapshot JSON is the
        # same document msgspec makes of a Resident; built in C, unlike dataclasses.
        records: list[Any] = list(map(_Record, *columns))
        blind = dict.fromkeys(BLIND, [NULL_FIELD] * count)
        for name, inputs in zip(INDEXES, _index_inputs(record), strict=True):
            for column, index in self._indexes[name]:
                blind[column] = [
                    NULL_FIELD if v is None else _int8_field(v) for v in index.values(inputs)
                ]
        utf8 = {name: _utf8(record[name], name in _DATE_COLUMNS) for name in ENCRYPTED}
        id_fields = _uuid_fields(ids)  # residents.id and resident_history.resident_id
        rows = _copy_data(
            [
                *(
                    id_fields if name == "id" else _plain_fields(name, record[name])
                    for name in PLAIN
                ),
                *(
                    sealer.copy_fields(places, utf8[name])
                    for name, sealer in zip(ENCRYPTED, self._residents, strict=True)
                ),
                *(blind[c] for c in BLIND),
            ],
            count,
        )
        history_nos: list[int] = record["history_no"]
        entries = ColumnSealer.places(f"{rid}/{n}" for rid, n in zip(ids, history_nos, strict=True))
        history_values: tuple[list[bytes | None], ...] = (
            [_IMPORT_REASON] * count,
            utf8["address_since"],  # the history's move date: the record's address_since
            utf8["notified_on"],
            list(map(msgspec.json.encode, records)),
        )
        reason, move_date, notified_on, snapshot = (
            sealer.copy_fields(entries, values)
            for sealer, values in zip(self._history, history_values, strict=True)
        )
        history = _copy_data(
            [
                id_fields,
                list(map(_int4_field, history_nos)),
                reason,
                move_date,
                notified_on,
                snapshot,
                [_int4_field(processed_on.toordinal() - _PG_EPOCH)] * count,
            ],
            count,
        )
        return Framed(rows, history, ids, record["atena_no"])


if INDEXES != ("individual_number", "kana_birth", "phone", "juminhyo_code"):
    raise RuntimeError("_index_inputs must follow INDEXES")  # pragma: no cover


def _index_inputs(record: dict[str, list[Any]]) -> tuple[list[str | None], ...]:
    """repository._index_texts, column by column: the same inputs for every record
    (tests hold the two together), without a Python call per record and index."""

    def digits(values: list[str | None]) -> list[str | None]:
        if "" not in values:
            joined = "".join(filter(None, values))
            if joined.isascii() and joined.isdigit():
                # Every value ASCII digits only (checked numbers): each is
                # already what normalize_digits makes of it.
                return list(values)
        return [normalize_digits(v) if v else None for v in values]

    # compound(kana, birth) == compound(kana) + compound(birth): the kana part
    # once per distinct name (family names repeat within a chunk).
    kana: list[str] = record["family_name_kana"]
    kana_parts = {k: compound(normalize_kana(k)) for k in set(kana)}
    births = map(compound, map(date.isoformat, record["birth_date"]))
    return (
        digits(record["individual_number"]),
        list(map(str.__add__, map(kana_parts.__getitem__, kana), births)),
        digits(record["phone"]),
        digits(record["juminhyo_code"]),
    )


_Record = msgspec.defstruct("_Record", [(name, Any) for name in RECORD_FIELDS])
"""A record as a msgspec Struct (see :meth:`Framer.write`)."""


Chunk = list[list[str]] | str
"""A chunk's rows, or the lines that hold them (a file without quotes: the
process that checks the chunk reads them itself, so they need not be read
here and sent as cells)."""


def _rows(chunk: Chunk) -> list[list[str]]:
    """A chunk's rows, read as csv.reader reads them (a blank line is not a row)."""
    if not isinstance(chunk, str):
        return chunk
    if '"' not in chunk and "\r" not in chunk and "\0" not in chunk:
        lines = chunk.split("\n")
        if max(map(len, lines)) <= csv.field_size_limit():
            # Nothing quoted, no line longer than csv.reader allows a cell:
            # each line is its cells split on commas, as csv.reader would
            # split it, in a fifth of the time.
            return [line.split(",") for line in lines if line]
    return [r for r in csv.reader(io.StringIO(chunk, newline="")) if r]


Done = tuple[Checked, Framed | None]
"""A chunk checked and, if it has no problems, sealed and framed."""


def check_and_seal(
    framer: Framer, chunk: Chunk, positions: list[int], first: int, today: date
) -> Done:
    """One chunk's whole CPU work: read, check, then (if every row is valid) seal."""
    checked, columns = check_columns(_rows(chunk), positions, first, today)
    if columns is None:
        return checked, None
    return checked, framer.write(columns, today)


# Worker process state: the town's framer, from the pool's initializer.
_FRAMER: Framer | None = None


def start_worker(keys: SealingKeys) -> None:
    """The pool's initializer: the town's keys, once per worker process."""
    global _FRAMER  # one per worker process, for the import it serves
    _FRAMER = Framer(keys)


def ready() -> None:
    """A no-op task: makes the executor start a process now."""


def in_worker(chunk: Chunk, positions: list[int], first: int, today: date) -> Done:
    """One chunk, in a worker process (see :func:`check_and_seal`)."""
    if _FRAMER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker has no keys")
    with no_cyclic_gc():
        return check_and_seal(_FRAMER, chunk, positions, first, today)


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building rows in bulk.

    A load allocates millions of small acyclic objects (cells, tuples,
    envelopes); the collector's repeated scans of them cost about a fifth of
    the checking and sealing (measured). Reference counting still frees
    everything; the collector resumes (and catches up) afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
