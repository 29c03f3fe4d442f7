"""The import's parsing and checks: the parser against the one it replaced, the
column-wise checks of a clean chunk against the row-by-row ones, and duplicates
within a file found either way (``import_checks``, ``import_layout``, ``transfer.parse``)."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any, TextIO

import pytest

from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
    is_valid_serial,
    make_serial,
)
from shared_gov.clock import today_jst
from shared_gov.domains.residents import import_checks, import_layout, transfer
from shared_gov.domains.residents.import_layout import _SEX, _STATES, _TYPE
from shared_gov.domains.residents.models import RELATIONSHIPS, Resident
from shared_gov.domains.residents.rules import normalize_kana
from shared_gov.domains.residents.transfer import (  # the reference parser's helpers
    COLUMNS,
    HEADER,
    RowError,
)
from tests.domains.residents.import_files import file_row, random_file

# --- the parser it replaced, kept as the reference ---------------------------------


def _reference_parse(stream: TextIO) -> tuple[list[Resident], list[RowError]]:
    """transfer.parse as it was before the bulk import was made fast (csv.DictReader)."""
    reader = csv.DictReader(stream)
    errors: list[RowError] = []
    missing = [c for c, _, required in COLUMNS if required and c not in (reader.fieldnames or [])]
    if missing:
        return [], [RowError(0, c, "column missing from the header") for c in missing]
    today = today_jst()
    residents: list[Resident] = []
    seen: dict[str, set[str]] = {
        "id": set(),
        "atena_no": set(),
        "individual_number": set(),
        "juminhyo_code": set(),
    }
    for number, raw in enumerate(reader, start=1):
        row = {k: (v or "").strip() for k, v in raw.items() if k}
        problems: list[RowError] = []

        def bad(column: str, reason: str, n: int = number, sink: list[RowError] = problems) -> None:
            sink.append(RowError(n, column, reason))

        for column, _, required in COLUMNS:
            if required and not row.get(column):
                bad(column, "required")
        dates: dict[str, date | None] = {}
        for column in (
            "birth_date",
            "resident_since",
            "address_since",
            "notified_on",
            "removed_on",
        ):
            value = row.get(column, "")
            dates[column] = import_layout._date(value) if value else None
            if value and dates[column] is None:
                bad(column, "not a date (YYYY-MM-DD)")
            elif dates[column] is not None and dates[column] > today:  # type: ignore[operator]
                bad(column, "in the future")
        checks: list[tuple[str, Callable[[str], bool], str]] = [
            ("atena_no", is_valid_serial, "check digit does not match"),
            ("household_no", is_valid_serial, "check digit does not match"),
            ("individual_number", is_valid_individual_number, "check digit does not match"),
            ("juminhyo_code", is_valid_juminhyo_code, "must be 11 digits"),
            ("postal_code", is_valid_postal_code, "must be 7 digits"),
        ]
        for column, check, reason in checks:
            if row.get(column) and not check(row[column]):
                bad(column, reason)
        # The register's 宛名番号 are 8 digits (search, sequences and events
        # rely on it).
        if row.get("atena_no") and len(row["atena_no"]) != 8:
            bad("atena_no", "must be 8 digits")
        if row.get("id"):
            try:
                row["id"] = str(uuid.UUID(row["id"]))
            except ValueError:
                bad("id", "not a UUID")
        if row.get("sex") and row["sex"] not in _SEX:
            bad("sex", "must be 1 or 2")
        if row.get("resident_type") and row["resident_type"] not in _TYPE:
            bad("resident_type", "must be 1 or 2")
        if row.get("state") and row["state"] not in _STATES:
            bad("state", "not a known state")
        if row.get("relationship") and row["relationship"] not in RELATIONSHIPS:
            bad("relationship", "not a known 続柄")
        kana = {}
        for column in ("family_name_kana", "given_name_kana"):
            value = normalize_kana(row.get(column, ""))
            kana[column] = value
            if value and not all("ァ" <= c <= "ヺ" or c in "ー・" for c in value):
                bad(column, "must be written in kana")
        for column in ("family_name", "given_name", "former_surname"):
            if len(row.get(column, "")) > 50:
                bad(column, "longer than 50 characters")
        for column in ("address", "domicile", "previous_address", "forward_address"):
            if len(row.get(column, "")) > 200:
                bad(column, "longer than 200 characters")
        removed = row.get("state") in _STATES - {"active"}
        if removed and not row.get("removed_on"):
            bad("removed_on", "required for a removed resident")
        for column in seen:
            value = row.get(column)
            # A removed record (除票) keeps its numbers; only active ones must be unique.
            numbered = column in ("individual_number", "juminhyo_code")
            if not value or (numbered and removed):
                continue
            if value in seen[column]:
                bad(column, "duplicate in this file")
            seen[column].add(value)
        if problems:
            errors.extend(problems)
            continue
        residents.append(
            Resident(
                id=row.get("id") or str(uuid.uuid4()),
                atena_no=row["atena_no"],
                version=1,
                state=row["state"],
                resident_type=_TYPE[row["resident_type"]],
                household_no=row["household_no"],
                relationship=row["relationship"],
                family_name=row["family_name"],
                given_name=row["given_name"],
                family_name_kana=kana["family_name_kana"],
                given_name_kana=kana["given_name_kana"],
                birth_date=dates["birth_date"],  # type: ignore[arg-type]
                sex=_SEX[row["sex"]],
                address=row["address"],
                postal_code=row.get("postal_code") or None,
                individual_number=row.get("individual_number") or None,
                juminhyo_code=row.get("juminhyo_code") or None,
                phone=row.get("phone") or None,
                former_surname=row.get("former_surname") or None,
                domicile=row.get("domicile") or None,
                previous_address=row.get("previous_address") or None,
                forward_address=row.get("forward_address") or None,
                resident_since=dates["resident_since"],  # type: ignore[arg-type]
                address_since=dates["address_since"],  # type: ignore[arg-type]
                notified_on=dates["notified_on"],  # type: ignore[arg-type]
                removed_on=dates["removed_on"],
                history_no=1,
            )
        )
    return residents, errors


def _comparable(residents: list[Resident]) -> list[Resident]:
    # Ids generated for rows without one are random on both sides.
    return [replace(r, id="generated") if r.id.startswith("gen") else r for r in residents]


@pytest.mark.parametrize("seed", range(40))
def test_parser_matches_the_one_it_replaced(seed: int) -> None:
    """Random files with every kind of problem: the same errors in the same order, and
    the same records, as the csv.DictReader parser this one replaced."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test files, not secrets
    text = random_file(rng, rng.choice([1, 5, 30, 120]))
    ours, our_errors = transfer.parse(io.StringIO(text, newline=""))
    theirs, their_errors = _reference_parse(io.StringIO(text, newline=""))
    assert our_errors == their_errors
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        if a.id != b.id:  # both generated (the file gave none)
            a = replace(a, id=b.id)
        assert a == b


# --- the fast paths: the same as the plain ones ---------------------------------------


def _columns_without_generated_ids(columns: transfer.Columns, file_ids: list[str]) -> list[Any]:
    # Ids generated for rows without one are random on both sides.
    ids = [i if i in file_ids else "generated" for i in columns[0]]
    return [ids, *columns[1:]]


@pytest.mark.parametrize("seed", range(30))
def test_column_checks_match_row_checks(seed: int) -> None:
    """_check_clean (column by column, for clean chunks) never accepts a row the
    row-by-row check refuses, and gives the same records, numbers and households."""
    rng = random.Random(1000 + seed)  # noqa: S311 - reproducible test files, not secrets
    text = random_file(rng, rng.choice([1, 5, 30, 120]))
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    if transfer._missing(header):
        return
    rows = [r for r in reader if r]
    positions = transfer._positions(header)
    today = today_jst()
    slow, residents = import_checks._check_one_by_one(rows, positions, 1, today)
    fast = import_checks._check_clean(rows, positions, 1, today)
    if slow.problems:
        assert fast is None
        return
    # Clean files (rare with these mutations) must take the fast path.
    assert fast is not None
    checked, columns = fast
    assert (checked.first, checked.problems, checked.removed) == (1, {}, slow.removed)
    assert checked.uniques == slow.uniques
    file_ids = [c for c in slow.uniques[0] if c]
    assert list(checked.households) == list(slow.households)
    for household, head in checked.households.items():
        assert head == slow.households[household] or head not in file_ids
    assert _columns_without_generated_ids(columns, file_ids) == _columns_without_generated_ids(
        transfer.record_columns(residents), file_ids
    )


def test_column_checks_take_clean_files_and_refuse_each_problem() -> None:
    """A clean file goes the fast way; each single kind of problem sends it row by row."""
    today = today_jst()
    clean = [file_row(n) for n in range(12)]
    clean[5]["id"] = str(uuid.UUID(clean[5]["id"])).upper()  # accepted, stored canonical
    clean[6]["id"] = ""
    clean[7]["state"] = "moved_out"
    clean[7]["removed_on"] = "2020-03-31"
    clean[8]["family_name_kana"] = "ｵﾋﾞﾋﾛ"
    positions = transfer._positions(list(HEADER))
    rows = [[r[c] for c in HEADER] for r in clean]
    fast = import_checks._check_clean(rows, positions, 1, today)
    assert fast is not None
    slow, _ = import_checks._check_one_by_one(rows, positions, 1, today)
    assert fast[0].uniques == slow.uniques
    assert fast[0].removed == slow.removed
    assert fast[1][0][5] == clean[5]["id"].lower()
    assert fast[1][RECORD_AT["family_name_kana"]][8] == "オビヒロ"
    for column, bad in [
        ("atena_no", make_serial(1)[:-1] + "0"),
        ("atena_no", "0000019"),
        ("household_no", "12"),
        ("individual_number", "123456789012"),
        ("juminhyo_code", "123"),
        ("postal_code", "080-0101"),
        ("birth_date", "2999-01-01"),
        ("birth_date", "1990-02-30"),
        ("id", "not-a-uuid"),
        ("sex", "3"),
        ("resident_type", "9"),
        ("state", "gone"),
        ("relationship", "他人"),
        ("family_name_kana", "帯広"),
        ("family_name", "長" * 51),
        ("address", ""),
        ("birth_date", "0001-01-01"),
        ("notified_on", "1844-12-31"),
        ("family_name", "帯\x00広"),
        ("given_name", "一郎\u202e"),
        ("address", "音更町\n1"),
        ("phone", "0155\x7f"),
    ]:
        broken = [dict(r) for r in clean]
        broken[3][column] = bad
        rows = [[r[c] for c in HEADER] for r in broken]
        assert import_checks._check_clean(rows, positions, 1, today) is None, (column, bad)
        assert import_checks._check_one_by_one(rows, positions, 1, today)[0].problems, (column, bad)
    removed = [dict(r) for r in clean]
    removed[2]["state"], removed[2]["removed_on"] = "deceased", ""
    rows = [[r[c] for c in HEADER] for r in removed]
    assert import_checks._check_clean(rows, positions, 1, today) is None


RECORD_AT = {name: i for i, name in enumerate(transfer.RECORD_FIELDS)}


def _check_file_errors(chunks: list[transfer.Checked], slow: bool) -> list[RowError]:
    errors = transfer.FileErrors()
    if slow:  # the row-by-row way only
        errors._add_distinct = lambda checked: False  # type: ignore[method-assign]
    return [e for c in chunks for e in errors.add(c)]


@pytest.mark.parametrize("seed", range(20))
def test_duplicates_within_the_file_found_as_row_by_row(seed: int) -> None:
    """FileErrors' set-based pass for chunks without a repeated value reports what the
    row-by-row pass reports, whatever repeats where (removed records included)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    pool = [f"{n:08d}" for n in range(12)]
    chunks = []
    for first in range(1, 60, 6):
        removed = [rng.random() < 0.2 for _ in range(6)]
        uniques = tuple(
            [
                rng.choice([*pool, ""]) if rng.random() < 0.3 else f"{column}{first + k}"
                for k in range(6)
            ]
            for column in range(4)
        )
        chunks.append(transfer.Checked(first, {}, removed, uniques, {}))
    assert _check_file_errors(chunks, slow=False) == _check_file_errors(chunks, slow=True)
