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
at the first problem. A town with no records yet is loaded with its tables'
secondary indexes and foreign keys set aside, rebuilt and checked at the
end (:mod:`shared_gov.db.bulk`). One ``resident.registered`` event per record
(:mod:`.events`). What the worker processes run — reading, checking,
sealing and framing a chunk — lives in :mod:`.import_worker` (with
:mod:`.import_layout`, :mod:`.import_checks`, :mod:`.import_sealing`), which
imports none of the application; :mod:`.import_pool` cuts the file into
chunks and gets them checked and sealed, here or by the workers. This
module is the public entry (it compares the file with the town and loads
it, and exports) and re-exports the layout and the checks. Export writes
the same layout, decrypted, so importing an export reproduces the same
records (same ids, 宛名番号 and 世帯番号).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TextIO

from shared_gov.audit.recorder import AuditEvent, operator_actor, record
from shared_gov.bulkimport.chunks import no_cyclic_gc, read_rows
from shared_gov.clock import today_jst
from shared_gov.crypto.keyring import WriteKeys, keys_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import bulk, events
from shared_gov.domains.residents import import_sealing as sealing
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.import_checks import (
    FileErrors,
    check_columns,
    check_rows,
    record_columns,
)
from shared_gov.domains.residents.import_layout import (
    _AT,
    _SEX,
    _TYPE,
    COLUMNS,
    HEADER,
    RECORD_FIELDS,
    Checked,
    Columns,
    RowError,
    _missing,
    _positions,
)
from shared_gov.domains.residents.import_pool import (
    CopyWriter,
    Done,
    Sealed,
    _Chunks,
    _read,
    _start_pool,
    _worker_count,
    sealing_keys,
)
from shared_gov.domains.residents.import_sealing import HISTORY_COLUMNS, RESIDENT_COLUMNS
from shared_gov.domains.residents.indexing import BLIND, RESIDENT_INDEXES
from shared_gov.domains.residents.models import Resident
from shared_gov.domains.residents.spec import POLICY_FIELDS

__all__ = [
    "COLUMNS",
    "HEADER",
    "HISTORY_COLUMNS",
    "RECORD_FIELDS",
    "RESIDENT_COLUMNS",
    "Checked",
    "Columns",
    "CopyWriter",
    "FileErrors",
    "ImportRejected",
    "RowError",
    "Sealed",
    "check_columns",
    "check_rows",
    "export_csv",
    "import_csv",
    "parse",
    "record_columns",
    "report",
    "to_csv_text",
]

# The sealing module writes the residents table's layout out (workers import
# it, so it must not import the repository or the keyring): refuse to run if
# it ever differs.
if (sealing.PLAIN, sealing.ENCRYPTED, sealing.BLIND, sealing.INDEXES) != (
    repo.PLAIN,
    repo.ENCRYPTED,
    BLIND,
    RESIDENT_INDEXES,
):  # pragma: no cover - a change to the residents table not made here
    raise RuntimeError("import_sealing's column layout must follow the repository's")

ALL_FIELDS = tuple(c for c in HEADER if c in POLICY_FIELDS)
_SEX_CODE = {v: k for k, v in _SEX.items()}
_TYPE_CODE = {v: k for k, v in _TYPE.items()}
_EVENT_ATENA = events.id_check("atena_no")
"""The events' own rule for 宛名番号 (the workers check with
:func:`import_layout.event_atena`, the same rule; tests hold them together)."""


class ImportRejected(Exception):
    """The file has errors; nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} problems; nothing was written")
        self.errors = errors


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


# --- loading -------------------------------------------------------------------------

_SAVEPOINT = "shared_gov_import"
LOADED_TABLES = ("households", "residents", "resident_history")
"""The tables a load fills whose indexes and foreign keys are set aside in an empty
town (the events table has its primary key only)."""


async def import_csv(
    uow: TenantUnitOfWork,
    stream: TextIO,
    on_progress: Callable[[int], None] | None = None,
    *,
    workers: int | None = None,
) -> int:
    """Validate the whole file and load it in the caller's transaction.

    Raises :class:`ImportRejected` on any problem, with nothing written.

    The file is handled in chunks of :data:`.import_pool.CHUNK_ROWS` rows, each checked
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
    keys = keys_of(uow)
    if keys.write_keys is None:  # pragma: no cover - Database provides keys
        raise RuntimeError("this unit of work has no keys")
    with no_cyclic_gc():
        return await _import(uow, stream.read(), keys.write_keys, on_progress, workers)


async def _import(
    uow: TenantUnitOfWork,
    text: str,
    write_keys: WriteKeys,
    on_progress: Callable[[int], None] | None,
    workers: int | None,
) -> int:
    workers = _worker_count(text.count("\n"), workers)
    keys = sealing_keys(write_keys)
    pool = None
    chunks: _Chunks | None = None
    try:
        # Inside the try: a pool that fails half-way through starting (no
        # file descriptors, no memory) is still shut down below.
        pool = _start_pool(keys, workers) if workers else None
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
            keys,
            pool,
            workers,
            str(uuid.uuid4()),
        )
        await uow.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            # Before anything is loaded: only the town's own records can clash.
            empty = await _town_is_empty(uow)
            if empty:
                clashes: list[RowError] = []  # a town joining the platform
            else:
                every = rows if rows is not None else [r for p in parts for r in read_rows(p)]
                clashes = await _clashes(uow, every, positions)
                del every
            del rows, parts
            # A town joining the platform: its tables are loaded as PostgreSQL
            # advises for populating tables (indexes and foreign keys set
            # aside, restored and checked at the end; shared_gov.db.bulk).
            async with (
                uow.load_into_empty(LOADED_TABLES) if empty else contextlib.nullcontext(False)
            ):
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
    await bulk.existing_unique_values(uow, [], [])  # takes the lock; nothing to compare
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
    taken_in, taken_jc = await bulk.existing_unique_values(
        uow,
        [n for n, a in zip(numbers, active, strict=True) if a and n],
        [c for c, a in zip(codes, active, strict=True) if a and c],
    )
    existing = await bulk.existing_atena_numbers(uow, [a for a in atena if a])
    errors: list[RowError] = []
    for number, (a, n, c, at) in enumerate(zip(active, numbers, codes, atena, strict=True), 1):
        if a and n and n in taken_in:
            errors.append(RowError(number, "individual_number", "already registered in this town"))
        if a and c and c in taken_jc:
            errors.append(RowError(number, "juminhyo_code", "already registered in this town"))
        if at in existing:
            errors.append(RowError(number, "atena_no", "already registered in this town"))
    taken = await bulk.existing_households(uow, sorted(set(households) - {""}))
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
    await bulk.copy_households(uow, households)
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
    await bulk.set_household_heads(
        uow, {h: head for h, head in households.items() if inserted.get(h) != head}
    )
    await bulk.advance_sequences(uow)
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
    async for resident in bulk.iter_all(uow):
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
