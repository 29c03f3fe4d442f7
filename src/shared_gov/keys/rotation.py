"""Key rotation and status, for operators (``shared-gov keys …``).

- :func:`rotate_kek` re-wraps a town's data keys under a new KEK version and
  retires the old one; no row is touched.
- :func:`rotate_dek` makes a new data key the write key for one column, then
  re-encrypts the column's rows in batches (one transaction per batch) while
  reads accept both versions. Interrupted, it resumes where it stopped:
  running it again finds the version still being drained and continues. When
  a final sweep after a grace period finds no row left on the old version,
  and every row on the new version decrypts, the old key is retired.
- :func:`status` lists every key with the number of rows on each version
  (data keys) or holding a value under each version (blind indexes).

Blind-index key rotation lives in :mod:`shared_gov.keys.index_rotation`.

The keys' states are the catalog's (the platform's connection); a town's
rows are read and rewritten only in the town's units of work, under its role
(:mod:`shared_gov.keys.envelopes`): the one way into tenant tables. An
append-only table's envelopes are replaced through the town's
``reseal_envelopes`` function, the one thing its role may change there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from shared_gov import errors
from shared_gov.audit.recorder import Actor, AuditEvent, operator_actor, record
from shared_gov.crypto.keyring import (
    REENCRYPT_GRACE_SECONDS,
    index_column,
    keyring_of,
    keys_of,
    wrap_aad,
)
from shared_gov.db import TenantUnitOfWork
from shared_gov.db.engine import Database
from shared_gov.domains import registry
from shared_gov.domains.registry import EncryptedTable
from shared_gov.keys import envelopes
from shared_gov.logs import get_logger
from shared_gov.messages import operations as m
from shared_gov.towns.names import TenantNames, tenant_names

log = get_logger(__name__)

KEYOPS_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.keyops.' || $1, 0))"
"""Serialises a town's key operations (rotations, provisioning) with each other."""
# Every tenant unit of work holds the town's key lock ('shared_gov.dek.<code>')
# SHARED for its whole transaction (db.binding.binding_sql); the last sweep
# before a key is retired binds with it EXCLUSIVE (Database.tenant(...,
# exclusive=True)), so no transaction that might still write with the old
# key is in flight.


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
        raise errors.invalid_field("/column", m.NOT_AN_ENCRYPTED_COLUMN)
    return name


@dataclass(slots=True)
class _Counts:
    envelopes: dict[tuple[str, int], int]
    """``(table.column, key version) → rows``."""
    indexes: dict[str, int]
    """Index column (``bidx_<name>``, ``bidx_<name>_alt``) → rows holding a value."""


async def _town_counts(db: Database, town: str) -> _Counts:
    """One town's counts, in its unit of work."""
    counts = _Counts({}, {})
    indexes = registry.blind_indexes()
    try:
        async with db.tenant(tenant_names(town, db.settings.role_prefix)) as uow:
            for table in registry.encrypted_tables().values():
                counts.envelopes.update(await envelopes.version_counts(uow, table))
            # Each index has one column per version parity: one scan per table counts all.
            for index_table in sorted({i.table for i in indexes.values()}):
                columns = [
                    index_column(n, v)
                    for n, i in indexes.items()
                    if i.table == index_table
                    for v in (1, 2)
                ]
                found = await uow.fetchrow(
                    "SELECT "  # noqa: S608 - identifiers the registry checked
                    + ", ".join(f"count({c}) AS {c}" for c in columns)
                    + f" FROM {index_table}"
                )
                counts.indexes.update(dict(found or {}))
    except errors.NotFound:
        pass  # offboarded meanwhile (no keys, no role): nothing to count
    return counts


async def status(db: Database, tenant: str | None = None) -> list[KeyStatus]:
    """Every key of every (or one) town, and how many rows each version serves.

    For a data key: rows encrypted with that version. For a resident blind
    index: rows holding a value under that version (during a rotation both
    versions have values; at the end only the new one). Rows are counted in
    each town's unit of work.
    """
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT k.tenant_code, k.kind, k.name, k.version, k.state, k.kek_version, k.bits "
            "FROM catalog.data_keys k JOIN catalog.tenants t ON t.code = k.tenant_code "
            "WHERE t.status = 'active' AND ($1::text IS NULL OR k.tenant_code = $1) "
            "ORDER BY k.tenant_code, k.kind, k.name, k.version",
            tenant,
        )
    counts = {
        town: await _town_counts(db, town) for town in sorted({r["tenant_code"] for r in rows})
    }
    indexes = registry.blind_indexes()

    def rows_of(r: asyncpg.Record) -> int | None:
        town = counts[r["tenant_code"]]
        if r["kind"] == "dek":
            return town.envelopes.get((r["name"], r["version"]), 0)
        if r["kind"] == "bidx" and r["name"] in indexes and r["state"] != "retired":
            return town.indexes.get(index_column(r["name"], r["version"]))
        return None

    return [
        KeyStatus(
            r["tenant_code"],
            r["kind"],
            r["name"],
            r["version"],
            r["state"],
            r["kek_version"],
            rows_of(r),
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
            raise errors.not_found(m.NO_SUCH_TOWN_OR_KEY)
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


VERIFY_PAGES = 128
"""Pages (8 kB each) a verification transaction decrypts: about a thousand
history entries, a few thousand resident rows."""


@dataclass(frozen=True, slots=True)
class RotationResult:
    version: int
    """The new write version."""
    reencrypted: int
    """Rows this run rewrote with its own envelopes (checked: written, and holding them)."""
    corrupt: list[str]
    """Row ids on the old version that did not decrypt; while any exist the old key is kept."""
    retired: bool
    unreadable: list[str] = field(default_factory=list)
    """Row ids on the new version that do not decrypt: written by something other
    than a rotation (tampering, e.g. ``reseal_envelopes`` called as the town's
    role); while any exist the old key is kept."""
    changed: list[str] = field(default_factory=list)
    """Row ids this run read and re-encrypted but another writer changed first
    (another run of the rotation, or tampering: then they are in ``unreadable``
    too); not counted in ``reencrypted``."""
    verified: int = 0
    """Rows on the new version decrypted before the old key could be retired."""


async def rotate_dek(
    db: Database,
    tenant: str,
    column: str,
    *,
    batch: int = 500,
    grace_seconds: float = REENCRYPT_GRACE_SECONDS,
    on_progress: Callable[[int, int], None] | None = None,
) -> RotationResult:
    """Rotate one column's data key and re-encrypt its rows (resumable).

    The rows are read and rewritten in the town's units of work, under its
    role (:mod:`shared_gov.keys.envelopes`); only the keys' states are the
    catalog's. Before the old key is retired, every row on the new version
    must decrypt: the rotation's own writes are checked as they are made, the
    rest (and the rest only a key can check: whatever else wrote the column
    meanwhile) by :func:`_verify` and the final sweep.
    """
    name = column_name(column)
    table_name, col = name.split(".")
    table = registry.encrypted_tables()[table_name]
    names = tenant_names(tenant, db.settings.role_prefix)
    if table.append_only:
        async with db.tenant(names) as uow:
            if not await envelopes.can_reseal(uow):
                # Refused before a new key version exists: nothing to undo.
                raise errors.conflict(m.CANNOT_RESEAL_YET(town=tenant, table=table_name))
    old, new = await _start_rotation(db, tenant, name)
    actor = operator_actor("keys rotate-dek")
    corrupt: set[str] = set()
    unreadable: set[str] = set()
    changed: set[str] = set()
    verified = 0
    since: int | None = None
    async with db.tenant(names) as uow:
        total = await envelopes.remaining(uow, table, col, old, corrupt)
    done = 0
    if on_progress:
        on_progress(done, total)

    def result(retired: bool) -> RotationResult:
        return RotationResult(
            new,
            done,
            sorted(corrupt),
            retired,
            unreadable=sorted(unreadable),
            changed=sorted(changed),
            verified=verified,
        )

    while True:
        async with db.tenant(names) as uow:
            if keys_of(uow).ciphers[name].write_version != new:
                # Our cached keys predate the start (another run started it).
                db.keyring.invalidate(tenant)
                continue
            step = await envelopes.reencrypt(uow, table, col, old, batch, corrupt)
            if step.written:
                # Rewriting rows is an access to personal data: one event per
                # batch, in the batch's transaction, in the town's own log.
                await record(
                    uow,
                    actor,
                    AuditEvent(
                        action="keys.reencrypt",
                        resource_type=table_name,
                        subjects=sorted(step.subjects),
                        fields=[col],
                        rows=step.written,
                    ),
                )
        done += step.written
        # Not counted, not silently dropped: such a row is either another
        # run's (it decrypts) or tampered with (the verification names it).
        changed.update(step.changed)
        if on_progress:
            on_progress(done, max(total - len(corrupt), done))
        if step.read:
            continue
        async with db.tenant(names) as uow:
            left = await envelopes.remaining(uow, table, col, old, corrupt)
        if left:
            await asyncio.sleep(0.05)  # rows locked by writers right now: come back
            continue
        # Give workers time to hear of the new write key, then recount in a
        # unit of work holding the town's key lock exclusively: every
        # transaction that might still write with the old key has finished,
        # and the recount sees its rows.
        await asyncio.sleep(grace_seconds)
        # Every row on the new version must decrypt before the old key goes:
        # reseal_envelopes accepts any bytes with the right header, so a row
        # rewritten by anyone but this job (a town's role calling it, a
        # planted corrupt row resealed out of the old version) is found only
        # here. The pass runs beside the town's work; the sweep under the
        # exclusive lock decrypts only what was written since it began.
        marker, checked = await _verify(db, names, table, col, new, since, actor, unreadable)
        since = marker
        verified += checked
        if corrupt or unreadable:
            return result(retired=False)
        async with db.tenant(names, exclusive=True) as uow:
            sweep = await envelopes.final_sweep(uow, table, col, old, [new], corrupt, since)
            if sweep.checked:
                await _record_check(uow, actor, table_name, col, sweep)
        verified += sweep.checked
        unreadable.update(sweep.unreadable)
        if unreadable:
            return result(retired=False)
        if sweep.late:
            continue
        # Retired in a transaction of its own, on the catalog: a transaction
        # begun since the recount started after the grace period, with the
        # new write key (a worker that missed every notification is the case
        # the kept wrapped key is for, as it would be a moment later).
        async with db.catalog() as conn:
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
    return result(retired=True)


async def _verify(
    db: Database,
    names: TenantNames,
    table: EncryptedTable,
    col: str,
    new: int,
    since: int | None,
    actor: Actor,
    unreadable: set[str],
) -> tuple[int, int]:
    """Decrypt every row of ``col`` on version ``new`` (written at or after
    transaction ``since``, when given), a range of pages per transaction;
    returns (marker, rows decrypted). Row ids that do not decrypt go into
    ``unreadable``.

    The pass begins with a moment under the town's key lock taken
    exclusively (it waits for the town's open transactions, as the final
    sweep does): every row version written before has an ``xmin`` before
    ``marker`` and was committed before the pass, so one of its page ranges
    holds it (row versions never move: the town's role cannot rewrite a row
    on the new version, and a new version of a row is a new ``xmin``); every
    one written since has an ``xmin`` at or after it, and the final sweep
    decrypts those (few: what the town wrote meanwhile).
    """
    async with db.tenant(names, exclusive=True) as uow:
        marker = await envelopes.changed_since_marker(uow)
        end = await envelopes.pages(uow, table)
    checked = 0
    for first in range(0, end, VERIFY_PAGES):
        async with db.tenant(names) as uow:
            found = await envelopes.unreadable(
                uow, table, col, [new], first, min(first + VERIFY_PAGES, end), since
            )
            if found.checked:
                await _record_check(uow, actor, table.table, col, found)
        checked += found.checked
        unreadable.update(found.unreadable)
    return marker, checked


async def _record_check(
    uow: TenantUnitOfWork, actor: Actor, table_name: str, col: str, found: envelopes.Check
) -> None:
    """Decrypting to check is an access to personal data too (nothing is shown):
    one event per transaction, in the town's own log."""
    await record(
        uow,
        actor,
        AuditEvent(
            action="keys.verify",
            resource_type=table_name,
            subjects=sorted(found.subjects),
            fields=[col],
            rows=found.checked,
        ),
    )
