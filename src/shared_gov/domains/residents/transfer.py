"""Bulk import and export of a town's resident register as CSV.

The layout is modelled on the 住民記録 part of the intermediate standard
layout (中間標準レイアウト仕様): one row per person with 宛名番号, 世帯番号,
続柄, names and their kana, 生年月日, 性別 (1 男 / 2 女), 住所, 郵便番号,
個人番号, 住民票コード, 住民種別 (1 日本人住民 / 2 外国人住民), 住民状態 and
the record dates. Column names and codes are listed in ``COLUMNS`` and in
docs/import-export.md. UTF-8, header row required, dates as YYYY-MM-DD.

Import validates every row (check digits, dates, required fields, codes,
kana, duplicates in the file and in the town); on any error nothing is
written and the report lists row, column and reason — never the value. Rows
are checked, encrypted and blind-indexed in chunks, by worker processes for
large files, column by column (a clean chunk never goes through a Python
loop per row and cell), and framed there as binary COPY; each chunk is
loaded as soon as it is ready while the file is still clean, so PostgreSQL
works while the next chunks are sealed and this process only sends bytes;
all of it in the caller's transaction, under a savepoint that is rolled back
at the first problem. One ``resident.registered`` event per record
(:mod:`.events`). Export writes the same layout, decrypted, so importing an
export reproduces the same records (same ids, 宛名番号 and 世帯番号).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import gc
import io
import multiprocessing
import operator
import os
import re
import struct
import sys
import types
import unicodedata
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from datetime import date
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, NamedTuple, TextIO

import msgspec

from shared_gov.audit.recorder import AuditEvent, operator_actor, record
from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
    is_valid_serial,
)
from shared_gov.clock import today_jst
from shared_gov.crypto.blind import BlindIndex, compound, normalize_digits, normalize_kana
from shared_gov.crypto.envelope import NULL_FIELD, ColumnSealer
from shared_gov.crypto.keyring import RESIDENT_INDEXES, WriteKeys, index_column
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import events
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.models import HEAD, RELATIONSHIPS, Resident
from shared_gov.policy.purposes import POLICY_FIELDS

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
ALL_FIELDS = tuple(c for c in HEADER if c in POLICY_FIELDS)
_SEX = {"1": "male", "2": "female"}
_SEX_CODE = {v: k for k, v in _SEX.items()}
_TYPE = {"1": "japanese", "2": "foreign"}
_TYPE_CODE = {v: k for k, v in _TYPE.items()}
_STATES = frozenset({"active", "moved_out", "deceased", "removed"})


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    """1-based data row number (the header is row 0)."""
    column: str
    reason: str


class ImportRejected(Exception):
    """The file has errors; nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} problems; nothing was written")
        self.errors = errors


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
_EVENT_ATENA = events.id_check("atena_no")
"""Valid 宛名番号 for an event: 8 digits, check digit (what the checks above and the
length check below accept together)."""
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
    :class:`FileErrors` over all chunks in order.
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
        dates[name] = parsed
    for _, name, check, _ in _CHECKS:
        if name == "atena_no":
            continue  # below
        values = cells[name]
        if not all(map(check, filter(None, values) if "" in values else values)):
            return None
    # 宛名番号: 8 digits whose last is the check digit, checked the way events
    # check them (the same rule), so the events take them as they are.
    if not all(map(_EVENT_ATENA, cells["atena_no"])):
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


class FileErrors:
    """Adds duplicates within the file to the rows' own problems, chunk after chunk."""

    def __init__(self) -> None:
        self._seen: tuple[set[str], ...] = tuple(set() for _ in _UNIQUE)

    def add(self, checked: Checked) -> list[RowError]:
        """The errors of one chunk (chunks in file order); a row's duplicates
        follow its other problems, as they always have in the report."""
        if not checked.problems and self._add_distinct(checked):
            return []
        errors: list[RowError] = []
        for k, number in enumerate(checked.numbers):
            problems = checked.problems.get(number, [])
            removed = checked.removed[k]
            for (_, column, numbered), values, earlier in zip(
                _UNIQUE, checked.uniques, self._seen, strict=True
            ):
                value = values[k]
                # A removed record (除票) keeps its numbers; only active ones must be unique.
                if not value or (numbered and removed):
                    continue
                if value in earlier:
                    problems = [*problems, RowError(number, column, "duplicate in this file")]
                earlier.add(value)
            errors.extend(problems)
        return errors

    def _add_distinct(self, checked: Checked) -> bool:
        """Take in a chunk whose values are new and distinct (with set operations, in C);
        False, with nothing taken in, if any is repeated: then row by row, for the report."""
        anyone_removed = any(checked.removed)
        kept: list[list[str]] = []
        for (_, _, numbered), values, earlier in zip(
            _UNIQUE, checked.uniques, self._seen, strict=True
        ):
            if numbered and anyone_removed:
                values = [v for v, r in zip(values, checked.removed, strict=True) if not r]
            if "" in values:
                values = [v for v in values if v]
            if len(set(values)) != len(values) or not earlier.isdisjoint(values):
                return False
            kept.append(values)
        for earlier, values in zip(self._seen, kept, strict=True):
            earlier.update(values)
        return True


def parse(stream: TextIO) -> tuple[list[Resident], list[RowError]]:
    """Read and validate every row; returns the valid records and the errors."""
    reader = csv.reader(stream)
    header = next(reader, None) or []
    missing = _missing(header)
    if missing:
        return [], missing
    # A blank line is not a row (csv.DictReader skipped them too).
    rows = [r for r in reader if r]
    checked, residents = check_rows(rows, _positions(header), 1, today_jst())
    errors = FileErrors().add(checked)
    # Records of the rows without any problem (duplicates are found last).
    wrong = {e.row for e in errors}
    valid = [n for n in checked.numbers if n not in checked.problems]
    return [r for n, r in zip(valid, residents, strict=True) if n not in wrong], errors


# --- COPY payloads -------------------------------------------------------------------
#
# A clean chunk becomes the bytes of a binary COPY per table, built where it
# was checked (a worker process for a large file), so the loading process
# only sends them: encoding a hundred thousand records again there, value by
# value (``copy_records_to_table``), cost about a second of its CPU
# (measured), all of it while PostgreSQL waited for the next chunk.

RESIDENT_COLUMNS: tuple[str, ...] = (*repo.PLAIN, *repo.ENCRYPTED, *repo.BLIND)
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
if set(_PLAIN_TYPES) != set(repo.PLAIN):
    raise RuntimeError("_PLAIN_TYPES must follow repository.PLAIN")  # pragma: no cover


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


class Sealed(NamedTuple):
    """A clean chunk, ready to load: what it writes to each table."""

    residents: bytes
    """Binary COPY of the residents rows (:data:`RESIDENT_COLUMNS`)."""
    history: bytes
    """Binary COPY of their history entries (:data:`HISTORY_COLUMNS`)."""
    events: events.Batch
    """Their ``resident.registered`` events, checked."""


class CopyWriter:
    """Turns checked records into what a load writes, for one town's write keys.

    The same values :func:`repository.insert` and
    :func:`repository.append_history` store (envelopes that decrypt to the
    same text at the same place, the same blind-index values, the same
    snapshot), built column by column (:class:`ColumnSealer`) and framed as
    binary COPY. Built from :class:`WriteKeys`, so a worker process can have
    one; never shows a key in a repr.
    """

    __slots__ = ("_history", "_indexes", "_residents")

    def __init__(self, keys: WriteKeys) -> None:
        def sealer(table: str, column: str) -> ColumnSealer:
            version, key = keys.deks[f"{table}.{column}"]
            return ColumnSealer(key, version, (keys.tenant, table, column))

        self._residents = tuple(sealer("residents", c) for c in repo.ENCRYPTED)
        self._history = tuple(sealer("resident_history", c) for c in _HISTORY_SEALED)
        # Every live version of each index (two during a key rotation), by column.
        self._indexes = {
            name: tuple(
                (index_column(name, version), BlindIndex(key, bits))
                for version, bits, key in versions
            )
            for name, versions in keys.indexes.items()
        }

    def __repr__(self) -> str:
        return "CopyWriter()"  # never the keys

    def write(self, columns: Columns, processed_on: date, import_id: str) -> Sealed:
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
        blind = dict.fromkeys(repo.BLIND, [NULL_FIELD] * count)
        for name, inputs in zip(RESIDENT_INDEXES, _index_inputs(record), strict=True):
            for column, index in self._indexes[name]:
                blind[column] = [
                    NULL_FIELD if v is None else _int8_field(v) for v in index.values(inputs)
                ]
        rows = _copy_data(
            [
                *(_plain_fields(name, record[name]) for name in repo.PLAIN),
                *(
                    sealer.copy_fields(places, _utf8(record[name], name in _DATE_COLUMNS))
                    for name, sealer in zip(repo.ENCRYPTED, self._residents, strict=True)
                ),
                *(blind[c] for c in repo.BLIND),
            ],
            count,
        )
        history_nos: list[int] = record["history_no"]
        entries = ColumnSealer.places(f"{rid}/{n}" for rid, n in zip(ids, history_nos, strict=True))
        history_values: tuple[list[bytes | None], ...] = (
            [_IMPORT_REASON] * count,
            _utf8(record["address_since"], dates=True),
            _utf8(record["notified_on"], dates=True),
            list(map(msgspec.json.encode, records)),
        )
        reason, move_date, notified_on, snapshot = (
            sealer.copy_fields(entries, values)
            for sealer, values in zip(self._history, history_values, strict=True)
        )
        history = _copy_data(
            [
                _uuid_fields(ids),
                list(map(_int4_field, history_nos)),
                reason,
                move_date,
                notified_on,
                snapshot,
                [_int4_field(processed_on.toordinal() - _PG_EPOCH)] * count,
            ],
            count,
        )
        registered = events.batch(
            events.REGISTERED,
            ids,
            # Checked when the file was read: the events' own rule (_EVENT_ATENA).
            checked_each={"atena_no": record["atena_no"]},
            history_no="1",
            import_id=import_id,
        )
        return Sealed(rows, history, registered)


if RESIDENT_INDEXES != ("individual_number", "kana_birth", "phone", "juminhyo_code"):
    raise RuntimeError("_index_inputs must follow RESIDENT_INDEXES")  # pragma: no cover


def _index_inputs(record: dict[str, list[Any]]) -> tuple[list[str | None], ...]:
    """repository._index_texts, column by column: the same inputs for every record
    (tests hold the two together), without a Python call per record and index."""

    def digits(values: list[str | None]) -> list[str | None]:
        return [normalize_digits(v) if v else None for v in values]

    kana = map(normalize_kana, record["family_name_kana"])
    return (
        digits(record["individual_number"]),
        list(map(compound, kana, map(date.isoformat, record["birth_date"]))),
        digits(record["phone"]),
        digits(record["juminhyo_code"]),
    )


_Record = msgspec.defstruct("_Record", [(name, Any) for name in RECORD_FIELDS])
"""A record as a msgspec Struct (see :meth:`CopyWriter.write`)."""


# --- loading -------------------------------------------------------------------------

CHUNK_ROWS = 2000
"""Rows per task: checked, sealed and loaded together."""
PARALLEL_MIN_ROWS = 4000
"""From this many rows a file is checked and sealed by worker processes."""
LOCAL_CHUNKS = 3
"""With workers: how many first chunks this process checks and seals itself,
while the workers start (about half a second), so that PostgreSQL starts
loading at once; the workers take the next ones."""
_SAVEPOINT = "shared_gov_import"

Done = tuple[Checked, Sealed | None]
"""A chunk checked and, if it has no problems, sealed."""
Chunk = list[list[str]] | str
"""A chunk's rows, or the lines that hold them (a file without quotes: the
process that checks the chunk reads them itself, so they need not be read
here and sent as cells)."""
_BLANK_LINES = frozenset({"\n", "\r\n", "\r"})
"""Lines csv.reader reads as no row at all (a blank line is not a row)."""


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


def _read(text: str) -> tuple[list[str], list[Chunk], list[list[str]] | None]:
    """The header, the file in chunks of :data:`CHUNK_ROWS` rows, and its rows if read here.

    Without a quote character, every line of the file is one row (no cell
    can hold a line break), so the chunks are cut on line boundaries and
    left as text for whoever checks them: csv.reader runs there, in
    parallel, instead of here, and rows do not cross between processes as
    lists of cells (together about half a second of this process for
    100,000 rows, measured).
    """
    if '"' in text:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None) or []
        rows = [r for r in reader if r]  # a blank line is not a row
        return header, [rows[i : i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)], rows
    if "\r" not in text and "\n\n" not in text and not text.startswith("\n"):
        # The usual file: each \n ends one row (no blank line), so the chunks
        # are slices between every CHUNK_ROWS-th \n.
        end = text.find("\n")
        if end < 0:
            return next(csv.reader([text]), []), [], None
        header = next(csv.reader([text[:end]]), [])
        text_chunks: list[Chunk] = []
        start, size = end + 1, len(text)
        while start < size:
            stop = start
            for _ in range(CHUNK_ROWS):
                stop = text.find("\n", stop) + 1
                if not stop:
                    stop = size
                    break
            text_chunks.append(text[start:stop])
            start = stop
        return header, text_chunks, None
    # The same lines csv.reader would read (split on \n, \r\n or \r).
    lines = io.StringIO(text, newline="").readlines()
    header = next(csv.reader(lines[:1]), [])
    records = [line for line in lines[1:] if line not in _BLANK_LINES]
    chunks: list[Chunk] = [
        "".join(records[i : i + CHUNK_ROWS]) for i in range(0, len(records), CHUNK_ROWS)
    ]
    return header, chunks, None


def check_and_seal(
    writer: CopyWriter,
    chunk: Chunk,
    positions: list[int],
    first: int,
    today: date,
    import_id: str,
) -> Done:
    """One chunk's whole CPU work: read, check, then (if every row is valid) seal."""
    checked, columns = check_columns(_rows(chunk), positions, first, today)
    if columns is None:
        return checked, None
    return checked, writer.write(columns, today, import_id)


# Worker process state: the town's writer, from the pool's initializer.
_WRITER: CopyWriter | None = None


def _start_worker(keys: WriteKeys) -> None:
    global _WRITER  # one per worker process, for the import it serves
    _WRITER = CopyWriter(keys)


def _ready() -> None:
    """A no-op task: makes the executor start a process now."""


def _in_worker(chunk: Chunk, positions: list[int], first: int, today: date, import_id: str) -> Done:
    if _WRITER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker has no writer")
    with _no_cyclic_gc():
        return check_and_seal(_WRITER, chunk, positions, first, today, import_id)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
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


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """While worker processes are started: a ``__main__`` that spawning does not re-run.

    A spawned process first runs the parent's main script again (for
    functions pickled from it): for ``shared-gov`` that is the whole CLI,
    over a second of imports per worker, and half a second for
    bench/crypto.py (measured), spent while PostgreSQL waits for the first
    chunk. Our workers only call functions of this module, so for the few
    milliseconds it takes to start them, ``sys.modules["__main__"]`` is an
    empty module (no file, no spec: nothing to re-run).
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is None:  # pragma: no cover - an embedding without __main__
            del sys.modules["__main__"]
        else:
            sys.modules["__main__"] = saved


def _start_pool(keys: WriteKeys, workers: int) -> ProcessPoolExecutor:
    """Worker processes for one import, each with the town's write keys.

    Spawned, as the service's workers are (no inherited HSM session, lock or
    event loop), and started now so that they load while the file is split.
    The keys reach them through the initializer, over a pipe between our own
    processes; :class:`WriteKeys` never shows key bytes in a repr, a log line
    or a traceback.
    """
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(keys,),
    )
    try:
        # Each submit starts a process (until there are ``workers``).
        with _bare_main():
            for _ in range(workers):
                pool.submit(_ready)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool


def _worker_count(lines: int, requested: int | None) -> int:
    if requested is not None:
        return requested
    if lines < PARALLEL_MIN_ROWS:
        return 0  # starting processes (about half a second) would cost more
    # A worker seals a chunk in about the time PostgreSQL loads it, and
    # PostgreSQL needs a core of its own: beyond three workers COPY is the
    # bottleneck (on two cores, one or two workers did equally, three worse:
    # measured).
    return max(1, min(3, os.cpu_count() or 1))


class _Chunks:
    """Each chunk checked and sealed, delivered in file order.

    With a pool, this process seals the first :data:`LOCAL_CHUNKS` chunks
    itself, in a thread (the event loop keeps sending COPYs meanwhile), and
    the next ones are handed to the pool at once (so workers start while
    this process compares the file with the town), then as results come
    back, a few per worker ahead: enough to keep them busy during a COPY,
    few enough to bound the sealed rows held in memory.
    """

    def __init__(
        self,
        chunks: list[Chunk],
        positions: list[int],
        today: date,
        keys: WriteKeys,
        pool: ProcessPoolExecutor | None,
        workers: int,
        import_id: str,
    ) -> None:
        self._chunks = chunks
        self._positions = positions
        self._today = today
        self._keys = keys
        self._pool = pool
        self._import_id = import_id
        self._pending: deque[asyncio.Future[Done]] = deque()
        self.closing: asyncio.Future[None] | None = None
        """The pool's shutdown, once every chunk has come back."""
        # Leave the pool a chunk at least (a small file is not worth it).
        self._local = min(LOCAL_CHUNKS, len(chunks) - 1) if pool is not None else 0
        self._next = self._local
        if pool is not None:
            for _ in range(min(3 * workers, len(chunks) - self._local)):
                self._submit()

    def _submit(self) -> None:
        if self._pool is None:  # pragma: no cover - only called with a pool
            raise RuntimeError("no pool")
        number = self._next
        self._next += 1
        self._pending.append(
            asyncio.get_running_loop().run_in_executor(
                self._pool,
                _in_worker,
                self._chunks[number],
                self._positions,
                1 + number * CHUNK_ROWS,
                self._today,
                self._import_id,
            )
        )

    async def results(self) -> AsyncIterator[Done]:
        if self._pool is None:
            writer = CopyWriter(self._keys)
            for number, chunk in enumerate(self._chunks):
                yield check_and_seal(
                    writer,
                    chunk,
                    self._positions,
                    1 + number * CHUNK_ROWS,
                    self._today,
                    self._import_id,
                )
            return
        if self._local:
            writer = CopyWriter(self._keys)
            for number in range(self._local):
                yield await asyncio.to_thread(
                    check_and_seal,
                    writer,
                    self._chunks[number],
                    self._positions,
                    1 + number * CHUNK_ROWS,
                    self._today,
                    self._import_id,
                )
        while self._pending:
            result = await self._pending.popleft()
            if self._next < len(self._chunks):
                self._submit()
            elif not self._pending and self.closing is None:
                # Nothing left for the workers: they exit while the last chunk
                # loads (the import waits for this at the end).
                self.closing = asyncio.ensure_future(
                    asyncio.to_thread(self._pool.shutdown, wait=True)
                )
            yield result

    def cancel(self) -> None:
        for future in self._pending:
            future.cancel()


async def import_csv(
    uow: TenantUnitOfWork,
    stream: TextIO,
    on_progress: Callable[[int], None] | None = None,
    *,
    workers: int | None = None,
) -> int:
    """Validate the whole file and load it in the caller's transaction.

    Raises :class:`ImportRejected` on any problem, with nothing written.

    The file is handled in chunks of :data:`CHUNK_ROWS` rows, each checked
    and then encrypted, indexed and framed as binary COPY (by ``workers``
    processes for a large file: default one per core, at most three, from
    4,000 rows; 0 for none). Meanwhile this process compares the whole file
    with the town (numbers, 宛名番号, households: one query each, on the
    cells as written), then sends each chunk's COPY as it comes back and
    checks the next chunk while PostgreSQL loads it. Once a problem is found
    nothing more is loaded, the rest of the file is still checked for the
    report, and what was loaded is rolled back to a savepoint (so not even a
    caller that swallowed the error could commit part of a file). The report
    is what it was when everything was checked before loading: the file's
    own problems if it has any, else its clashes with the town.
    """
    keys = uow.keys
    if keys is None or keys.write_keys is None:  # pragma: no cover - Database provides keys
        raise RuntimeError("this unit of work has no keys")
    with _no_cyclic_gc():
        return await _import(uow, stream.read(), keys.write_keys, on_progress, workers)


async def _import(
    uow: TenantUnitOfWork,
    text: str,
    write_keys: WriteKeys,
    on_progress: Callable[[int], None] | None,
    workers: int | None,
) -> int:
    workers = _worker_count(text.count("\n"), workers)
    pool = None
    chunks: _Chunks | None = None
    try:
        # Inside the try: a pool that fails half-way through starting (no
        # file descriptors, no memory) is still shut down below.
        pool = _start_pool(write_keys, workers) if workers else None
        header, parts, rows = _read(text)
        del text
        missing = _missing(header)
        if missing:
            raise ImportRejected(missing)
        positions = _positions(header)
        # The shared import_id tells consumers of the events this is a data
        # migration, not a wave of registrations to act on.
        chunks = _Chunks(
            parts,
            positions,
            today_jst(),
            write_keys,
            pool,
            workers,
            str(uuid.uuid4()),
        )
        await uow.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            # Before anything is loaded: only the town's own records can clash.
            if rows is None and await _town_is_empty(uow):
                clashes: list[RowError] = []  # a town joining the platform
            else:
                every = rows if rows is not None else [r for p in parts for r in _rows(p)]
                clashes = await _clashes(uow, every, positions)
                del every
            del rows, parts
            loaded = await _load(uow, chunks.results(), clashes, on_progress)
        except BaseException:
            with contextlib.suppress(Exception):  # the connection may be gone
                await uow.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            raise
        await uow.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    finally:
        if chunks is not None:
            chunks.cancel()
            if chunks.closing is not None:
                await chunks.closing
        if pool is not None:
            # Off the event loop: waiting for the chunks still running must not
            # freeze the process's other tasks (the CLI's signal handling).
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
    # One event for the whole load, in the same transaction (no audit, no import).
    # Bulk jobs record counts, not every subject: the file itself is the list.
    await record(
        uow,
        operator_actor("residents import"),
        AuditEvent(action="residents.import", fields=list(ALL_FIELDS), rows=loaded),
    )
    return loaded


async def _town_is_empty(uow: TenantUnitOfWork) -> bool:
    """No resident and no household yet: nothing in a file can clash with the town.

    Under the registration lock first, as :func:`_clashes` checks: while
    the import holds it, no registration can commit behind this check.
    """
    await repo.existing_unique_values(uow, [], [])  # takes the lock; nothing to compare
    empty: bool = not await uow.fetchval(
        "SELECT EXISTS (SELECT FROM residents) OR EXISTS (SELECT FROM households)"
    )
    return empty


async def _clashes(
    uow: TenantUnitOfWork, rows: list[list[str]], positions: list[int]
) -> list[RowError]:
    """The file's clashes with the town's records, from its cells as written.

    Reported only if the file has no problem of its own, i.e. when every
    cell compared here is exactly what would be stored.
    """

    def cells(column: str) -> list[str]:
        i = positions[_AT[column]]
        return [r[i].strip() if 0 <= i < len(r) else "" for r in rows]

    states = cells("state")
    numbers, codes, atena = cells("individual_number"), cells("juminhyo_code"), cells("atena_no")
    households = cells("household_no")
    active = [s == "active" for s in states]
    taken_in, taken_jc = await repo.existing_unique_values(
        uow,
        [n for n, a in zip(numbers, active, strict=True) if a and n],
        [c for c, a in zip(codes, active, strict=True) if a and c],
    )
    existing = await repo.existing_atena_numbers(uow, [a for a in atena if a])
    errors: list[RowError] = []
    for number, (a, n, c, at) in enumerate(zip(active, numbers, codes, atena, strict=True), 1):
        if a and n and n in taken_in:
            errors.append(RowError(number, "individual_number", "already registered in this town"))
        if a and c and c in taken_jc:
            errors.append(RowError(number, "juminhyo_code", "already registered in this town"))
        if at in existing:
            errors.append(RowError(number, "atena_no", "already registered in this town"))
    taken = await repo.existing_households(uow, sorted(set(households) - {""}))
    errors.extend(
        RowError(number, "household_no", "household already exists in this town")
        for number, h in enumerate(households, 1)
        if h in taken
    )
    return errors


async def _load_chunk(
    uow: TenantUnitOfWork, households: dict[str, str | None], sealed: Sealed
) -> None:
    # Households before their members (the members' foreign key), residents
    # before their history entries (same).
    await repo.copy_households(uow, households)
    await uow.copy_bytes("residents", RESIDENT_COLUMNS, sealed.residents)
    await uow.copy_bytes("resident_history", HISTORY_COLUMNS, sealed.history)
    # One event per record, in bulk and in the load's transaction.
    await events.emit_batch(uow, sealed.events)


async def _load(
    uow: TenantUnitOfWork,
    done: AsyncIterator[Done],
    clashes: list[RowError],
    on_progress: Callable[[int], None] | None,
) -> int:
    """Load chunk after chunk while neither the file nor the town shows a problem.

    Double-buffered: a chunk is loaded by a task while this loop receives
    and checks the next one (duplicates within the file, households), so
    PostgreSQL does not wait for this process between chunks.
    """
    file_errors = FileErrors()
    errors: list[RowError] = []
    households: dict[str, str | None] = {}
    """Every household of the file so far: number -> its head's id."""
    inserted: dict[str, str | None] = {}
    loaded = 0
    loading: tuple[asyncio.Task[None], int] | None = None
    """The chunk being loaded, and its rows."""

    async def finish() -> None:
        nonlocal loaded, loading
        if loading is not None:
            task, count = loading
            loading = None
            await task  # its exceptions, if any, are the import's
            loaded += count
            if on_progress:
                on_progress(count)

    try:
        async for checked, sealed in done:
            errors.extend(file_errors.add(checked))
            await finish()
            if errors or clashes or sealed is None:
                continue  # nothing more is loaded; the rest is still checked for the report
            new: dict[str, str | None] = {}
            for household, head in checked.households.items():
                if household not in households:
                    households[household] = new[household] = head
                elif head is not None:
                    households[household] = head
            inserted.update(new)
            count = len(sealed.events.resident_ids)
            loading = (asyncio.create_task(_load_chunk(uow, new, sealed)), count)
            # Let the task send its first COPY before this loop takes the CPU again.
            await asyncio.sleep(0)
        await finish()
    finally:
        if loading is not None:  # this loop failed or was cancelled mid-chunk
            loading[0].cancel()
            # Wait for it: the connection must be idle before the rollback.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await loading[0]
    if errors or clashes:
        raise ImportRejected(errors or clashes)
    # A household met before its head's row (in an earlier chunk) gets its head now.
    await repo.set_household_heads(
        uow, {h: head for h, head in households.items() if inserted.get(h) != head}
    )
    await repo.advance_sequences(uow)
    return loaded


def _cells(r: Resident) -> list[str]:
    values: dict[str, Any] = {
        **{c: getattr(r, c, None) for c in HEADER if hasattr(r, c)},
        "sex": _SEX_CODE.get(r.sex, ""),
        "resident_type": _TYPE_CODE.get(r.resident_type, ""),
    }
    return ["" if values.get(c) is None else str(values[c]) for c in HEADER]


async def export_csv(uow: TenantUnitOfWork, stream: TextIO) -> int:
    """Write every record of the town, decrypted, in the import layout."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    async for resident in repo.iter_all(uow):
        writer.writerow(_cells(resident))
        count += 1
    await record(
        uow,
        operator_actor("residents export"),
        AuditEvent(action="residents.export", fields=list(ALL_FIELDS), rows=count),
    )
    return count


def report(errors: list[RowError], limit: int = 200) -> Iterator[str]:
    """Human-readable lines for an import report (no values, ever)."""
    for e in errors[:limit]:
        yield f"row {e.row}, {e.column}: {e.reason}"
    if len(errors) > limit:
        yield f"… and {len(errors) - limit} more"


def to_csv_text(rows: list[list[str]]) -> str:
    """Helper for tests and tools: CSV text with our header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue()
