"""A town's e-invoice settings, accounting units and approval levels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from shared_gov.db import TenantUnitOfWork

from ..models import (
    AccountingUnit,
)

# --- settings, accounting units, approval levels ----------------------------------------


@dataclass(slots=True)
class TownSettings:
    t_number_severity: str
    default_unit: str | None
    version: int


async def settings(uow: TenantUnitOfWork) -> TownSettings:
    row = await uow.fetchrow(
        "SELECT t_number_severity, default_unit, version FROM invoice_settings"
    )
    if row is None:  # pragma: no cover - the migration inserts the row
        return TownSettings("warning", None, 0)
    return TownSettings(row["t_number_severity"], row["default_unit"], row["version"])


async def update_settings(
    uow: TenantUnitOfWork, t_number_severity: str, default_unit: str | None, version: int
) -> TownSettings | None:
    row = await uow.fetchrow(
        "UPDATE invoice_settings SET t_number_severity = $1, default_unit = $2, "
        "version = version + 1 WHERE version = $3 "
        "RETURNING t_number_severity, default_unit, version",
        t_number_severity,
        default_unit,
        version,
    )
    return None if row is None else TownSettings(*row)


def _unit(row: asyncpg.Record) -> AccountingUnit:
    return AccountingUnit(row["code"], row["name"], row["needs_qualified"], row["retention_years"])


async def put_unit(uow: TenantUnitOfWork, unit: AccountingUnit) -> AccountingUnit:
    row = await uow.fetchrow(
        "INSERT INTO accounting_units (code, name, needs_qualified, retention_years) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO UPDATE SET name = excluded.name, "
        "needs_qualified = excluded.needs_qualified, retention_years = excluded.retention_years "
        "RETURNING code, name, needs_qualified, retention_years",
        unit.code,
        unit.name,
        unit.needs_qualified,
        unit.retention_years,
    )
    assert row is not None  # noqa: S101 - RETURNING always yields the row
    return _unit(row)


async def unit(uow: TenantUnitOfWork, code: str) -> AccountingUnit | None:
    row = await uow.fetchrow(
        "SELECT code, name, needs_qualified, retention_years FROM accounting_units WHERE code = $1",
        code,
    )
    return None if row is None else _unit(row)


async def units(uow: TenantUnitOfWork) -> list[AccountingUnit]:
    rows = await uow.fetch(
        "SELECT code, name, needs_qualified, retention_years FROM accounting_units ORDER BY code"
    )
    return [_unit(r) for r in rows]


async def approval_levels(uow: TenantUnitOfWork) -> list[tuple[int, int | None]]:
    rows = await uow.fetch("SELECT level, up_to FROM approval_levels ORDER BY level")
    return [(r["level"], r["up_to"]) for r in rows]


async def set_approval_levels(
    uow: TenantUnitOfWork, levels: Sequence[tuple[int, int | None]]
) -> None:
    await uow.execute("DELETE FROM approval_levels")
    await uow.executemany(
        "INSERT INTO approval_levels (level, up_to) VALUES ($1, $2)", list(levels)
    )
