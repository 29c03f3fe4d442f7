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
large files, and each chunk is loaded with COPY as soon as it is ready while
the file is still clean, so PostgreSQL works while the next chunks are
sealed; all of it in the caller's transaction, under a savepoint that is
rolled back at the first problem. One ``resident.registered`` event per
record (:mod:`.events`). Export writes the same layout, decrypted, so
importing an export reproduces the same records (same ids, 宛名番号 and
世帯番号).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import gc
import io
import multiprocessing
import os
import re
import unicodedata
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, TextIO

from shared_gov.audit.recorder import AuditEvent, operator_actor, record
from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
    is_valid_serial,
)
from shared_gov.clock import today_jst
from shared_gov.crypto.keyring import BulkSealer, WriteKeys
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
_KATAKANA = re.compile("[\u30a1-\u30fa\u30fb\u30fc]*")
_HIRAGANA = {c: c + 0x60 for c in range(0x3041, 0x3097)}  # ぁ..ゖ -> ァ..ヶ
_REMOVED = _STATES - {"active"}


def _kana(value: str) -> str:
    """service.normalize_kana, without re-normalising text that already is NFKC."""
    if not unicodedata.is_normalized("NFKC", value):
        value = unicodedata.normalize("NFKC", value)
    return value.replace(" ", "").replace("\u3000", "").translate(_HIRAGANA)


class Entry(NamedTuple):
    """What a load needs of a valid row besides its sealed values."""

    id: str
    atena_no: str
    household_no: str
    relationship: str
    state: str
    individual_number: str | None
    juminhyo_code: str | None


@dataclass(slots=True)
class Checked:
    """Rows checked one by one (everything but duplicates within the file)."""

    problems: dict[int, list[RowError]]
    """Row number -> its problems, in the order they are reported."""
    uniques: list[tuple[int, bool, tuple[str, ...]]]
    """Every row: (number, removed, its values of the columns unique in a file)."""
    entries: list[Entry]
    """The valid rows."""


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


def check_rows(
    rows: Iterable[list[str]], positions: list[int], first: int, today: date
) -> tuple[Checked, list[Resident]]:
    """Check CSV rows (blank lines already left out) numbered from ``first``.

    Returns what the main process needs and the records of the valid rows.
    Pure and picklable both ways, so worker processes can check chunks of a
    large file; duplicates within the file are found by :func:`file_errors`
    over all chunks in order.
    """
    checked = Checked({}, [], [])
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
        checked.uniques.append((number, removed, tuple(row[i] for i in unique_at)))
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
        checked.entries.append(
            Entry(
                resident.id,
                atena,
                resident.household_no,
                relationship,
                state,
                resident.individual_number,
                resident.juminhyo_code,
            )
        )
    return checked, residents


class FileErrors:
    """Adds duplicates within the file to the rows' own problems, chunk after chunk."""

    def __init__(self) -> None:
        self._seen: tuple[set[str], ...] = tuple(set() for _ in _UNIQUE)

    def add(self, checked: Checked) -> list[RowError]:
        """The errors of one chunk (chunks in file order); a row's duplicates
        follow its other problems, as they always have in the report."""
        errors: list[RowError] = []
        for number, removed, values in checked.uniques:
            problems = checked.problems.get(number, [])
            for (_, column, numbered), value, earlier in zip(
                _UNIQUE, values, self._seen, strict=True
            ):
                # A removed record (除票) keeps its numbers; only active ones must be unique.
                if not value or (numbered and removed):
                    continue
                if value in earlier:
                    problems = [*problems, RowError(number, column, "duplicate in this file")]
                earlier.add(value)
            errors.extend(problems)
        return errors


def parse(stream: TextIO) -> tuple[list[Resident], list[RowError]]:
    """Read and validate every row; returns the valid records and the errors."""
    reader = csv.reader(stream)
    header = next(reader, None) or []
    missing = _missing(header)
    if missing:
        return [], missing
    # A blank line is not a row (csv.DictReader skipped them too).
    checked, residents = check_rows((r for r in reader if r), _positions(header), 1, today_jst())
    errors = FileErrors().add(checked)
    # Records of the rows without any problem (duplicates are found last).
    wrong = {e.row for e in errors}
    valid = [n for n, _, _ in checked.uniques if n not in checked.problems]
    return [r for n, r in zip(valid, residents, strict=True) if n not in wrong], errors


# --- loading -------------------------------------------------------------------------

CHUNK_ROWS = 2000
"""Rows per task: checked, sealed and loaded together."""
PARALLEL_MIN_ROWS = 4000
"""From this many rows a file is checked and sealed by worker processes."""
_SAVEPOINT = "shared_gov_import"

Done = tuple[Checked, repo.SealedRows | None]
"""A chunk checked and, if it has no problems, sealed."""


def check_and_seal(
    sealer: BulkSealer, rows: list[list[str]], positions: list[int], first: int, today: date
) -> Done:
    """One chunk's whole CPU work: check, then (if every row is valid) seal."""
    checked, residents = check_rows(rows, positions, first, today)
    if checked.problems:
        return checked, None
    return checked, repo.seal_rows(sealer, residents, today)


# Worker process state: the town's sealer, from the pool's initializer.
_SEALER: BulkSealer | None = None


def _start_worker(keys: WriteKeys) -> None:
    global _SEALER  # one per worker process, for the import it serves
    _SEALER = repo.bulk_sealer(keys)


def _ready() -> None:
    """A no-op task: makes the executor start a process now."""


def _in_worker(rows: list[list[str]], positions: list[int], first: int, today: date) -> Done:
    if _SEALER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker has no sealer")
    with _no_cyclic_gc():
        return check_and_seal(_SEALER, rows, positions, first, today)


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
    # PostgreSQL takes a chunk in about half the time a worker needs to seal
    # it (measured), so beyond three workers COPY is the bottleneck.
    return max(1, min(3, os.cpu_count() or 1))


class _Chunks:
    """Each chunk checked and sealed, delivered in file order.

    With a pool, the first chunks are handed out at once (so workers start
    while this process compares the file with the town) and the next ones
    as results come back, a few per worker ahead: enough to keep them busy
    during a COPY, few enough to bound the sealed rows held in memory.
    """

    def __init__(
        self,
        chunks: list[list[list[str]]],
        positions: list[int],
        today: date,
        keys: WriteKeys,
        pool: ProcessPoolExecutor | None,
        workers: int,
    ) -> None:
        self._chunks = chunks
        self._positions = positions
        self._today = today
        self._keys = keys
        self._pool = pool
        self._pending: deque[asyncio.Future[Done]] = deque()
        self._next = 0
        if pool is not None:
            for _ in range(min(3 * workers, len(chunks))):
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
            )
        )

    async def results(self) -> AsyncIterator[Done]:
        if self._pool is None:
            sealer = repo.bulk_sealer(self._keys)
            for number, rows in enumerate(self._chunks):
                yield check_and_seal(
                    sealer, rows, self._positions, 1 + number * CHUNK_ROWS, self._today
                )
            return
        while self._pending:
            result = await self._pending.popleft()
            if self._next < len(self._chunks):
                self._submit()
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
    and then encrypted and indexed (by ``workers`` processes for a large
    file: default one per core, at most three, from 4,000 rows; 0 for none).
    Meanwhile this process compares the whole file with the town (numbers,
    宛名番号, households: one query each, on the cells as written), then
    COPYs each chunk as it comes back, so that PostgreSQL works on one chunk
    while the next ones are sealed. Once a problem is found nothing more is
    loaded, the rest of the file is still checked for the report, and what
    was loaded is rolled back to a savepoint (so not even a caller that
    swallowed the error could commit part of a file). The report is what it
    was when everything was checked before loading: the file's own problems
    if it has any, else its clashes with the town.
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
        reader = csv.reader(io.StringIO(text, newline=""))
        del text
        header = next(reader, None) or []
        missing = _missing(header)
        if missing:
            raise ImportRejected(missing)
        rows = [r for r in reader if r]  # a blank line is not a row
        positions = _positions(header)
        chunks = _Chunks(
            [rows[i : i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)],
            positions,
            today_jst(),
            write_keys,
            pool,
            workers,
        )
        await uow.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            # Before anything is loaded: only the town's own records can clash.
            clashes = await _clashes(uow, rows, positions)
            del rows
            loaded = await _load(uow, chunks.results(), clashes, on_progress)
        except BaseException:
            with contextlib.suppress(Exception):  # the connection may be gone
                await uow.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            raise
        await uow.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    finally:
        if chunks is not None:
            chunks.cancel()
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


async def _load(
    uow: TenantUnitOfWork,
    done: AsyncIterator[Done],
    clashes: list[RowError],
    on_progress: Callable[[int], None] | None,
) -> int:
    """Load chunk after chunk while neither the file nor the town shows a problem."""
    file_errors = FileErrors()
    errors: list[RowError] = []
    households: dict[str, str | None] = {}
    """Every household of the file so far: number -> its head's id."""
    inserted: dict[str, str | None] = {}
    # The shared import_id tells consumers this is a data migration, not a
    # wave of registrations to act on.
    import_id = str(uuid.uuid4())
    loaded = 0
    async for checked, sealed in done:
        errors.extend(file_errors.add(checked))
        if errors or clashes or sealed is None:
            continue  # nothing more is loaded; the rest is still checked for the report
        entries = checked.entries
        new: dict[str, str | None] = {}
        for e in entries:
            if e.household_no not in households:
                households[e.household_no] = new[e.household_no] = None
            if e.relationship == HEAD and e.state == "active":
                households[e.household_no] = e.id
                if e.household_no in new:
                    new[e.household_no] = e.id
        # Households before their members (the members' foreign key).
        await repo.copy_households(uow, new)
        inserted.update(new)
        await repo.copy_sealed(uow, *sealed)
        # One event per record, in bulk and in the load's transaction.
        await events.emit_many(
            uow,
            events.REGISTERED,
            [e.id for e in entries],
            each={"atena_no": [e.atena_no for e in entries]},
            history_no="1",
            import_id=import_id,
        )
        loaded += len(entries)
        if on_progress:
            on_progress(len(entries))
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
