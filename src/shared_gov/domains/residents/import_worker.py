"""The worker side of the resident import: reading, checking and sealing chunks.

What :mod:`.transfer`'s worker processes run, and nothing more: a chunk's
rows are read (:mod:`shared_gov.bulkimport.chunks`), checked
(:mod:`.import_checks`: check digits, dates, codes, kana, lengths — column
by column when the chunk is clean, row by row for the report when it is
not) and, when clean, encrypted, blind-indexed and framed as binary COPY
data per table (:mod:`.import_sealing`). The loading process
(:mod:`.transfer`, the public entry) compares the file with the town, finds
duplicates across chunks, writes the events and sends the COPYs.

Kept apart so that a spawned worker imports only what this takes — the
check digits, envelopes, blind indexes, the record's fields, msgspec and
csv — and not the application (SQLAlchemy through ``shared_gov.db``, the
keyring, the policy engine): that was about half a CPU-second per worker
and import, spent while PostgreSQL waited for the first chunks (measured).
So nothing here, in :mod:`.import_layout`, :mod:`.import_checks` or
:mod:`.import_sealing` imports :mod:`shared_gov.db`, the repository, the
keyring or the events module: the keys arrive as plain bytes
(:class:`~.import_sealing.SealingKeys`), the column layout is written out
and held to the repository's by :mod:`.transfer` when it is imported, and
the events are built by the loading process from the ids and 宛名番号 a
chunk returns (:class:`~.import_sealing.Framed`).
"""

from __future__ import annotations

from datetime import date

from shared_gov.bulkimport.chunks import Chunk, no_cyclic_gc, read_rows
from shared_gov.domains.residents.import_checks import check_columns
from shared_gov.domains.residents.import_layout import Checked
from shared_gov.domains.residents.import_sealing import Framed, Framer, SealingKeys

Done = tuple[Checked, Framed | None]
"""A chunk checked and, if it has no problems, sealed and framed."""


def check_and_seal(
    framer: Framer, chunk: Chunk, positions: list[int], first: int, today: date
) -> Done:
    """One chunk's whole CPU work: read, check, then (if every row is valid) seal."""
    checked, columns = check_columns(read_rows(chunk), positions, first, today)
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
