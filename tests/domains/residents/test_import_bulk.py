"""Bulk import, fast path: the parser against the one it replaced, sealing against the
single-record writers, and loading in chunks (worker processes, a problem found late,
a household whose head comes in a later chunk), all-or-nothing throughout."""

from __future__ import annotations

import csv
import io
import multiprocessing
import random
import struct
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, TextIO

import pytest

from shared_gov.bulkimport.chunks import read_rows
from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
    is_valid_serial,
    make_individual_number,
    make_serial,
)
from shared_gov.clock import today_jst
from shared_gov.crypto.blind import BlindIndex
from shared_gov.crypto.envelope import NULL_FIELD, ColumnSealer, DecryptError, FieldCipher
from shared_gov.crypto.keyring import (
    BLIND_INDEXES,
    DEK_NAMES,
    TownKeys,
    WriteKeys,
    index_column,
)
from shared_gov.db import Database
from shared_gov.domains.residents import (
    events,
    import_checks,
    import_layout,
    import_pool,
    import_sealing,
    transfer,
)
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.import_layout import _SEX, _STATES, _TYPE
from shared_gov.domains.residents.models import RELATIONSHIPS, Resident
from shared_gov.domains.residents.rules import normalize_kana
from shared_gov.domains.residents.transfer import (  # the reference parser's helpers
    COLUMNS,
    HEADER,
    ImportRejected,
    RowError,
    export_csv,
    import_csv,
    to_csv_text,
)
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import tenant_names

OTOFUKE, MEMURO, SHIHORO = "016365", "016390", "016446"


# --- the parser it replaced, kept as the reference --------------------------------


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


# --- the parser: same records, same report ---------------------------------------------


def _row(n: int, **overrides: str) -> dict[str, str]:
    values = {
        "id": str(uuid.UUID(int=n + 1)),
        "atena_no": make_serial(3000 + n),
        "household_no": make_serial(4000 + n // 3),
        "relationship": "世帯主" if n % 3 == 0 else "子",
        "family_name": "帯広",
        "given_name": f"一郎{n}",
        "family_name_kana": "オビヒロ",
        "given_name_kana": "イチロウ",
        "birth_date": (date(1950, 1, 1) + timedelta(days=n * 11)).isoformat(),
        "sex": "1" if n % 2 else "2",
        "address": f"北海道河東郡音更町{n}",
        "postal_code": "0800101",
        "individual_number": make_individual_number(f"{57_000_000_000 + n:011d}"),
        "juminhyo_code": f"{68_000_000_000 + n:011d}",
        "phone": f"0155-31-{1000 + n}" if n % 3 == 0 else "",
        "former_surname": "",
        "domicile": "",
        "previous_address": "",
        "forward_address": "",
        "resident_type": "1",
        "state": "active",
        "resident_since": "1980-04-01",
        "address_since": "1990-05-01",
        "notified_on": "1990-05-02",
        "removed_on": "",
    }
    values.update(overrides)
    return values


def _mutate(rng: random.Random, values: dict[str, str], earlier: list[dict[str, str]]) -> None:
    """One of the ways a row of a real file goes wrong (or is merely unusual)."""
    column = rng.choice(HEADER)
    kind = rng.randrange(14)
    if kind == 0:
        values[column] = ""
    elif kind == 1:
        values[column] = f"  {values[column]}\u3000 " if values[column] else " "
    elif kind == 2 and earlier:
        values[column] = rng.choice(earlier)[column]  # a duplicate, maybe
    elif kind == 3:
        values[rng.choice(import_layout._DATE_COLUMNS)] = rng.choice(
            ["2999-01-01", "1990-02-30", "19900501", "x", (today_jst()).isoformat()]
        )
    elif kind == 4:
        values[column] = values[column][:-1] + "9" if values[column] else "9"
    elif kind == 5:
        values["family_name_kana"] = rng.choice(
            ["おびひろ", "ｵﾋﾞﾋﾛ", "オビ ヒロ", "帯広", "ヴァ・ー"]
        )
    elif kind == 6:
        values["state"] = rng.choice(["moved_out", "deceased", "removed", "gone"])
    elif kind == 7:
        values["removed_on"] = "2020-03-31"
    elif kind == 8:
        values[column] = "長" * rng.choice([50, 51, 200, 201])
    elif kind == 9:
        values["id"] = rng.choice(["", "not-a-uuid", str(uuid.uuid4()).upper()])
    elif kind == 10:
        values["relationship"] = rng.choice([*sorted(RELATIONSHIPS), "他人"])
    elif kind == 11:
        values["sex"] = rng.choice(["1", "2", "3", "男"])
    elif kind == 12:
        values["atena_no"] = rng.choice(["1234567", make_serial(12)[1:], "０００００１９"])
    else:
        values["individual_number"] = rng.choice(["", "12345678901", "１２３"])


def _file(rng: random.Random, rows: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=rng.choice(["\n", "\r\n"]))
    header = list(HEADER)
    if rng.random() < 0.2:
        header.append("extra")  # a column we do not know
    if rng.random() < 0.1:
        header.remove(rng.choice([c for c, _, required in COLUMNS if required]))
    rng.shuffle(header)
    writer.writerow(header)
    earlier: list[dict[str, str]] = []
    for n in range(rows):
        values = _row(n)
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            _mutate(rng, values, earlier)
        earlier.append(values)
        cells = [values.get(c, "x") for c in header]
        if rng.random() < 0.05:
            cells = cells[: rng.randrange(len(cells))]  # a short row
        if rng.random() < 0.05:
            cells.append("surplus")
        writer.writerow(cells)
        if rng.random() < 0.03:
            out.write("\n")  # a blank line is not a row
    return out.getvalue()


def _comparable(residents: list[Resident]) -> list[Resident]:
    # Ids generated for rows without one are random on both sides.
    return [replace(r, id="generated") if r.id.startswith("gen") else r for r in residents]


@pytest.mark.parametrize("seed", range(40))
def test_parser_matches_the_one_it_replaced(seed: int) -> None:
    """Random files with every kind of problem: the same errors in the same order, and
    the same records, as the csv.DictReader parser this one replaced."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test files, not secrets
    text = _file(rng, rng.choice([1, 5, 30, 120]))
    ours, our_errors = transfer.parse(io.StringIO(text, newline=""))
    theirs, their_errors = _reference_parse(io.StringIO(text, newline=""))
    assert our_errors == their_errors
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        if a.id != b.id:  # both generated (the file gave none)
            a = replace(a, id=b.id)
        assert a == b


# --- sealing: what the single-record writers would store -----------------------------


def _keys(rotating: bool) -> TownKeys:
    rng = random.Random(7)  # noqa: S311 - fixed test keys, never real ones
    deks = {name: (3, rng.randbytes(32)) for name in DEK_NAMES}
    versions = ((1, 12), (2, 16)) if rotating else ((1, 16),)
    indexes = {
        name: tuple((v, bits, rng.randbytes(32)) for v, bits in versions) for name in BLIND_INDEXES
    }
    ciphers = {name: FieldCipher({3: key}, 3) for name, (_, key) in deks.items()}
    live = {
        name: tuple((v, BlindIndex(key, bits)) for v, bits, key in pairs)
        for name, pairs in indexes.items()
    }
    return TownKeys(
        "016365",
        ciphers,
        {name: pairs[-1][1] for name, pairs in live.items()},
        dict.fromkeys(deks, 3),
        live,
        WriteKeys("016365", deks, indexes),
    )


def test_write_keys_never_show_key_bytes() -> None:
    keys = _keys(True).write_keys
    assert keys is not None
    text = repr(keys) + str(keys)
    for _, key in keys.deks.values():
        assert key.hex() not in text
        assert repr(key)[2:20] not in text
    for versions in keys.indexes.values():
        for _, _, key in versions:
            assert key.hex() not in text
    # What the workers get: the same keys, each index version placed in its column.
    sealing = transfer.sealing_keys(keys)
    shown = repr(sealing) + str(sealing) + repr(import_sealing.Framer(sealing))
    for _, key in sealing.deks.values():
        assert key.hex() not in shown
    for name, placed in sealing.indexes.items():
        assert [c for c, _, _ in placed] == [
            index_column(name, version) for version, _, _ in keys.indexes[name]
        ]
        for _, _, key in placed:
            assert key.hex() not in shown


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
    text = _file(rng, rng.choice([1, 5, 30, 120]))
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
    clean = [_row(n) for n in range(12)]
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


def _read_rows(text: str) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    return next(reader, None) or [], [r for r in reader if r]


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 100])
def test_files_are_cut_into_chunks_of_whole_rows(
    chunk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However the file is written (quotes, line breaks in cells, \r\n or \r, blank
    lines, no final line break), the chunks hold the rows csv.reader reads, in order,
    CHUNK_ROWS to a chunk."""
    monkeypatch.setattr(import_pool, "CHUNK_ROWS", chunk_rows)
    rng = random.Random(chunk_rows)  # noqa: S311 - reproducible test files, not secrets
    for _ in range(400):
        lines = []
        for _ in range(rng.randrange(0, 12)):
            cells = [rng.choice(["a", "", "  ", "ｶﾅ", "x y"]) for _ in range(rng.randrange(1, 4))]
            if rng.random() < 0.05:
                cells.append('"quoted\nline, with comma"')
            lines.append("" if rng.random() < 0.1 else ",".join(cells))
        end = rng.choice(["\n", "\n", "\r\n", "\r"])
        text = end.join(lines) + (end if rng.random() < 0.5 else "")
        header, chunks, rows = import_pool._read(text)
        assert (header, [r for c in chunks for r in read_rows(c)]) == _read_rows(text)
        sizes = [len(read_rows(c)) for c in chunks]
        assert all(size == chunk_rows for size in sizes[:-1])
        assert all(0 < size <= chunk_rows for size in sizes[-1:])
        if rows is not None:
            assert rows == _read_rows(text)[1]


def _decode_copy(data: bytes) -> list[list[bytes | None]]:
    """Rows of a binary COPY payload, each field as bytes (None for NULL)."""
    assert data[:11] == b"PGCOPY\n\xff\r\n\x00"
    at = 19
    rows: list[list[bytes | None]] = []
    while True:
        (count,) = struct.unpack_from(">h", data, at)
        at += 2
        if count == -1:
            assert at == len(data)
            return rows
        row: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, at)
            at += 4
            if length < 0:
                row.append(None)
            else:
                row.append(data[at : at + length])
                at += length
        rows.append(row)


def _field(column: str, raw: bytes | None) -> Any:
    """A binary COPY field as the value the single-record writers pass to asyncpg."""
    if raw is None:
        return None
    if column in ("id", "resident_id"):
        return str(uuid.UUID(bytes=raw))
    if column in ("version", "history_no"):
        return struct.unpack(">i", raw)[0]
    if column.startswith("bidx_"):
        return struct.unpack(">q", raw)[0]
    if column == "support_measure":
        return raw == b"\x01"
    if column == "processed_on":
        return date(2000, 1, 1) + timedelta(days=struct.unpack(">i", raw)[0])
    if column in ("atena_no", "state", "household_no"):
        return raw.decode()
    return raw  # an envelope


@pytest.mark.parametrize("rotating", [False, True])
def test_copy_payloads_are_what_single_writes_store(rotating: bool) -> None:
    """CopyWriter (column by column, framed as binary COPY) and _row/_history_row (one
    record) agree: same plain and blind-index values, envelopes that decrypt to the
    same text in the same place, the same history entry and snapshot; one event each."""
    keys = _keys(rotating)
    assert keys.write_keys is not None
    text = to_csv_text(
        [list(_row(n, phone="０１５５-３１-１０００" if n == 4 else "").values()) for n in range(9)]
    )
    residents, errors = transfer.parse(io.StringIO(text))
    assert errors == []
    residents[2] = replace(residents[2], individual_number=None, juminhyo_code=None)
    processed = date(2026, 1, 5)
    sealed = transfer.CopyWriter(keys.write_keys).write(
        transfer.record_columns(residents), processed, str(uuid.UUID(int=7))
    )
    rows = _decode_copy(sealed.residents)
    history = _decode_copy(sealed.history)
    assert len(rows) == len(history) == len(residents)
    for r, row, entry in zip(residents, rows, history, strict=True):
        single = repo._row(keys, r)
        stored = {c: _field(c, v) for c, v in zip(transfer.RESIDENT_COLUMNS, row, strict=True)}
        assert set(stored) == set(repo._WRITTEN)
        for column in repo._WRITTEN:
            mine, theirs = stored[column], single[column]
            if column in repo.ENCRYPTED:
                assert (mine is None) == (theirs is None), column
                if mine is not None:
                    assert mine[:5] == theirs[:5]  # format and key version
                    assert keys.decrypt("residents", column, r.id, mine) == keys.decrypt(
                        "residents", column, r.id, theirs
                    )
            else:
                assert mine == theirs, column
        reference = repo._history_row(keys, r, "import", r.address_since, r.notified_on, processed)
        their_entry = dict(zip(repo._HISTORY_COLUMNS, reference, strict=True))
        mine_entry = {c: _field(c, v) for c, v in zip(transfer.HISTORY_COLUMNS, entry, strict=True)}
        assert set(mine_entry) == set(their_entry)
        place = f"{r.id}/{r.history_no}"
        for column, value in their_entry.items():
            if isinstance(value, bytes):
                assert keys.decrypt("resident_history", column, place, mine_entry[column]) == (
                    keys.decrypt("resident_history", column, place, value)
                )
            else:
                assert mine_entry[column] == value, column
        snapshot = keys.decrypt("resident_history", "snapshot", place, mine_entry["snapshot"])
        assert snapshot == repo._snapshot(r).decode()  # the same document, byte for byte
    assert sealed.events.resident_ids == [r.id for r in residents]
    assert sealed.events.each == {"atena_no": [r.atena_no for r in residents]}
    assert sealed.events.shared == {"history_no": "1", "import_id": str(uuid.UUID(int=7))}
    if rotating:  # both versions of every index are written during a rotation
        by_column = dict(zip(transfer.RESIDENT_COLUMNS, rows[0], strict=True))
        assert by_column["bidx_kana_birth"] is not None
        assert by_column["bidx_kana_birth_alt"] is not None


def test_column_sealer_writes_field_cipher_envelopes() -> None:
    """ColumnSealer's fields: a 4-byte length, then an envelope FieldCipher decrypts at
    the same place (NULL for None); a fresh nonce each; the key never in a repr."""
    key = random.Random(3).randbytes(32)  # noqa: S311 - a fixed test key, never a real one
    sealer = ColumnSealer(key, 5, ("016365", "residents", "address"))
    ids = [str(uuid.UUID(int=n)) for n in range(4)]
    values = ["帯広".encode(), None, b"", b"x" * 300]
    fields = sealer.copy_fields(ColumnSealer.places(ids), values)
    cipher = FieldCipher({5: key}, 5)
    for rid, value, field in zip(ids, values, fields, strict=True):
        (length,) = struct.unpack_from(">i", field)
        if value is None:
            assert field == NULL_FIELD
            continue
        assert length == len(field) - 4
        blob = field[4:]
        assert FieldCipher.key_version(blob) == 5
        assert cipher.decrypt(blob, ("016365", "residents", "address", rid)) == value
        with pytest.raises(DecryptError):
            cipher.decrypt(blob, ("016365", "residents", "address", ids[0] + "x"))
    assert len({f[9:21] for f in fields if f != NULL_FIELD}) == 3  # nonces
    assert key.hex() not in repr(sealer) + repr(transfer.CopyWriter(_keys(False).write_keys))  # type: ignore[arg-type]


def test_events_take_checked_atena_numbers_as_they_are() -> None:
    """batch() checks ``each`` values and takes ``checked_each`` ones (the import's
    宛名番号, checked by the events' own rule when the file is read) as they are."""
    rids = [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]
    atena = [make_serial(1), make_serial(2)]
    check = events.id_check("atena_no")
    assert [check(a) for a in atena] == atena
    assert check("1234567") is None
    assert check(make_serial(1)[:-1] + "0") is None
    assert all(transfer._EVENT_ATENA(a) for a in atena)
    trusted = events.batch(
        events.REGISTERED, rids, checked_each={"atena_no": atena}, import_id=rids[0]
    )
    checked = events.batch(events.REGISTERED, rids, each={"atena_no": atena}, import_id=rids[0])
    assert trusted == checked
    with pytest.raises(ValueError, match="shape"):
        events.batch(events.REGISTERED, rids, each={"atena_no": ["00000018", atena[1]]})
    with pytest.raises(ValueError, match="overlap"):
        events.batch(
            events.REGISTERED, rids, each={"atena_no": atena}, checked_each={"atena_no": atena}
        )
    with pytest.raises(ValueError, match="one value per resident"):
        events.batch(events.REGISTERED, rids, checked_each={"atena_no": atena[:1]})
    with pytest.raises(ValueError, match=r"is a field"):
        events.batch(events.REGISTERED, rids, checked_each={"phone": ["x", "y"]})


async def test_event_ids_never_misalign() -> None:
    """Id lists travel as comma-separated texts: a value with a comma (which no
    checked id has) is refused before anything is sent."""
    rids = [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]
    bad = events.batch(events.REGISTERED, rids, checked_each={"atena_no": ["1,2", "3"]})
    with pytest.raises(ValueError, match="comma"):
        await events.emit_batch(None, bad)  # type: ignore[arg-type]  # refused before any SQL


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
    """The column-wise checks of a clean chunk accept a column exactly when checkdigits
    accepts every value of it (8-digit serials, 個人番号, 住民票コード, 郵便番号); a
    household number of another length is left to checkdigits, value by value."""
    rng = random.Random(12)  # noqa: S311 - test data
    serials = [make_serial(rng.randrange(1, 9_999_999)) for _ in range(2000)]
    numbers = [make_individual_number(f"{rng.randrange(10**11):011d}") for _ in range(2000)]
    codes = [n[:11] for n in numbers]
    postal = [n[:7] for n in numbers]
    checks = import_layout._COLUMN_CHECKS
    for column_check, valid, single in (
        (import_layout._SERIAL_8, serials, lambda v: len(v) == 8 and is_valid_serial(v)),
        (checks["household_no"], serials, is_valid_serial),
        (checks["individual_number"], numbers, is_valid_individual_number),
        (checks["juminhyo_code"], codes, is_valid_juminhyo_code),
        (checks["postal_code"], postal, is_valid_postal_code),
    ):
        assert all(map(single, valid))
        assert column_check.all_valid(valid)
        assert column_check.all_valid([])
        variants = [
            v[:i] + d + v[i + 1 :] for v in valid[:60] for i in range(len(v)) for d in "0123456789"
        ]
        first = valid[0]
        variants += [first[:-1], first + "0", "０" + first[1:], first[:3] + " " + first[4:]]
        for variant in variants:
            fast = column_check.all_valid([*valid[:5], variant])
            if len(variant) == len(first):
                assert fast == single(variant), variant
            else:  # another length: never accepted here (checkdigits decides, value by value)
                assert not fast, variant


def test_the_worker_module_imports_no_application() -> None:
    """A spawned worker imports import_worker (and what it needs) only: not SQLAlchemy,
    asyncpg, the database layer, the keyring or the events (half a CPU-second each)."""
    code = (
        "import sys; import shared_gov.domains.residents.import_worker; "
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(out.stdout.split())
    for heavy in (
        "sqlalchemy",
        "asyncpg",
        "shared_gov.db",
        "shared_gov.crypto.keyring",
        "shared_gov.domains.residents.events",
        "shared_gov.domains.residents.repository",
        "shared_gov.domains.residents.transfer",
        "shared_gov.policy",
    ):
        assert heavy not in loaded, heavy


def test_workers_are_started_without_the_entry_script() -> None:
    """While the pool starts, __main__ is a bare module: spawned workers do not run
    the program's entry script again (the CLI: over a second of imports each)."""
    saved = sys.modules["__main__"]
    with import_pool._bare_main():
        assert not hasattr(sys.modules["__main__"], "__file__")
        assert getattr(sys.modules["__main__"], "__spec__", None) is None
    assert sys.modules["__main__"] is saved


# --- loading in chunks ----------------------------------------------------------------


async def _town(db: Database, code: str) -> None:
    await tenancy.onboard(
        db,
        parse_manifest(
            {
                "code": code,
                "name": f"町{code}",
                "name_kana": "ちょう",
                "prefecture": "北海道",
                "population": 40_000,
                "departments": [{"code": "shimin", "name": "町民課"}],
            }
        ),
    )


async def _state(db: Database, code: str) -> tuple[int, int, int, int]:
    schema = tenant_names(code, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        row = await conn.fetchrow(
            f'SELECT (SELECT count(*) FROM "{schema}".residents) AS r, '
            f'(SELECT count(*) FROM "{schema}".resident_history) AS h, '
            f'(SELECT count(*) FROM "{schema}".households) AS hh, '
            f'(SELECT count(*) FROM "{schema}".events) AS e'
        )
    assert row is not None
    return row["r"], row["h"], row["hh"], row["e"]


def _csv(rows: list[dict[str, str]]) -> str:
    return to_csv_text([[r[c] for c in HEADER] for r in rows])


async def test_loading_in_chunks_with_workers_matches_loading_in_one_go(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file loaded by worker processes in chunks of 7 rows, and here in one
    chunk: the two towns export the same register, households have the head the
    file names even when the head comes chunks after the first member, and new
    宛名番号 continue after the file's."""
    await _town(db, OTOFUKE)
    await _town(db, MEMURO)
    rows = [_row(n) for n in range(40)]
    # Household 4000+13: its head is the last of its members, in the next chunk.
    rows[39] = _row(39, household_no=make_serial(4000 + 5), relationship="世帯主")
    rows[15] = _row(15, relationship="子")
    text = _csv(rows)
    monkeypatch.setattr(import_pool, "CHUNK_ROWS", 7)
    seen: list[int] = []
    async with db.tenant(tenant_names(OTOFUKE, db.settings.role_prefix)) as uow:
        assert await import_csv(uow, io.StringIO(text), seen.append, workers=2) == 40
    assert seen == [7, 7, 7, 7, 7, 5]
    assert multiprocessing.active_children() == []  # the workers were waited for
    monkeypatch.setattr(import_pool, "CHUNK_ROWS", 2000)
    async with db.tenant(tenant_names(MEMURO, db.settings.role_prefix)) as uow:
        assert await import_csv(uow, io.StringIO(text), workers=0) == 40
    exports = []
    for code in (OTOFUKE, MEMURO):
        out = io.StringIO()
        async with db.tenant(tenant_names(code, db.settings.role_prefix)) as uow:
            await export_csv(uow, out)
            exports.append(out.getvalue())
            heads = {
                h: str(head) if head else None
                for h, head in await uow.fetch("SELECT household_no, head_id FROM households")
            }
            assert await repo.next_atena_no(uow) > max(r["atena_no"] for r in rows)
        assert heads[make_serial(4005)] == rows[39]["id"]
        assert heads[make_serial(4000)] == rows[0]["id"]
    assert exports[0] == exports[1]
    assert (await _state(db, OTOFUKE))[:3] == (40, 40, 13)


async def test_every_way_of_writing_a_file_loads_the_same(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rows as plain lines, with \r\n and blank lines, and with quoted cells
    (commas, quotes): each way of cutting the file into chunks, loaded by workers,
    gives the same register."""
    towns = ("473618", "473626", "473758")
    for code in towns:
        await _town(db, code)
    rows = [_row(500 + n) for n in range(30)]
    plain = _csv(rows)
    lines = plain.split("\n")
    crlf = "\r\n".join(line if n % 7 else line + "\r\n" for n, line in enumerate(lines))
    quoted = [dict(r) for r in rows]
    multiline = [dict(r) for r in rows]
    for n in (3, 17):
        quoted[n]["address"] = f'北海道河東郡音更町{n}, "東"'
        quoted[n]["domicile"] = "北海道,河東郡"
        multiline[n]["domicile"] = "北海道,\n河東郡"
    monkeypatch.setattr(import_pool, "CHUNK_ROWS", 4)
    # A line break inside a quoted cell stays in its row when the file is cut
    # into chunks: exactly those rows are refused for it (no text holds one).
    with pytest.raises(ImportRejected) as info:
        async with db.tenant(tenant_names(towns[2], db.settings.role_prefix)) as uow:
            await import_csv(uow, io.StringIO(_csv(multiline), newline=""), workers=2)
    assert [(e.row, e.column) for e in info.value.errors] == [(4, "domicile"), (18, "domicile")]
    exports = []
    for code, text in zip(towns, (plain, crlf, _csv(quoted)), strict=True):
        async with db.tenant(tenant_names(code, db.settings.role_prefix)) as uow:
            assert await import_csv(uow, io.StringIO(text, newline=""), workers=2) == 30
            out = io.StringIO()
            await export_csv(uow, out)
            exports.append(out.getvalue())
    assert exports[0] == exports[1]
    assert exports[2] != exports[0]
    assert exports[2] == _csv(quoted).replace("\r\n", "\n")
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("workers", [0, 2])
async def test_a_problem_in_a_late_chunk_writes_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """A bad row in the last chunk, after earlier chunks were loaded: the whole report,
    nothing kept, even if the caller swallows the error and commits."""
    await _town(db, SHIHORO)
    monkeypatch.setattr(import_pool, "CHUNK_ROWS", 5)
    before = await _state(db, SHIHORO)
    rows = [_row(100 + n) for n in range(23)]
    rows[21]["birth_date"] = "2999-01-01"
    rows[22]["atena_no"] = rows[3]["atena_no"]
    async with db.tenant(tenant_names(SHIHORO, db.settings.role_prefix)) as uow:
        with pytest.raises(ImportRejected) as refused:
            await import_csv(uow, io.StringIO(_csv(rows)), workers=workers)
        # This unit of work commits: nothing of the file may be in it.
    assert [(e.row, e.column, e.reason) for e in refused.value.errors] == [
        (22, "birth_date", "in the future"),
        (23, "atena_no", "duplicate in this file"),
    ]
    assert await _state(db, SHIHORO) == before


@pytest.mark.parametrize("workers", [0, 2])
async def test_clashes_with_the_town_are_reported_as_before(
    db: Database, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Rows clashing with the town's records (numbers, 宛名番号, households), anywhere in
    the file: reported in the order they always were, nothing written."""
    await _town(db, SHIHORO)
    monkeypatch.setattr(import_pool, "CHUNK_ROWS", 4)
    names = tenant_names(SHIHORO, db.settings.role_prefix)
    base = 200 + 100 * workers  # each run its own people
    first = [_row(base + n) for n in range(3)]
    async with db.tenant(names) as uow:
        await import_csv(uow, io.StringIO(_csv(first)), workers=0)
    before = await _state(db, SHIHORO)
    rows = [_row(base + 50 + n) for n in range(12)]
    rows[9]["individual_number"] = first[1]["individual_number"]
    rows[10]["atena_no"] = first[2]["atena_no"]
    rows[11]["household_no"] = first[0]["household_no"]
    rows[11]["relationship"] = "子"
    async with db.tenant(names) as uow:
        with pytest.raises(ImportRejected) as refused:
            await import_csv(uow, io.StringIO(_csv(rows)), workers=workers)
    assert [(e.row, e.column) for e in refused.value.errors] == [
        (10, "individual_number"),
        (11, "atena_no"),
        (12, "household_no"),
    ]
    assert await _state(db, SHIHORO) == before
