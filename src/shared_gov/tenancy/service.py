"""Tenant lifecycle operations used by both the CLI and the operator API.

- :func:`onboard` provisions one manifest (see :mod:`.provisioning`).
- :func:`migrate_all` brings the catalog to head, reads every tenant's
  revision from the catalog mirror in ONE query, and upgrades only the
  tenants that are behind, with bounded parallelism, each in its own
  transaction, continuing past failures.
- :func:`offboard` marks a town inactive, exports its data, then drops its
  schema and role. Catalog rows stay so audit records keep their context.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from shared_gov import errors
from shared_gov.db.engine import Database
from shared_gov.db.migrations.runner import CATALOG_SCHEMA, head, upgrade_catalog, upgrade_tenant
from shared_gov.logs import get_logger
from shared_gov.tenancy.manifest import Manifest
from shared_gov.tenancy.names import quote_ident, tenant_names
from shared_gov.tenancy.provisioning import ProvisionResult, provision

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
    async with db.engine().begin() as conn:
        # Serialise concurrent migrators (two operators, two deploy hooks).
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('shared_gov.catalog'))"))
        await conn.run_sync(upgrade_catalog)


async def onboard(db: Database, manifest: Manifest) -> ProvisionResult:
    """Provision ``manifest`` in one transaction; idempotent."""
    async with db.engine().begin() as conn:
        result: ProvisionResult = await conn.run_sync(
            provision, manifest, db.settings.role_prefix
        )
    log.info("tenant.onboard", tenant=result.code, outcome=result.outcome)
    return result


@dataclass(slots=True)
class MigrateReport:
    total: int = 0
    behind: int = 0
    upgraded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


async def migrate_all(
    db: Database,
    *,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[str, str | None], None] | None = None,
) -> MigrateReport:
    """Catalog first, then every active tenant that is behind the tenant head."""
    await migrate_catalog(db)
    target = head("tenant")
    async with db.engine().connect() as conn:
        rows = (
            await conn.execute(
                text(
                    f"SELECT code, schema_revision FROM {CATALOG_SCHEMA}.tenants "
                    "WHERE status = 'active' ORDER BY code"
                )
            )
        ).all()
    report = MigrateReport(total=len(rows))
    behind = [r.code for r in rows if r.schema_revision != target]
    report.behind = len(behind)
    if on_start:
        on_start(len(behind))
    limit = asyncio.Semaphore(max(1, db.settings.migrate_concurrency))

    async def one(code: str) -> None:
        async with limit:
            try:
                names = tenant_names(code, db.settings.role_prefix)
                async with db.engine().begin() as conn:
                    await conn.run_sync(upgrade_tenant, names)
            except Exception as exc:  # one town's failure must not stop the others
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                report.failed[code] = reason
                log.error("tenant.migrate_failed", tenant=code, error=type(exc).__name__)
                if on_done:
                    on_done(code, reason)
                return
            report.upgraded.append(code)
            if on_done:
                on_done(code, None)

    await asyncio.gather(*(one(code) for code in behind))
    return report


async def list_tenants(db: Database, *, include_offboarded: bool = False) -> list[TenantInfo]:
    where = "" if include_offboarded else "WHERE t.status <> 'offboarded'"
    async with db.catalog() as conn:
        rows = await conn.fetch(
            f"""
            SELECT t.code, t.name, t.name_kana, t.prefecture, t.population, t.status,
                   t.schema_revision,
                   COALESCE(json_agg(json_build_object('code', d.code, 'name', d.name)
                            ORDER BY d.code) FILTER (WHERE d.active), '[]') AS departments
            FROM {CATALOG_SCHEMA}.tenants t
            LEFT JOIN {CATALOG_SCHEMA}.departments d ON d.tenant_code = t.code
            {where}
            GROUP BY t.code ORDER BY t.code
            """
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


async def offboard(db: Database, code: str, export_dir: Path) -> Path:
    """Mark inactive, export everything to a JSON file, then drop schema and role."""
    names = tenant_names(code, db.settings.role_prefix)
    async with db.catalog() as conn:
        status = await conn.fetchval(
            f"UPDATE {CATALOG_SCHEMA}.tenants SET status = 'inactive', updated_at = now() "
            "WHERE code = $1 AND status <> 'offboarded' RETURNING status",
            code,
        )
    if status is None:
        raise errors.not_found("no such active tenant")
    export_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = export_dir / f"{code}-{stamp}.json"
    document: dict[str, Any] = {"tenant": code, "exported_at": stamp}
    async with db.tenant(names) as uow:
        for table, order in (
            ("households", "household_no"),
            ("residents", "atena_no"),
            ("resident_history", "resident_id, history_no"),
        ):
            rows = await uow.fetch(f"SELECT to_jsonb(x) AS j FROM {table} x ORDER BY {order}")
            document[table] = [r["j"] for r in rows]
    # The export holds personal data: readable by the operator account only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document, fh, ensure_ascii=False, default=str)
    role = quote_ident(names.role)
    async with db.engine().begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {quote_ident(names.schema)} CASCADE"))
        exists = (
            await conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": names.role})
        ).scalar()
        if exists:
            await conn.execute(text(f"DROP OWNED BY {role}"))
            await conn.execute(text(f"DROP ROLE {role}"))
        await conn.execute(
            text(
                f"UPDATE {CATALOG_SCHEMA}.tenants SET status = 'offboarded', "
                "schema_revision = NULL, offboarded_at = now(), updated_at = now() "
                "WHERE code = :c"
            ),
            {"c": code},
        )
    log.info("tenant.offboard", tenant=code, export=path.name)
    return path
