"""One column's envelopes, as a data-key rotation reads and rewrites them.

Everything here runs in a unit of work bound to the town
(:meth:`Database.tenant <shared_gov.db.engine.Database.tenant>`), under the
town's role, with the names the town's ``search_path`` resolves: the key
jobs reach a town's tables the one way every request does. The tables and
the SQL of each envelope's row id are what the domains declare
(:class:`~shared_gov.domains.registry.EncryptedTable`).

A table the town's role may update is rewritten with a plain ``UPDATE``. An
append-only one (a history) is not the town's to update: its envelopes are
replaced through the town's ``reseal_envelopes`` function (tenant revision
t0012), which accepts nothing but an envelope of an encrypted column, written
with the active key, over one on a key being drained. Rows are addressed by
``ctid``, read in the same transaction (locked, where the role may lock
them), so the function needs no knowledge of each table's row id.

Nothing here takes a write on trust. A batch checks that every row it
submitted was written, with its own envelope: a row another writer changed
between the batch's read and its write (another run of the same rotation,
or someone calling ``reseal_envelopes`` as the town's role) is reported, not
counted. And before the old key is retired, every row on the new version is
decrypted (:func:`unreadable`, a pass in page ranges, then
:func:`final_sweep` for the rows changed since the pass began): the town's
function cannot tell a real envelope from bytes with the right header, only
the key can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared_gov.crypto.envelope import DecryptError
from shared_gov.crypto.keyring import keys_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.registry import EncryptedTable
from shared_gov.logs import get_logger

log = get_logger(__name__)

VERSION_SQL = "('x' || encode(substring({col} from 2 for 4), 'hex'))::bit(32)::int"
"""The key version inside an envelope: bytes 2..5 (after the format byte)."""

RESEAL_FUNCTION = "reseal_envelopes(text, text, tid[], bytea[])"
"""The town's door to its append-only tables' envelopes (tenant revision t0012)."""
_RESEAL_SQL = "SELECT reseal_envelopes($1, $2, $3::tid[], $4::bytea[])"

_CHANGED_SINCE_SQL = "($1::bigint IS NULL OR ((xmin::text::bigint - $1) & 4294967295) < 2147483648)"
"""Whether a row version was written by a transaction at or after the 32-bit
transaction id ``$1`` (NULL: every row). ``xmin`` is 32 bits and wraps
around; compared modulo 2^32 over half the range, as PostgreSQL compares
them, the test is exact for anything written within 2^31 transactions of
``$1`` (a rotation lasts minutes). A row frozen long ago may compare as
recent: it is then checked once more, never skipped."""


def _old_rows_sql(table: EncryptedTable, col: str) -> str:
    """Rows of ``col`` on a version in ``$1``, minus the row ids in ``$2``."""
    # Identifiers the registry checked (plain names); the row-id SQL is the
    # domain's own declaration.
    version = VERSION_SQL.format(col=col)
    return (
        f"{col} IS NOT NULL AND {version} = ANY($1::int[]) "
        f"AND NOT ({table.row_id_sql} = ANY($2::text[]))"
    )


async def can_reseal(uow: TenantUnitOfWork) -> bool:
    """Whether the town has ``reseal_envelopes`` (its schema is at t0012 or later)."""
    found: bool = await uow.fetchval(
        "SELECT to_regprocedure($1) IS NOT NULL AND "
        "has_function_privilege(to_regprocedure($1), 'EXECUTE')",
        RESEAL_FUNCTION,
    )
    return found


async def remaining(
    uow: TenantUnitOfWork, table: EncryptedTable, col: str, old: list[int], skip: set[str]
) -> int:
    """Rows of ``col`` still on a version in ``old`` (the row ids in ``skip`` aside)."""
    count: int = await uow.fetchval(
        f"SELECT count(*) FROM {table.table} WHERE {_old_rows_sql(table, col)}",  # noqa: S608
        old,
        sorted(skip),
    )
    return count


@dataclass(slots=True)
class Batch:
    """What one batch of a re-encryption did."""

    read: int = 0
    """Rows read on an old version (0: none is left, bar the skipped ones)."""
    written: int = 0
    """Rows now holding an envelope under the write key."""
    subjects: list[str] = field(default_factory=list)
    """Record ids of the rows re-encrypted (a history entry's record: the part
    of its row id before ``/``), for the batch's audit event."""
    changed: list[str] = field(default_factory=list)
    """Row ids the batch read and submitted but did not write: another writer
    changed them between the batch's read and its write (another run of the
    rotation, or tampering). Not counted in ``written``."""


def _subject(rid: str) -> str:
    """The record a row id belongs to (a history entry's: the part before ``/``)."""
    return rid.split("/")[0]


async def reencrypt(
    uow: TenantUnitOfWork,
    table: EncryptedTable,
    col: str,
    old: list[int],
    limit: int,
    corrupt: set[str],
) -> Batch:
    """Re-encrypt up to ``limit`` rows of ``col`` on a version in ``old`` with the
    write key; rows that do not decrypt are added to ``corrupt`` and left alone."""
    keys = keys_of(uow)
    cipher = keys.ciphers[f"{table.table}.{col}"]
    # SELECT ... FOR UPDATE needs UPDATE privilege, which the town's role lacks
    # on an append-only table; nothing but reseal_envelopes rewrites such a
    # row, and it writes only rows still on an old version.
    lock = "" if table.append_only else " FOR UPDATE SKIP LOCKED"
    rows = await uow.fetch(
        f"SELECT ctid, {table.row_id_sql} AS rid, {col} AS blob "  # noqa: S608
        f"FROM {table.table} WHERE {_old_rows_sql(table, col)} LIMIT $3{lock}",
        old,
        sorted(corrupt),
        limit,
    )
    batch = Batch(read=len(rows))
    places: list[object] = []
    submitted: dict[str, bytes] = {}
    for r in rows:
        context = (uow.code, table.table, col, r["rid"])
        try:
            plaintext = cipher.decrypt(bytes(r["blob"]), context)
        except DecryptError:
            # Already unreadable (tampered or misplaced): leave it for
            # investigation, and keep the old key until it is dealt with.
            corrupt.add(r["rid"])
            log.warning(
                "crypto.rotation_corrupt_row", tenant=uow.code, column=f"{table.table}.{col}"
            )
            continue
        places.append(r["ctid"])
        submitted[r["rid"]] = cipher.encrypt(plaintext, context)
    if not places:
        return batch
    envelopes = list(submitted.values())
    if table.append_only:
        written: int = await uow.fetchval(_RESEAL_SQL, table.table, col, places, envelopes)
    else:
        status = await uow.execute(
            f"UPDATE {table.table} AS t SET {col} = e.envelope "  # noqa: S608
            "FROM unnest($1::tid[], $2::bytea[]) AS e(row_ctid, envelope) "
            "WHERE t.ctid = e.row_ctid",
            places,
            envelopes,
        )
        written = int(status.rsplit(" ", 1)[-1])
    if written != len(places):
        # Some row moved between the read and the write (its ctid is another
        # one now): find which by what they hold. Rare, so the scan by row
        # id (no index on the expression) is paid only then.
        batch.changed = await _not_ours(uow, table, col, submitted)
        log.warning(
            "crypto.rotation_rows_changed",
            tenant=uow.code,
            column=f"{table.table}.{col}",
            rows=len(batch.changed),
        )
    changed = set(batch.changed)
    batch.written = len(submitted) - len(changed)
    for rid in submitted:
        if rid not in changed and _subject(rid) not in batch.subjects:
            batch.subjects.append(_subject(rid))
    return batch


async def _not_ours(
    uow: TenantUnitOfWork, table: EncryptedTable, col: str, submitted: dict[str, bytes]
) -> list[str]:
    """Row ids of ``submitted`` that do not hold the envelope submitted for them."""
    rows = await uow.fetch(
        f"SELECT {table.row_id_sql} AS rid, {col} AS blob FROM {table.table} "  # noqa: S608
        f"WHERE {table.row_id_sql} = ANY($1::text[])",
        list(submitted),
    )
    holding = {r["rid"]: bytes(r["blob"]) if r["blob"] is not None else None for r in rows}
    return sorted(rid for rid, mine in submitted.items() if holding.get(rid) != mine)


async def changed_since_marker(uow: TenantUnitOfWork) -> int:
    """The 32-bit transaction id every transaction begun after this one's
    snapshot gets, or one after it (``xmax`` of the snapshot, low 32 bits).

    Called in a unit of work holding the town's key lock exclusively: then no
    transaction of the town is running, so a row version of the town's tables
    with an ``xmin`` before the marker was committed (or rolled back) before
    it, and any written later, subtransactions included, has one at or after
    it. Unrelated long transactions elsewhere on the server do not move it
    (the snapshot's ``xmin`` would stay behind them).
    """
    marker: int = await uow.fetchval(
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint & 4294967295"
    )
    return marker


async def pages(uow: TenantUnitOfWork, table: EncryptedTable) -> int:
    """How many pages ``table`` has now (a row committed before this statement
    lies in one of them: row versions never move, and a table only loses
    empty pages at its end)."""
    count: int = await uow.fetchval(
        "SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::int",
        table.table,
    )
    return count


@dataclass(slots=True)
class Check:
    """What one decryption check found."""

    checked: int = 0
    """Rows decrypted."""
    unreadable: list[str] = field(default_factory=list)
    """Row ids that did not decrypt."""
    subjects: set[str] = field(default_factory=set)
    """Record ids of the rows decrypted, for the check's audit event."""
    late: int = 0
    """(:func:`final_sweep`) rows still on an old version."""


def _check(
    uow: TenantUnitOfWork, table: EncryptedTable, col: str, rows: list[Any], found: Check
) -> None:
    cipher = keys_of(uow).ciphers[f"{table.table}.{col}"]
    for r in rows:
        found.checked += 1
        found.subjects.add(_subject(r["rid"]))
        try:
            cipher.decrypt(bytes(r["blob"]), (uow.code, table.table, col, r["rid"]))
        except DecryptError:
            found.unreadable.append(r["rid"])
    if found.unreadable:
        log.error(
            "crypto.integrity_error",
            tenant=uow.code,
            column=f"{table.table}.{col}",
            rows=len(found.unreadable),
        )


async def unreadable(
    uow: TenantUnitOfWork,
    table: EncryptedTable,
    col: str,
    versions: list[int],
    first_page: int,
    end_page: int,
    since: int | None,
) -> Check:
    """Decrypt the envelopes of ``col`` on a version in ``versions`` in pages
    ``first_page`` to ``end_page - 1`` (written at or after transaction
    ``since``, when given): which do not decrypt.

    A range of pages is a TID range scan: the pass over a table reads each
    page once, whatever the order of its rows.
    """
    version = VERSION_SQL.format(col=col)
    rows = await uow.fetch(
        f"SELECT {table.row_id_sql} AS rid, {col} AS blob FROM {table.table} "  # noqa: S608
        f"WHERE ctid >= $2::tid AND ctid < $3::tid AND {col} IS NOT NULL "
        f"AND {version} = ANY($4::int[]) AND {_CHANGED_SINCE_SQL}",
        since,
        (first_page, 0),
        (end_page, 0),
        versions,
    )
    found = Check()
    _check(uow, table, col, rows, found)
    return found


async def final_sweep(
    uow: TenantUnitOfWork,
    table: EncryptedTable,
    col: str,
    old: list[int],
    new: list[int],
    skip: set[str],
    since: int,
) -> Check:
    """The last look before a key is retired, in one scan: rows still on a
    version in ``old`` (the row ids in ``skip`` aside) are counted as ``late``;
    rows on a version in ``new`` written at or after transaction ``since``
    (after the verification pass began) are decrypted."""
    version = VERSION_SQL.format(col=col)
    rows = await uow.fetch(
        f"SELECT {table.row_id_sql} AS rid, {col} AS blob, "  # noqa: S608
        f"{version} = ANY($2::int[]) AS late FROM {table.table} "
        f"WHERE {col} IS NOT NULL AND (({version} = ANY($2::int[]) "
        f"AND NOT ({table.row_id_sql} = ANY($3::text[]))) "
        f"OR ({version} = ANY($4::int[]) AND {_CHANGED_SINCE_SQL}))",
        since,
        old,
        sorted(skip),
        new,
    )
    found = Check(late=sum(1 for r in rows if r["late"]))
    _check(uow, table, col, [r for r in rows if not r["late"]], found)
    return found


async def version_counts(
    uow: TenantUnitOfWork, table: EncryptedTable
) -> dict[tuple[str, int], int]:
    """``(table.column, key version) → rows`` of one table's envelope columns."""
    counts: dict[tuple[str, int], int] = {}
    for col in table.columns:
        for r in await uow.fetch(
            f"SELECT {VERSION_SQL.format(col=col)} AS v, count(*) AS n "  # noqa: S608
            f"FROM {table.table} WHERE {col} IS NOT NULL GROUP BY 1"
        ):
            counts[(f"{table.table}.{col}", r["v"])] = r["n"]
    return counts
