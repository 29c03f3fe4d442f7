"""Blind-index key rotation (``shared-gov keys rotate-index``), without downtime.

A blind index value is a truncated HMAC: unlike an envelope it does not say
which key made it, and a search must know where to look. So a rotation keeps
both keys' values side by side, in two columns per index: odd key versions in
``bidx_<name>``, even ones in ``bidx_<name>_alt``
(:func:`~shared_gov.crypto.keyring.index_column`). The steps, each safe to
interrupt:

1. **Start.** A new index key version (``active``; its width re-planned from
   the town's population, or ``--bits``) joins the old one (now ``decrypt``:
   still written and searched, on its way out). Every worker hears of it
   through LISTEN/NOTIFY. From then on a write stores the value under each
   version it knows (the other column gets NULL), and a search or a
   uniqueness check looks for either value (``old_col = $1 OR new_col = $2``).
   A worker that has not heard yet writes the old column only; the old
   column stays complete, so its searches stay right.
2. **Fill.** Batches (``FOR UPDATE SKIP LOCKED``, one transaction each, in
   id order) give every row its value under the new key, decrypting only the
   fields the index is made of. Each batch is one audit event in the town's
   log (``keys.reindex``). Rows a stale worker wrote with NULL in the new
   column are found again by the next pass.
3. **Switch.** After a grace period, a unit of work takes the town's key
   lock (``shared_gov.dek.<town>``, held shared by every unit of work)
   exclusively: no transaction that might still write without the new value
   is open. If its recount finds no row lacking it, the old version is
   retired right after (on the catalog) and its wrapped key erased. Nothing moves:
   the new column is already complete, which is why we alternate columns
   instead of copying the new values over the old ones (a copy would rewrite
   every row under the exclusive lock, and a worker that loaded its keys
   just before the switch would then look for old values in a column that
   no longer holds them). Readers are right at every moment: before the
   switch the old column is complete, after it the new one is, and a worker
   that still knows both versions looks in both.
4. **Clean-up.** After another grace period (workers stop writing the old
   column once they hear of the retirement), batches erase the old values;
   a last pass runs in a unit of work holding the key lock exclusively. A run interrupted here is
   finished by the next ``rotate-index`` of the same index, before any new
   rotation starts, because a new version's column must start empty.

A row whose fields do not decrypt keeps the old key from being retired
(as with ``rotate-dek``): it is reported and left for investigation.

Every read and write of a town's rows goes through the town's unit of work
and the index hooks its domain declares (under the town's role); only the
keys' states are the catalog's.

The platform's ``audit_subject`` index is not rotatable: the audit log holds its values
for ever and must stay searchable by resident.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from shared_gov import errors
from shared_gov.audit.recorder import AuditEvent, operator_actor, record
from shared_gov.crypto.blind import plan_bits
from shared_gov.crypto.keyring import REENCRYPT_GRACE_SECONDS, index_column, keys_of
from shared_gov.db.engine import Database
from shared_gov.domains import registry
from shared_gov.keys.rotation import KEYOPS_LOCK, add_key_version
from shared_gov.logs import get_logger
from shared_gov.messages import operations as m
from shared_gov.towns.names import tenant_names

log = get_logger(__name__)

MIN_BITS, MAX_BITS = 8, 32
"""``--bits`` bounds: plan_bits' own clamp (short enough never to single anyone out)."""

Progress = Callable[[str, int, int], None]
"""``on_progress(phase, done, total)``; phase is "fill" or "clean-up"."""


@dataclass(frozen=True, slots=True)
class IndexRotationResult:
    version: int
    """The index key version in use at the end (the new one, if a rotation ran)."""
    bits: int
    filled: int
    """Rows given a value under the new key."""
    cleared: int
    """Old-key values erased from the other column."""
    unreadable: list[str]
    """Row ids whose fields did not decrypt; while any exist the old key is kept."""
    retired: bool
    """The old key is retired and erased."""
    cleanup_only: bool = False
    """This run only finished the clean-up of an earlier rotation (nothing new started)."""


def index_name(value: str) -> str:
    """Checks ``value`` names a rotatable blind index."""
    rotatable = registry.blind_indexes()
    if value not in rotatable:
        raise errors.invalid_field("/index", m.NOT_A_ROTATABLE_INDEX(names=", ".join(rotatable)))
    return value


async def _live_versions(db: Database, tenant: str, name: str) -> list[tuple[int, str, int]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT version, state, bits FROM catalog.data_keys WHERE tenant_code = $1 "
            "AND kind = 'bidx' AND name = $2 AND state <> 'retired' ORDER BY version",
            tenant,
            name,
        )
    return [(r["version"], r["state"], r["bits"]) for r in rows]


async def _start(db: Database, tenant: str, name: str, bits: int | None) -> tuple[int, int, int]:
    """Create the new index key version unless a rotation is in progress: (old, new, bits)."""
    async with db.catalog() as conn:
        await conn.execute(KEYOPS_LOCK, tenant)
        rows = await conn.fetch(
            "SELECT version, state, bits FROM catalog.data_keys WHERE tenant_code = $1 "
            "AND kind = 'bidx' AND name = $2 AND state <> 'retired' ORDER BY version FOR UPDATE",
            tenant,
            name,
        )
        if not rows:
            raise errors.not_found(m.NO_SUCH_TOWN_OR_KEY)
        active = next(r for r in rows if r["state"] == "active")
        draining = [r["version"] for r in rows if r["state"] == "decrypt"]
        if draining:  # resume (someone started it, maybe another run right now)
            return draining[0], active["version"], active["bits"]
        if bits is None:
            population = await conn.fetchval(
                "SELECT population FROM catalog.tenants WHERE code = $1", tenant
            )
            bits = plan_bits(population)
        new = await add_key_version(db, conn, tenant, "bidx", name, active["version"], bits)
        # Every worker starts writing both values now.
        await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", tenant)
    db.keyring.invalidate(tenant)
    return active["version"], new, bits


async def _fill(
    db: Database,
    tenant: str,
    name: str,
    old: int,
    new: int,
    *,
    batch: int,
    grace_seconds: float,
    on_progress: Progress | None,
) -> tuple[int, list[str], bool]:
    """Steps 2 and 3: (rows filled, unreadable ids, old key retired)."""
    names = tenant_names(tenant, db.settings.role_prefix)
    actor = operator_actor("keys rotate-index")
    declared = registry.blind_indexes()[name]
    repo = registry.index_hooks(name)
    fields = list(declared.sources)
    unreadable: set[str] = set()
    empty: set[str] = set()
    async with db.tenant(names) as uow:
        total = await repo.backlog(uow, name, new, [])
    done = 0
    if on_progress:
        on_progress("fill", done, total)
    after: str | None = None
    while True:
        async with db.tenant(names) as uow:
            keys = keys_of(uow)
            if new not in dict(keys.index_versions.get(name, ())):
                # Our own cache predates the start (another run started it).
                db.keyring.invalidate(tenant)
                continue
            step = await repo.fill(
                uow, name, new, after=after, limit=batch, skip=sorted(unreadable | empty)
            )
            if step.filled:
                # Computing index values reads personal fields: one event per
                # batch, in the batch's transaction, in the town's own log.
                await record(
                    uow,
                    actor,
                    AuditEvent(
                        action="keys.reindex",
                        resource_type=declared.table,
                        subjects=step.filled,
                        fields=fields,
                        rows=len(step.filled),
                    ),
                )
        if step.unreadable:
            log.warning(
                "crypto.index_rotation_corrupt_rows",
                tenant=tenant,
                index=name,
                rows=len(step.unreadable),
            )
        unreadable.update(step.unreadable)
        empty.update(step.empty)
        done += len(step.filled)
        if on_progress:
            on_progress("fill", done, max(total - len(unreadable) - len(empty), done))
        after = step.last
        if after is not None:
            continue
        # End of a pass: rows skipped because a writer held them, or written
        # meanwhile by a worker that had not heard of the new key, need another.
        skip = sorted(unreadable | empty)
        async with db.tenant(names) as uow:
            if await repo.backlog(uow, name, new, skip):
                await asyncio.sleep(0.05)
                continue
        if unreadable:
            return done, sorted(unreadable), False
        # Give workers time to hear of the new key, then recount in a unit of
        # work holding the town's key lock exclusively: every transaction that
        # might still write without the new value has ended, and the recount
        # sees its rows.
        await asyncio.sleep(grace_seconds)
        async with db.tenant(names, exclusive=True) as uow:
            late = await repo.backlog(uow, name, new, skip)
        if late:
            continue
        # Switched in a transaction of its own, on the catalog: a transaction
        # begun since the recount started after the grace period, with both
        # index keys, and writes the new value too.
        async with db.catalog() as conn:
            # The key is erased, not only retired: unlike a data key it never
            # has to read anything again.
            await conn.execute(
                "UPDATE catalog.data_keys SET state = 'retired', wrapped = ''::bytea "
                "WHERE tenant_code = $1 AND kind = 'bidx' AND name = $2 AND version = $3",
                tenant,
                name,
                old,
            )
            await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", tenant)
        db.keyring.invalidate(tenant)
        return done, [], True


async def _clean(
    db: Database,
    tenant: str,
    name: str,
    old: int,
    *,
    batch: int,
    on_progress: Progress | None,
) -> int:
    """Step 4: erase the retired version's values from its column."""
    names = tenant_names(tenant, db.settings.role_prefix)
    repo = registry.index_hooks(name)
    async with db.tenant(names) as uow:
        total = await repo.stored(uow, name, old)
    cleared = 0
    if on_progress:
        on_progress("clean-up", cleared, total)
    while True:
        async with db.tenant(names) as uow:
            n = await repo.clear(uow, name, old, batch)
        cleared += n
        if on_progress:
            on_progress("clean-up", cleared, max(total, cleared))
        if n:
            continue
        # Rows locked by writers were skipped, and a worker that loaded its keys
        # just before the retirement may still write the old column: a last
        # pass in a unit of work holding the town's key lock exclusively (no
        # other unit of work is open, so no row is skipped).
        async with db.tenant(names, exclusive=True) as uow:
            while n := await repo.clear(uow, name, old, batch):
                cleared += n
            left = await repo.stored(uow, name, old)
        if left:  # locked by someone outside any unit of work: come back
            await asyncio.sleep(0.05)
            continue
        return cleared


async def rotate_index(
    db: Database,
    tenant: str,
    index: str,
    *,
    bits: int | None = None,
    batch: int = 500,
    grace_seconds: float = REENCRYPT_GRACE_SECONDS,
    on_progress: Progress | None = None,
) -> IndexRotationResult:
    """Rotate one blind index's key (resumable; see the module docstring).

    ``bits`` is the new index width; by default it is re-planned from the
    town's population (catalog), which may have grown since onboarding.
    Ignored when resuming a rotation already started.
    """
    name = index_name(index)
    if bits is not None and not MIN_BITS <= bits <= MAX_BITS:
        raise errors.invalid_field("/bits", m.BITS_BETWEEN(low=MIN_BITS, high=MAX_BITS))
    live = await _live_versions(db, tenant, name)
    if not live:
        raise errors.not_found(m.NO_SUCH_TOWN_OR_KEY)
    if not any(state == "decrypt" for _, state, _ in live):
        # A new version's column must start empty: finish an interrupted
        # clean-up (the column of the version before the active one) first.
        active, _, active_bits = next(v for v in live if v[1] == "active")
        names = tenant_names(tenant, db.settings.role_prefix)
        async with db.tenant(names) as uow:
            leftover = await registry.index_hooks(name).stored(uow, name, active + 1)
        if leftover:
            cleared = await _clean(
                db, tenant, name, active + 1, batch=batch, on_progress=on_progress
            )
            return IndexRotationResult(active, active_bits, 0, cleared, [], True, True)
    old, new, new_bits = await _start(db, tenant, name, bits)
    if index_column(name, old) == index_column(name, new):  # pragma: no cover - invariant
        raise RuntimeError("old and new index versions would share a column")
    filled, unreadable, retired = await _fill(
        db,
        tenant,
        name,
        old,
        new,
        batch=batch,
        grace_seconds=grace_seconds,
        on_progress=on_progress,
    )
    if not retired:
        return IndexRotationResult(new, new_bits, filled, 0, unreadable, False)
    # Workers stop writing the old column when they hear of the retirement.
    await asyncio.sleep(grace_seconds)
    cleared = await _clean(db, tenant, name, old, batch=batch, on_progress=on_progress)
    return IndexRotationResult(new, new_bits, filled, cleared, [], True)
