"""Tenant lifecycle operations used by both the CLI and the operator API.

- :func:`onboard` provisions one manifest (see :mod:`.provisioning`).
- :func:`migrate_all` brings the catalog to head, reads every tenant's
  revision from the catalog mirror in ONE query, and upgrades only the
  tenants that are behind, with bounded parallelism, each in its own
  transaction, continuing past failures.
- :func:`offboard` marks a town inactive and revokes its sharing agreements,
  exports its data, then drops its schema and role and destroys its keys,
  each step an event in the town's log. Catalog rows stay so audit records
  keep their context.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared_gov import errors
from shared_gov.audit.recorder import Actor, operator_actor
from shared_gov.crypto.keyring import keyring_of
from shared_gov.crypto.providers import KeyNotFound
from shared_gov.db.engine import Database, sqlalchemy_engine
from shared_gov.db.migrations.runner import head, upgrade_catalog, upgrade_tenant
from shared_gov.domains import registry
from shared_gov.logs import get_logger
from shared_gov.messages import identity as mi
from shared_gov.policy import agreements
from shared_gov.tenancy.manifest import Manifest
from shared_gov.tenancy.provisioning import IdentityChangeRefused, ProvisionResult, provision
from shared_gov.towns.changes import change_event, record_change, record_refusal, refusal_event
from shared_gov.towns.names import TenantNames, quote_ident, tenant_names

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TenantInfo:
    code: str
    name: str
    name_kana: str
    prefecture: str
    population: int
    status: str
    schema_revision: str | None
    departments: list[dict[str, str]]


async def migrate_catalog(db: Database) -> None:
    async with _lock(), db.engine().begin() as conn:
        # Serialise concurrent migrators (two operators, two deploy hooks).
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('shared_gov.catalog'))"))
        await conn.run_sync(upgrade_catalog, db.settings.role_prefix)


async def onboard(db: Database, manifest: Manifest, actor: Actor | None = None) -> ProvisionResult:
    """Provision ``manifest`` in one transaction; idempotent.

    ``actor`` is who asks (the operator's token, or the operating-system user
    of a command); the creation or update is recorded in the town's audit log
    with it, and so is a refused change of an existing town's identity.
    """
    who = actor or operator_actor("tenants onboard")
    try:
        async with _lock(), db.engine().begin() as conn:
            result: ProvisionResult = await conn.run_sync(
                lambda sync: provision(
                    sync,
                    manifest,
                    db.settings.role_prefix,
                    keyring_of(db),
                    actor=who,
                    manifest_issuer=db.settings.is_dev,
                    audit=db.settings.audit,
                )
            )
    except IdentityChangeRefused as exc:
        event = refusal_event(
            "tenant.update",
            "tenant",
            manifest.code,
            exc.requested,
            "; ".join(exc.reasons),
            "denied",
        )
        await record_refusal(db, manifest.code, who, event)
        log.warning("tenant.onboard_refused", tenant=manifest.code)
        raise
    log.info("tenant.onboard", tenant=result.code, outcome=result.outcome)
    return result


@dataclass(slots=True)
class MigrateReport:
    total: int = 0
    behind: int = 0
    upgraded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


# Alembic installs its ``op``/``context`` proxies module-globally, so two
# migrations interleaved on one event loop would write through each other's
# context. Within a process they are serialised by this lock; parallelism
# comes from worker processes (see :func:`migrate_all`).
_alembic_lock: asyncio.Lock | None = None


def _lock() -> asyncio.Lock:
    global _alembic_lock
    if _alembic_lock is None:
        _alembic_lock = asyncio.Lock()
    return _alembic_lock


def tenant_head() -> str:
    """The tenant tree's head with every installed domain's revisions."""
    return head("tenant", registry.migration_dirs())


async def _upgrade_one(
    engine: AsyncEngine,
    names: TenantNames,
    domains: Sequence[Path] | None = None,
    append_only: Sequence[str] | None = None,
) -> None:
    folders = registry.migration_dirs() if domains is None else domains
    histories = registry.append_only_tables() if append_only is None else append_only
    async with _lock(), engine.begin() as conn:
        await conn.run_sync(upgrade_tenant, names, folders, histories)


async def provision_keys(db: Database, code: str) -> int:
    """Give town ``code`` the keys of every declared column and index it lacks.

    A domain installed after the town was onboarded brings encrypted columns
    and blind indexes the town has no key for, and a town missing a declared
    key cannot be entered at all (``Keyring.town`` refuses it): every upgrade
    therefore provisions, as onboarding does. Returns the keys created; every
    worker hears of them (they reload the town's keys).
    """
    async with db.engine().begin() as conn:
        population = (
            await conn.execute(
                text("SELECT population FROM catalog.tenants WHERE code = :c"), {"c": code}
            )
        ).scalar_one()
        created: int = await conn.run_sync(
            lambda sync: keyring_of(db).provision(sync, code, population)
        )
        if created:
            await conn.execute(text("SELECT pg_notify('shared_gov_policy', :c)"), {"c": code})
    if created:
        db.keyring.invalidate(code)
    return created


async def upgrade_town(db: Database, code: str) -> str:
    """Bring one town to the tenant head (every installed domain's branch included)
    and provision the keys it lacks; returns the revision mirrored in the catalog."""
    await _upgrade_one(db.engine(), tenant_names(code, db.settings.role_prefix))
    await provision_keys(db, code)
    return tenant_head()


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"


# --- worker processes -------------------------------------------------------
_worker_state: dict[str, Any] = {}


def _worker_upgrade(
    url: str,
    role_prefix: str,
    code: str,
    domains: Sequence[str] = (),
    append_only: Sequence[str] = (),
) -> str | None:
    """Runs in a worker process: upgrade one tenant, return None or the failure.

    ``domains``, ``append_only``: the parent's domain revision folders and
    append-only tables (a domain installed at run time, in tests, is not
    installed in a spawned worker).
    """
    loop = _worker_state.get("loop")
    if loop is None:
        loop = _worker_state["loop"] = asyncio.new_event_loop()
        _worker_state["engine"] = sqlalchemy_engine(url, pool_size=1)
    try:
        names = tenant_names(code, role_prefix)
        folders = [Path(d) for d in domains]
        loop.run_until_complete(
            _upgrade_one(_worker_state["engine"], names, folders, list(append_only))
        )
    except Exception as exc:
        return _failure(exc)
    return None


async def migrate_all(
    db: Database,
    *,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[str, str | None], None] | None = None,
) -> MigrateReport:
    """Catalog first, then every active tenant that is behind the tenant head.

    All revisions come from the catalog mirror in one query, so a no-op run
    costs one query however many towns there are. Tenants that are behind
    are upgraded each in its own transaction, in up to
    ``SHARED_GOV_MIGRATE_CONCURRENCY`` worker processes when there are many,
    and one town's failure never stops the others.
    """
    await migrate_catalog(db)
    target = tenant_head()
    async with db.engine().connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT code, schema_revision FROM catalog.tenants "
                    "WHERE status = 'active' ORDER BY code"
                )
            )
        ).all()
    report = MigrateReport(total=len(rows))
    behind = [r.code for r in rows if r.schema_revision != target]
    report.behind = len(behind)
    if on_start:
        on_start(len(behind))

    def record(code: str, failure: str | None) -> None:
        if failure is None:
            report.upgraded.append(code)
        else:
            report.failed[code] = failure
            log.error("tenant.migrate_failed", tenant=code)
        if on_done:
            on_done(code, failure)

    workers = min(db.settings.migrate_concurrency, len(behind) // PER_WORKER_MINIMUM)
    if workers <= 1:
        for code in behind:
            try:
                await upgrade_town(db, code)
            except Exception as exc:  # one town's failure must not stop the others
                record(code, _failure(exc))
            else:
                record(code, None)
        return report
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            code: loop.run_in_executor(
                pool,
                _worker_upgrade,
                db.url,
                db.settings.role_prefix,
                code,
                [str(d) for d in registry.migration_dirs()],
                list(registry.append_only_tables()),
            )
            for code in behind
        }
        for code, future in futures.items():
            try:
                failure = await future
                if failure is None:
                    await provision_keys(db, code)  # the keyring is this process's
            except Exception as exc:  # a crashed worker fails its towns, not the run
                failure = _failure(exc)
            record(code, failure)
    return report


# Below this many tenants per worker, process start-up costs more than it saves.
PER_WORKER_MINIMUM = 20


async def list_tenants(db: Database, *, include_offboarded: bool = False) -> list[TenantInfo]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            """
            SELECT t.code, t.name, t.name_kana, t.prefecture, t.population, t.status,
                   t.schema_revision,
                   COALESCE(json_agg(json_build_object('code', d.code, 'name', d.name)
                            ORDER BY d.code) FILTER (WHERE d.active), '[]') AS departments
            FROM catalog.tenants t
            LEFT JOIN catalog.departments d ON d.tenant_code = t.code
            WHERE $1 OR t.status <> 'offboarded'
            GROUP BY t.code ORDER BY t.code
            """,
            include_offboarded,
        )
    return [
        TenantInfo(
            code=r["code"],
            name=r["name"],
            name_kana=r["name_kana"],
            prefecture=r["prefecture"],
            population=r["population"],
            status=r["status"],
            schema_revision=r["schema_revision"],
            departments=json.loads(r["departments"])
            if isinstance(r["departments"], str)
            else r["departments"],
        )
        for r in rows
    ]


async def conn_status(db: Database, code: str) -> str | None:
    async with db.catalog() as conn:
        status: str | None = await conn.fetchval(
            "SELECT status FROM catalog.tenants WHERE code = $1", code
        )
    return status


def _signing_public_key(db: Database, code: str) -> bytes | None:
    try:
        return keyring_of(db).provider.signing_public_key(code)
    except KeyNotFound:
        return None


async def offboard(db: Database, code: str, export_dir: Path, actor: Actor | None = None) -> Path:
    """Mark inactive, export everything to a JSON file, drop schema and role, destroy keys.

    Each step leaves its trace in the town's log, which outlives the town
    (docs/audit.md, "Incarnations"), written before the town's role and keys
    are gone: ``tenant.offboard`` (the status change, with every sharing
    agreement it revoked), ``tenant.export`` (how many records, to which file,
    its SHA-256; no personal value) and ``tenant.keys_destroy`` (the key
    destruction, with the incarnation's public signing key's fingerprint).

    Every agreement the town is party to is revoked in the first transaction,
    with the status change (:func:`agreements.revoke_all`: an event in the
    other party's log too), and again in the last one for any that raced it;
    a re-created town is a new incarnation and inherits none (catalog c0014).
    Pending one-stop move-outs of other towns to this town are bound to this
    incarnation (tenant t0010) and never confirmable by a later one.
    """
    who = actor or operator_actor("tenants offboard")
    names = tenant_names(code, db.settings.role_prefix)
    async with db.catalog() as conn:
        # Revoking waits for cross-town reads in flight; no request timeout here.
        await conn.execute("SET LOCAL statement_timeout = 0")
        status = await conn.fetchval(
            "UPDATE catalog.tenants SET status = 'inactive', updated_at = now() "
            "WHERE code = $1 AND status <> 'offboarded' RETURNING status",
            code,
        )
        if status is not None:
            revoked = await agreements.revoke_all(db, conn, code, who.subject, who)
            await record_change(
                conn,
                db,
                code,
                who,
                change_event(
                    "tenant.offboard",
                    "tenant",
                    code,
                    {"status": "active"},
                    {"status": "inactive", "agreements_revoked": revoked},
                ),
            )
        # Every worker drops the town from its caches now: an inactive town's
        # tokens are refused from the next request on, not after the export.
        await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", code)
    if status is None:
        offboarded = await conn_status(db, code) == "offboarded"
        if offboarded:
            # Re-running finishes an interrupted crypto-shredding (idempotent).
            keyring_of(db).provider.destroy(code)
            db.keyring.invalidate(code)
            raise errors.conflict(mi.ALREADY_OFFBOARDED)
        raise errors.not_found(mi.NO_SUCH_ACTIVE_TENANT)
    export_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, tiny
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = export_dir / f"{code}-{stamp}.json"
    document: dict[str, Any] = {"tenant": code, "exported_at": stamp}
    async with db.tenant(names) as uow:
        # Each installed domain exports its own records (declared in its spec).
        for _domain, export in registry.exporters():
            document.update(await export(uow))
    # The export holds personal data: readable by the operator account only.
    encoded = json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(encoded)
    exported = {
        "file": str(path.resolve()),
        "sha256": hashlib.sha256(encoded).hexdigest(),
        "households": len(document.get("households", [])),
        "residents": len(document.get("residents", [])),
        "history_entries": len(document.get("resident_history", [])),
    }
    role = quote_ident(names.role)
    # The incarnation's public signing key outlives its private key, so its
    # audit log stays verifiable (docs/audit.md, "Incarnations").
    public_key = await asyncio.to_thread(_signing_public_key, db, code)
    async with db.catalog() as conn:
        await conn.execute("SET LOCAL statement_timeout = 0")
        incarnation = await conn.fetchval(
            "SELECT incarnation FROM catalog.tenants WHERE code = $1 FOR UPDATE", code
        )
        # An agreement that raced the first step (none should: see revoke_all).
        late = await agreements.revoke_all(db, conn, code, who.subject, who)
        # The town's last events, while its role exists and before its keys go.
        await record_change(
            conn,
            db,
            code,
            who,
            change_event("tenant.export", "tenant", code, None, exported),
        )
        await record_change(
            conn,
            db,
            code,
            who,
            change_event(
                "tenant.keys_destroy",
                "tenant",
                code,
                {"status": "inactive", "keys": "present", "incarnation": incarnation},
                {
                    "status": "offboarded",
                    "keys": "destroyed",
                    "incarnation": incarnation,
                    "public_signing_key_sha256": hashlib.sha256(public_key).hexdigest()
                    if public_key is not None
                    else None,
                    "agreements_revoked": late,
                },
            ),
        )
        if public_key is not None:
            await conn.execute(
                "INSERT INTO audit.incarnation_keys (tenant, incarnation, public_key) "
                "SELECT code, incarnation, $2 FROM catalog.tenants WHERE code = $1 "
                "ON CONFLICT DO NOTHING",
                code,
                public_key,
            )
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(names.schema)} CASCADE")
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", names.role):
            await conn.execute(f"DROP OWNED BY {role}")
            await conn.execute(f"DROP ROLE {role}")
        await conn.execute(
            "UPDATE catalog.tenants SET status = 'offboarded', "
            "schema_revision = NULL, offboarded_at = now(), updated_at = now() "
            "WHERE code = $1",
            code,
        )
        await conn.execute("DELETE FROM catalog.data_keys WHERE tenant_code = $1", code)
        await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", code)
    # Crypto-shredding, after the commit (a rolled-back offboarding must keep its
    # keys): without the KEK no copy of the town's data — in a backup, a dump,
    # a replica — can be decrypted again.
    keyring_of(db).provider.destroy(code)
    db.keyring.invalidate(code)
    log.info("tenant.offboard", tenant=code, export=path.name, keys="destroyed")
    return path
