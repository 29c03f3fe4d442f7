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
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    envelopes: list[bytes] = []
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
        envelopes.append(cipher.encrypt(plaintext, context))
        subject = r["rid"].split("/")[0]
        if subject not in batch.subjects:
            batch.subjects.append(subject)
    if not places:
        return batch
    if table.append_only:
        batch.written = await uow.fetchval(_RESEAL_SQL, table.table, col, places, envelopes)
    else:
        status = await uow.execute(
            f"UPDATE {table.table} AS t SET {col} = e.envelope "  # noqa: S608
            "FROM unnest($1::tid[], $2::bytea[]) AS e(row_ctid, envelope) "
            "WHERE t.ctid = e.row_ctid",
            places,
            envelopes,
        )
        batch.written = int(status.rsplit(" ", 1)[-1])
    return batch


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
