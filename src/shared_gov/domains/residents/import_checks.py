"""Checking a chunk of residents' CSV rows: column by column when clean, row by row when not.

:func:`check_rows` and :func:`check_columns` run in the worker processes
(:mod:`.import_worker`); duplicates within the file are found afterwards, in
the loading process, chunk after chunk (:class:`FileErrors`).
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from operator import attrgetter
from typing import Any

from shared_gov.domains.residents.import_layout import (
    _AT,
    _CANONICAL_UUID,
    _CHECKS,
    _COLUMN_CHECKS,
    _DATE_AT,
    _DATE_COLUMNS,
    _KANA_AT,
    _KATAKANA,
    _LIMITS,
    _OPTIONAL_TEXT,
    _REMOVED,
    _REQUIRED,
    _SERIAL_8,
    _SEX,
    _STATES,
    _TEXT_AT,
    _TOO_EARLY,
    _TYPE,
    _UNIQUE,
    HEADER,
    RECORD_FIELDS,
    Checked,
    Columns,
    RowError,
    _date,
    _kana,
)
from shared_gov.domains.residents.models import HEAD, RELATIONSHIPS, Resident
from shared_gov.validation import EARLIEST_DATE, NOT_TEXT, TEXT_REFUSED


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
