"""A file's chunks checked and sealed, here or by worker processes, delivered in file order.

The loading side of :mod:`.import_worker`: the file cut into chunks of
:data:`CHUNK_ROWS` rows (as text where it can be, so that workers read
them), the spawned pool and its keys, and each chunk's binary COPY data
with its checked ``resident.registered`` events (:class:`Sealed`).
:mod:`.transfer` loads what this delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import multiprocessing
import os
import sys
import types
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from typing import NamedTuple

from shared_gov.bulkimport.chunks import Chunk
from shared_gov.crypto.keyring import WriteKeys, index_column
from shared_gov.domains.residents import events
from shared_gov.domains.residents import import_sealing as sealing
from shared_gov.domains.residents import import_worker as worker
from shared_gov.domains.residents.import_layout import (
    Checked,
    Columns,
)

# --- COPY payloads -------------------------------------------------------------------
#
# A clean chunk becomes the bytes of a binary COPY per table, built where it
# was checked (a worker process for a large file: :mod:`.import_worker`), so
# the loading process only sends them: encoding a hundred thousand records
# again there, value by value (``copy_records_to_table``), cost about a
# second of its CPU (measured), all of it while PostgreSQL waited.


class Sealed(NamedTuple):
    """A clean chunk, ready to load: what it writes to each table."""

    residents: bytes
    """Binary COPY of the residents rows (:data:`RESIDENT_COLUMNS`)."""
    history: bytes
    """Binary COPY of their history entries (:data:`HISTORY_COLUMNS`)."""
    events: events.Batch
    """Their ``resident.registered`` events, checked."""


def sealing_keys(keys: WriteKeys) -> sealing.SealingKeys:
    """A town's write keys as the workers take them: each index version in its column."""
    return sealing.SealingKeys(
        keys.tenant,
        dict(keys.deks),
        {
            name: tuple((index_column(name, version), bits, key) for version, bits, key in versions)
            for name, versions in keys.indexes.items()
        },
    )


def _sealed(framed: sealing.Framed, import_id: str) -> Sealed:
    """A framed chunk with its ``resident.registered`` events, checked here: the
    events module is the loading process's (it imports the database layer)."""
    registered = events.batch(
        events.REGISTERED,
        framed.ids,
        # Checked when the file was read, with the events' rule (import_layout.event_atena).
        checked_each={"atena_no": framed.atena},
        history_no="1",
        import_id=import_id,
    )
    return Sealed(framed.residents, framed.history, registered)


class CopyWriter:
    """Turns checked records into what a load writes, for one town's write keys.

    :class:`import_sealing.Framer` (the same envelopes, blind-index values,
    snapshots and COPY framing the workers make) plus the checked events;
    never shows a key in a repr.
    """

    __slots__ = ("_framer",)

    def __init__(self, keys: WriteKeys) -> None:
        self._framer = sealing.Framer(sealing_keys(keys))

    def __repr__(self) -> str:
        return "CopyWriter()"  # never the keys

    def write(self, columns: Columns, processed_on: date, import_id: str) -> Sealed:
        """What loading these records (new, as an import makes them) writes.

        ``columns``: valid records column by column, as :func:`check_columns`
        (or :func:`record_columns` of what :func:`check_rows` accepted) gives
        them; their 宛名番号 are not checked again for the events.
        """
        return _sealed(self._framer.write(columns, processed_on), import_id)


# --- loading -------------------------------------------------------------------------

CHUNK_ROWS = 2000
"""Rows per task: checked, sealed and loaded together."""
PARALLEL_MIN_ROWS = 4000
"""From this many rows a file is checked and sealed by worker processes."""
LOCAL_CHUNKS = 1
"""With workers: how many first chunks this process checks and seals itself,
while the workers start, so that PostgreSQL starts loading at once; the
workers take the next ones. One: a worker starts in about a tenth of a second
now that it imports only :mod:`.import_worker` (three were needed when each
imported the application, half a second); 0 and 1 measured alike, and each
chunk sealed here is CPU this process does not spend sending COPY data."""


Done = tuple[Checked, Sealed | None]
"""A chunk checked and, if it has no problems, sealed."""
_BLANK_LINES = frozenset({"\n", "\r\n", "\r"})
"""Lines csv.reader reads as no row at all (a blank line is not a row)."""


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


def _check_and_seal(
    framer: sealing.Framer,
    chunk: Chunk,
    positions: list[int],
    first: int,
    today: date,
    import_id: str,
) -> Done:
    """One chunk checked and sealed here (a small file, or the first chunks)."""
    checked, framed = worker.check_and_seal(framer, chunk, positions, first, today)
    return checked, None if framed is None else _sealed(framed, import_id)


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


def _start_pool(keys: sealing.SealingKeys, workers: int) -> ProcessPoolExecutor:
    """Worker processes for one import, each with the town's write keys.

    Spawned, as the service's workers are (no inherited HSM session, lock or
    event loop), and started now so that they load while the file is split.
    They run :mod:`.import_worker` only (initializer and tasks are its
    functions, the keys and results its classes), so they never import the
    application. The keys reach them through the initializer, over a pipe
    between our own processes; :class:`~.import_sealing.SealingKeys` never
    shows key bytes in a repr, a log line or a traceback.
    """
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=worker.start_worker,
        initargs=(keys,),
    )
    try:
        # Each submit starts a process (until there are ``workers``).
        with _bare_main():
            for _ in range(workers):
                pool.submit(worker.ready)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool


def _worker_count(lines: int, requested: int | None) -> int:
    if requested is not None:
        return requested
    if lines < PARALLEL_MIN_ROWS:
        return 0  # starting processes and moving chunks between them would cost more
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
        keys: sealing.SealingKeys,
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
        self._pending: deque[asyncio.Future[worker.Done]] = deque()
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
                worker.in_worker,
                self._chunks[number],
                self._positions,
                1 + number * CHUNK_ROWS,
                self._today,
            )
        )

    async def results(self) -> AsyncIterator[Done]:
        if self._pool is None:
            framer = sealing.Framer(self._keys)
            for number, chunk in enumerate(self._chunks):
                yield _check_and_seal(
                    framer,
                    chunk,
                    self._positions,
                    1 + number * CHUNK_ROWS,
                    self._today,
                    self._import_id,
                )
            return
        if self._local:
            framer = sealing.Framer(self._keys)
            for number in range(self._local):
                yield await asyncio.to_thread(
                    _check_and_seal,
                    framer,
                    self._chunks[number],
                    self._positions,
                    1 + number * CHUNK_ROWS,
                    self._today,
                    self._import_id,
                )
        while self._pending:
            checked, framed = await self._pending.popleft()
            if self._next < len(self._chunks):
                self._submit()
            elif not self._pending and self.closing is None:
                # Nothing left for the workers: they exit while the last chunk
                # loads (the import waits for this at the end).
                self.closing = asyncio.ensure_future(
                    asyncio.to_thread(self._pool.shutdown, wait=True)
                )
            yield checked, None if framed is None else _sealed(framed, self._import_id)

    def cancel(self) -> None:
        for future in self._pending:
            future.cancel()
