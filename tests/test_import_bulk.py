"""Bulk import, fast path: the parser against the one it replaced, sealing against the
single-record writers, and loading in chunks (worker processes, a problem found late,
a household whose head comes in a later chunk), all-or-nothing throughout."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import TextIO

import pytest

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
from shared_gov.crypto.envelope import FieldCipher
from shared_gov.crypto.keyring import (
    BLIND_INDEXES,
    DEK_NAMES,
    TownKeys,
    WriteKeys,
)
from shared_gov.db import Database
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents import transfer
from shared_gov.domains.residents.models import RELATIONSHIPS, Resident
from shared_gov.domains.residents.service import normalize_kana
from shared_gov.domains.residents.transfer import (  # the reference parser's helpers
    _SEX,
    _STATES,
    _TYPE,
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
            dates[column] = transfer._date(value) if value else None
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
        values[rng.choice(transfer._DATE_COLUMNS)] = rng.choice(
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


@pytest.mark.parametrize("rotating", [False, True])
def test_sealed_rows_are_what_single_writes_store(rotating: bool) -> None:
    """seal_rows (bulk, column by column) and _row/_history_row (one record) agree:
    same plain values and blind-index values, envelopes that decrypt to the same text
    in the same place, the same history entry."""
    keys = _keys(rotating)
    assert keys.write_keys is not None
    text = to_csv_text(
        [list(_row(n, phone="０１５５-３１-１０００" if n == 4 else "").values()) for n in range(9)]
    )
    residents, errors = transfer.parse(io.StringIO(text))
    assert errors == []
    residents[2] = replace(residents[2], individual_number=None, juminhyo_code=None)
    processed = date(2026, 1, 5)
    rows, history = repo.seal_rows(repo.bulk_sealer(keys.write_keys), residents, processed)
    for r, row, entry in zip(residents, rows, history, strict=True):
        single = repo._row(keys, r)
        sealed = dict(zip(repo._WRITTEN, row, strict=True))
        for column in repo._WRITTEN:
            if column in repo.ENCRYPTED:
                mine, theirs = sealed[column], single[column]
                assert (mine is None) == (theirs is None), column
                if mine is not None:
                    assert mine[:5] == theirs[:5]  # format and key version
                    assert keys.decrypt("residents", column, r.id, mine) == keys.decrypt(
                        "residents", column, r.id, theirs
                    )
            else:
                assert sealed[column] == single[column], column
        reference = repo._history_row(keys, r, "import", r.address_since, r.notified_on, processed)
        mine_entry = dict(zip(repo._BULK_HISTORY_COLUMNS, entry, strict=True))
        their_entry = dict(zip(repo._HISTORY_COLUMNS, reference, strict=True))
        place = f"{r.id}/{r.history_no}"
        for column, value in their_entry.items():
            if isinstance(value, bytes):
                assert keys.decrypt("resident_history", column, place, mine_entry[column]) == (
                    keys.decrypt("resident_history", column, place, value)
                )
            else:
                assert mine_entry[column] == value
        snapshot = keys.decrypt("resident_history", "snapshot", place, mine_entry["snapshot"])
        assert json.loads(snapshot or "") == r.snapshot()
    if rotating:  # both versions of every index are written during a rotation
        by_column = dict(zip(repo._WRITTEN, rows[0], strict=True))
        assert by_column["bidx_kana_birth"] is not None
        assert by_column["bidx_kana_birth_alt"] is not None


def test_write_keys_never_show_key_bytes() -> None:
    keys = _keys(True).write_keys
    assert keys is not None
    text = repr(keys) + str(keys) + repr(repo.bulk_sealer(keys).indexes)
    for _, key in keys.deks.values():
        assert key.hex() not in text
        assert repr(key)[2:20] not in text
    for versions in keys.indexes.values():
        for _, _, key in versions:
            assert key.hex() not in text


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
    monkeypatch.setattr(transfer, "CHUNK_ROWS", 7)
    seen: list[int] = []
    async with db.tenant(tenant_names(OTOFUKE, db.settings.role_prefix)) as uow:
        assert await import_csv(uow, io.StringIO(text), seen.append, workers=2) == 40
    assert seen == [7, 7, 7, 7, 7, 5]
    monkeypatch.setattr(transfer, "CHUNK_ROWS", 2000)
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


@pytest.mark.parametrize("workers", [0, 2])
async def test_a_problem_in_a_late_chunk_writes_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """A bad row in the last chunk, after earlier chunks were loaded: the whole report,
    nothing kept, even if the caller swallows the error and commits."""
    await _town(db, SHIHORO)
    monkeypatch.setattr(transfer, "CHUNK_ROWS", 5)
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
    monkeypatch.setattr(transfer, "CHUNK_ROWS", 4)
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
