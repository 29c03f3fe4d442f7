"""Loading a file in chunks (``import_pool``, through ``transfer.import_csv``): chunks of
whole rows however the file is written, worker processes, a household whose head
comes in a later chunk, a problem found late, clashes with the town; all-or-nothing."""

from __future__ import annotations

import csv
import io
import multiprocessing
import random
import sys

import pytest

from shared_gov.bulkimport.chunks import read_rows
from shared_gov.checkdigits import make_serial
from shared_gov.db import Database
from shared_gov.domains.residents import import_pool
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.transfer import ImportRejected, export_csv, import_csv
from shared_gov.tenancy.names import tenant_names
from tests.domains.residents.import_files import csv_text, file_row, onboard_town, town_counts

OTOFUKE, MEMURO, SHIHORO = "016365", "016390", "016446"


# --- cutting the file -----------------------------------------------------------------


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


def test_workers_are_started_without_the_entry_script() -> None:
    """While the pool starts, __main__ is a bare module: spawned workers do not run
    the program's entry script again (the CLI: over a second of imports each)."""
    saved = sys.modules["__main__"]
    with import_pool._bare_main():
        assert not hasattr(sys.modules["__main__"], "__file__")
        assert getattr(sys.modules["__main__"], "__spec__", None) is None
    assert sys.modules["__main__"] is saved


# --- loading in chunks ----------------------------------------------------------------


async def test_loading_in_chunks_with_workers_matches_loading_in_one_go(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file loaded by worker processes in chunks of 7 rows, and here in one
    chunk: the two towns export the same register, households have the head the
    file names even when the head comes chunks after the first member, and new
    宛名番号 continue after the file's."""
    await onboard_town(db, OTOFUKE)
    await onboard_town(db, MEMURO)
    rows = [file_row(n) for n in range(40)]
    # Household 4000+13: its head is the last of its members, in the next chunk.
    rows[39] = file_row(39, household_no=make_serial(4000 + 5), relationship="世帯主")
    rows[15] = file_row(15, relationship="子")
    text = csv_text(rows)
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
    assert (await town_counts(db, OTOFUKE))[:3] == (40, 40, 13)


async def test_every_way_of_writing_a_file_loads_the_same(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rows as plain lines, with \r\n and blank lines, and with quoted cells
    (commas, quotes): each way of cutting the file into chunks, loaded by workers,
    gives the same register."""
    towns = ("473618", "473626", "473758")
    for code in towns:
        await onboard_town(db, code)
    rows = [file_row(500 + n) for n in range(30)]
    plain = csv_text(rows)
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
            await import_csv(uow, io.StringIO(csv_text(multiline), newline=""), workers=2)
    assert [(e.row, e.column) for e in info.value.errors] == [(4, "domicile"), (18, "domicile")]
    exports = []
    for code, text in zip(towns, (plain, crlf, csv_text(quoted)), strict=True):
        async with db.tenant(tenant_names(code, db.settings.role_prefix)) as uow:
            assert await import_csv(uow, io.StringIO(text, newline=""), workers=2) == 30
            out = io.StringIO()
            await export_csv(uow, out)
            exports.append(out.getvalue())
    assert exports[0] == exports[1]
    assert exports[2] != exports[0]
    assert exports[2] == csv_text(quoted).replace("\r\n", "\n")
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("workers", [0, 2])
async def test_a_problem_in_a_late_chunk_writes_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """A bad row in the last chunk, after earlier chunks were loaded: the whole report,
    nothing kept, even if the caller swallows the error and commits."""
    await onboard_town(db, SHIHORO)
    monkeypatch.setattr(import_pool, "CHUNK_ROWS", 5)
    before = await town_counts(db, SHIHORO)
    rows = [file_row(100 + n) for n in range(23)]
    rows[21]["birth_date"] = "2999-01-01"
    rows[22]["atena_no"] = rows[3]["atena_no"]
    async with db.tenant(tenant_names(SHIHORO, db.settings.role_prefix)) as uow:
        with pytest.raises(ImportRejected) as refused:
            await import_csv(uow, io.StringIO(csv_text(rows)), workers=workers)
        # This unit of work commits: nothing of the file may be in it.
    assert [(e.row, e.column, e.reason) for e in refused.value.errors] == [
        (22, "birth_date", "in the future"),
        (23, "atena_no", "duplicate in this file"),
    ]
    assert await town_counts(db, SHIHORO) == before


@pytest.mark.parametrize("workers", [0, 2])
async def test_clashes_with_the_town_are_reported_as_before(
    db: Database, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Rows clashing with the town's records (numbers, 宛名番号, households), anywhere in
    the file: reported in the order they always were, nothing written."""
    await onboard_town(db, SHIHORO)
    monkeypatch.setattr(import_pool, "CHUNK_ROWS", 4)
    names = tenant_names(SHIHORO, db.settings.role_prefix)
    base = 200 + 100 * workers  # each run its own people
    first = [file_row(base + n) for n in range(3)]
    async with db.tenant(names) as uow:
        await import_csv(uow, io.StringIO(csv_text(first)), workers=0)
    before = await town_counts(db, SHIHORO)
    rows = [file_row(base + 50 + n) for n in range(12)]
    rows[9]["individual_number"] = first[1]["individual_number"]
    rows[10]["atena_no"] = first[2]["atena_no"]
    rows[11]["household_no"] = first[0]["household_no"]
    rows[11]["relationship"] = "子"
    async with db.tenant(names) as uow:
        with pytest.raises(ImportRejected) as refused:
            await import_csv(uow, io.StringIO(csv_text(rows)), workers=workers)
    assert [(e.row, e.column) for e in refused.value.errors] == [
        (10, "individual_number"),
        (11, "atena_no"),
        (12, "household_no"),
    ]
    assert await town_counts(db, SHIHORO) == before
