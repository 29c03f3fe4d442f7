"""Key rotation and status, for operators (``shared-gov keys …``).

- :func:`rotate_kek` re-wraps a town's data keys under a new KEK version and
  retires the old one; no row is touched.
- :func:`rotate_dek` makes a new data key the write key for one column, then
  re-encrypts the column's rows in batches (``FOR UPDATE SKIP LOCKED``, one
  transaction per batch) while reads accept both versions. Interrupted, it
  resumes where it stopped: running it again finds the version still being
  drained and continues. When a final sweep after a grace period finds no row
  left on the old version, the old key is retired and its wrapped bytes are
  erased.
- :func:`status` lists every key with the number of rows on each version
  (data keys) or holding a value under each version (blind indexes).

Blind-index key rotation lives in :mod:`shared_gov.keys.index_rotation`.

These jobs run as the platform role with schema-qualified names, because a
town's role may not rewrite its own history (append-only by design).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from shared_gov import errors
from shared_gov.audit.recorder import AuditEvent, operator_actor, record_as_town
from shared_gov.crypto.envelope import DecryptError, FieldCipher
from shared_gov.crypto.keyring import (
    REENCRYPT_GRACE_SECONDS,
    index_column,
    keyring_of,
    town_keys,
    wrap_aad,
)
from shared_gov.db.engine import Database
from shared_gov.domains import registry
from shared_gov.logs import get_logger
from shared_gov.towns.names import quote_ident, tenant_names

log = get_logger(__name__)

KEYOPS_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.keyops.' || $1, 0))"
"""Serialises a town's key operations (rotations, provisioning) with each other."""
# Every tenant unit of work holds this lock SHARED for its whole transaction
# (see db.engine.binding_sql); retiring a key takes it EXCLUSIVE, so no
# transaction that might still write with the old key is in flight.
WRITERS_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.dek.' || $1, 0))"

# The key version inside an envelope: bytes 2..5 (after the format byte).
_VERSION_SQL = "('x' || encode(substring({col} from 2 for 4), 'hex'))::bit(32)::int"


@dataclass(frozen=True, slots=True)
class KeyStatus:
    tenant: str
    kind: str
    name: str
    version: int
    state: str
    kek_version: int
    rows: int | None
    """Data keys: rows encrypted with this version. Resident blind indexes: rows
    holding a value under this version (None for retired ones)."""
    bits: int | None = None
    """Blind indexes: how many bits of the HMAC are kept."""


def column_name(value: str) -> str:
    """``table.column``, or a field name of the default record type (``family_name`` →
    the column its spec declares); checks the column is encrypted."""
    name = value
    if "." not in value:
        try:
            declared = registry.default_record_type().field(value).encrypted
        except (KeyError, LookupError):
            declared = None
        name = ".".join(declared) if declared is not None else value
    if name not in registry.dek_names():
        raise errors.invalid_field("/column", "not an encrypted column")
    return name


def _row_id_sql(table: str) -> str:
    # The expression the domain declared for the row id bound into the AAD.
    return registry.encrypted_tables()[table].row_id_sql


def _key_sql(table: str) -> str:
    return f"{_row_id_sql(table)} = $1"


async def status(db: Database, tenant: str | None = None) -> list[KeyStatus]:
    """Every key of every (or one) town, and how many rows each version serves.

    For a data key: rows encrypted with that version. For a resident blind
    index: rows holding a value under that version (during a rotation both
    versions have values; at the end only the new one).
    """
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT k.tenant_code, k.kind, k.name, k.version, k.state, k.kek_version, k.bits "
            "FROM catalog.data_keys k JOIN catalog.tenants t ON t.code = k.tenant_code "
            "WHERE t.status = 'active' AND ($1::text IS NULL OR k.tenant_code = $1) "
            "ORDER BY k.tenant_code, k.kind, k.name, k.version",
            tenant,
        )
        counts: dict[tuple[str, str, str, int], int] = {}
        for town in sorted({r["tenant_code"] for r in rows}):
            schema = quote_ident(tenant_names(town, db.settings.role_prefix).schema)
            for encrypted in registry.encrypted_tables().values():
                table = encrypted.table
                for col in encrypted.columns:
                    version = _VERSION_SQL.format(col=col)
                    for r in await conn.fetch(
                        f"SELECT {version} AS v, count(*) AS n FROM {schema}.{table} "  # noqa: S608
                        f"WHERE {col} IS NOT NULL GROUP BY 1"
                    ):
                        counts[(town, "dek", f"{table}.{col}", r["v"])] = r["n"]
            # Each index has one column per version parity: one scan per table counts all.
            indexes = registry.blind_indexes()
            stored: dict[str, int] = {}
            for index_table in sorted({i.table for i in indexes.values()}):
                found = await conn.fetchrow(
                    "SELECT "  # noqa: S608
                    + ", ".join(
                        f"count({index_column(n, v)}) AS {index_column(n, v)}"
                        for n, i in indexes.items()
                        if i.table == index_table
                        for v in (1, 2)
                    )
                    + f" FROM {schema}.{index_table}"
                )
                stored.update(dict(found or {}))
            for r in rows:
                if (
                    r["tenant_code"] == town
                    and r["kind"] == "bidx"
                    and r["name"] in indexes
                    and r["state"] != "retired"
                ):
                    column = index_column(r["name"], r["version"])
                    counts[(town, "bidx", r["name"], r["version"])] = stored[column]
    return [
        KeyStatus(
            r["tenant_code"],
            r["kind"],
            r["name"],
            r["version"],
            r["state"],
            r["kek_version"],
            counts.get((r["tenant_code"], r["kind"], r["name"], r["version"]), 0)
            if r["kind"] == "dek"
            else counts.get((r["tenant_code"], "bidx", r["name"], r["version"])),
            r["bits"],
        )
        for r in rows
    ]


async def rotate_kek(db: Database, tenant: str) -> tuple[int, int]:
    """Re-wrap every data key of ``tenant`` under a new KEK; returns (version, keys)."""
    provider = keyring_of(db).provider
    async with db.catalog() as conn:
        # One key operation per town at a time, and the new KEK only after the
        # lock: a DEK created meanwhile is then seen and re-wrapped too.
        await conn.execute(KEYOPS_LOCK, tenant)
        new = await asyncio.to_thread(provider.rotate_kek, tenant)
        rows = await conn.fetch(
            "SELECT kind, name, version, wrapped, kek_version FROM catalog.data_keys "
            "WHERE tenant_code = $1 AND length(wrapped) > 0 FOR UPDATE",
            tenant,
        )
        for r in rows:
            context = wrap_aad(tenant, r["kind"], r["name"], r["version"])
            key = provider.unwrap(tenant, r["kek_version"], bytes(r["wrapped"]), context)
            await conn.execute(
                "UPDATE catalog.data_keys SET wrapped = $5, kek_version = $6 "
                "WHERE tenant_code = $1 AND kind = $2 AND name = $3 AND version = $4",
                tenant,
                r["kind"],
                r["name"],
                r["version"],
                provider.wrap(tenant, new, key, context),
                new,
            )
        await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", tenant)
    # Only after the commit: until then the old KEK still unwraps the stored keys.
    for version in await asyncio.to_thread(provider.kek_versions, tenant):
        if version != new:
            await asyncio.to_thread(provider.retire_kek, tenant, version)
    db.keyring.invalidate(tenant)
    return new, len(rows)


async def _start_rotation(db: Database, tenant: str, name: str) -> tuple[list[int], int]:
    """Create the new write version unless a rotation is already in progress."""
    async with db.catalog() as conn:
        await conn.execute(KEYOPS_LOCK, tenant)
        rows = await conn.fetch(
            "SELECT version, state, kek_version FROM catalog.data_keys WHERE tenant_code = $1 "
            "AND kind = 'dek' AND name = $2 AND state <> 'retired' ORDER BY version FOR UPDATE",
            tenant,
            name,
        )
        if not rows:
            raise errors.not_found("no such town or key")
        draining = [r["version"] for r in rows if r["state"] == "decrypt"]
        active = next(r["version"] for r in rows if r["state"] == "active")
        if draining:
            return draining, active  # resume
        new = await add_key_version(db, conn, tenant, "dek", name, active)
        # Every worker switches its write key now.
        await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", tenant)
    db.keyring.invalidate(tenant)
    return [active], new


async def add_key_version(
    db: Database,
    conn: asyncpg.Connection,
    tenant: str,
    kind: str,
    name: str,
    active: int,
    bits: int | None = None,
) -> int:
    """Make a new random key version (``active + 1``) the active one; returns it.

    Wrapped under the town's current KEK, in the caller's transaction; the
    old version stays readable (state ``decrypt``) until the rotation retires
    it. Used by data-key and blind-index rotation alike.
    """
    new = active + 1
    provider = keyring_of(db).provider
    kek = await asyncio.to_thread(provider.current_kek_version, tenant)
    wrapped = await asyncio.to_thread(
        provider.wrap, tenant, kek, os.urandom(32), wrap_aad(tenant, kind, name, new)
    )
    await conn.execute(
        "UPDATE catalog.data_keys SET state = 'decrypt' WHERE tenant_code = $1 "
        "AND kind = $2 AND name = $3 AND version = $4",
        tenant,
        kind,
        name,
        active,
    )
    await conn.execute(
        "INSERT INTO catalog.data_keys (tenant_code, kind, name, version, wrapped, "
        "kek_version, bits, state) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active')",
        tenant,
        kind,
        name,
        new,
        wrapped,
        kek,
        bits,
    )
    return new


def _old_rows_sql(table: str, col: str) -> str:
    version = _VERSION_SQL.format(col=col)
    return (
        f"{col} IS NOT NULL AND {version} = ANY($1::int[]) "
        f"AND NOT ({_row_id_sql(table)} = ANY($2::text[]))"
    )


async def _reencrypt_batch(
    db: Database,
    tenant: str,
    table: str,
    col: str,
    old: list[int],
    batch: int,
    corrupt: set[str],
) -> int:
    keys = await town_keys(db, tenant)
    cipher: FieldCipher = keys.ciphers[f"{table}.{col}"]
    schema = quote_ident(tenant_names(tenant, db.settings.role_prefix).schema)
    moved = 0
    async with db.catalog() as conn:
        rows = await conn.fetch(
            f"SELECT {_row_id_sql(table)} AS rid, {col} AS blob FROM {schema}.{table} "  # noqa: S608
            f"WHERE {_old_rows_sql(table, col)} LIMIT $3 FOR UPDATE SKIP LOCKED",
            old,
            sorted(corrupt),
            batch,
        )
        touched: list[str] = []
        for r in rows:
            context = (tenant, table, col, r["rid"])
            try:
                plaintext = cipher.decrypt(bytes(r["blob"]), context)
            except DecryptError:
                # Already unreadable (tampered or misplaced): leave it for
                # investigation, and keep the old key until it is dealt with.
                corrupt.add(r["rid"])
                log.warning("crypto.rotation_corrupt_row", tenant=tenant, column=f"{table}.{col}")
                continue
            await conn.execute(
                f"UPDATE {schema}.{table} SET {col} = $2 WHERE {_key_sql(table)}",  # noqa: S608
                r["rid"],
                cipher.encrypt(plaintext, context),
            )
            moved += 1
            touched.append(r["rid"].split("/")[0])
        if touched:
            # Rewriting rows is an access to personal data: one event per batch,
            # in the batch's transaction, in the town's own log.
            names = tenant_names(tenant, db.settings.role_prefix)
            await record_as_town(
                conn,
                keys,
                names.role,
                operator_actor("keys rotate-dek"),
                AuditEvent(
                    action="keys.reencrypt",
                    resource_type=table,
                    subjects=sorted(set(touched)),
                    fields=[col],
                    rows=len(touched),
                ),
            )
    return moved if moved or not rows else -1


async def _remaining(
    db: Database, tenant: str, table: str, col: str, old: list[int], corrupt: set[str]
) -> int:
    schema = quote_ident(tenant_names(tenant, db.settings.role_prefix).schema)
    async with db.catalog() as conn:
        count: int = await conn.fetchval(
            f"SELECT count(*) FROM {schema}.{table} WHERE {_old_rows_sql(table, col)}",  # noqa: S608
            old,
            sorted(corrupt),
        )
    return count


@dataclass(frozen=True, slots=True)
class RotationResult:
    version: int
    """The new write version."""
    reencrypted: int
    corrupt: list[str]
    """Row ids that did not decrypt; while any exist the old key is kept."""
    retired: bool


async def rotate_dek(
    db: Database,
    tenant: str,
    column: str,
    *,
    batch: int = 500,
    grace_seconds: float = REENCRYPT_GRACE_SECONDS,
    on_progress: Callable[[int, int], None] | None = None,
) -> RotationResult:
    """Rotate one column's data key and re-encrypt its rows (resumable)."""
    name = column_name(column)
    table, col = name.split(".")
    old, new = await _start_rotation(db, tenant, name)
    corrupt: set[str] = set()
    total = await _remaining(db, tenant, table, col, old, corrupt)
    done = 0
    if on_progress:
        on_progress(done, total)
    while True:
        moved = await _reencrypt_batch(db, tenant, table, col, old, batch, corrupt)
        done += max(moved, 0)
        if on_progress:
            on_progress(done, max(total - len(corrupt), done))
        if moved:
            continue
        if await _remaining(db, tenant, table, col, old, corrupt):
            await asyncio.sleep(0.05)  # rows locked by writers right now: come back
            continue
        # Give workers time to hear of the new write key, then retire under the
        # writers' lock taken exclusively: every transaction that might still
        # write with the old key has finished, and the recount sees its rows.
        await asyncio.sleep(grace_seconds)
        if corrupt:
            return RotationResult(new, done, sorted(corrupt), retired=False)
        schema = quote_ident(tenant_names(tenant, db.settings.role_prefix).schema)
        async with db.catalog() as conn:
            await conn.execute(WRITERS_LOCK, tenant)
            late = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.{table} "  # noqa: S608
                f"WHERE {_old_rows_sql(table, col)}",
                old,
                sorted(corrupt),
            )
            if late:
                continue
            # The wrapped key stays: a worker that missed every notification and
            # still writes with it later leaves rows that remain readable.
            await conn.execute(
                "UPDATE catalog.data_keys SET state = 'retired' "
                "WHERE tenant_code = $1 AND kind = 'dek' AND name = $2 "
                "AND version = ANY($3::int[])",
                tenant,
                name,
                old,
            )
            await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", tenant)
        break
    db.keyring.invalidate(tenant)
    return RotationResult(new, done, [], retired=True)
