"""A town's administration of its own permissions: departments and staff.

Tenant admins grant purposes per department and per person (never by rank,
as 住民記録システム標準仕様書 requires). Every change is one catalog
transaction that also commits a ``pg_notify`` so every worker drops its
cached permissions and decisions; the caller's process invalidates at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared_gov import errors
from shared_gov.db.engine import Database
from shared_gov.policy.purposes import purposes

_NOTIFY = "SELECT pg_notify('shared_gov_policy', $1)"


@dataclass(frozen=True, slots=True)
class DepartmentInfo:
    code: str
    name: str
    active: bool
    purposes: list[str]


@dataclass(frozen=True, slots=True)
class StaffInfo:
    staff_id: str
    department: str | None
    active: bool
    purposes: list[str]
    note: str | None


def _check_purposes(codes: list[str], pointer: str) -> None:
    known = purposes()
    bad = [
        errors.FieldError(f"{pointer}/{i}", "unknown purpose")
        for i, code in enumerate(codes)
        if code not in known
    ]
    if bad:
        raise errors.invalid(bad)


async def list_departments(db: Database, tenant: str) -> list[DepartmentInfo]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            """
            SELECT d.code, d.name, d.active,
                   COALESCE(array_agg(p.purpose ORDER BY p.purpose)
                            FILTER (WHERE p.purpose IS NOT NULL), '{}') AS purposes
            FROM catalog.departments d
            LEFT JOIN catalog.department_purposes p
                   ON p.tenant_code = d.tenant_code AND p.department = d.code
            WHERE d.tenant_code = $1
            GROUP BY d.code, d.name, d.active ORDER BY d.code
            """,
            tenant,
        )
    return [DepartmentInfo(r["code"], r["name"], r["active"], list(r["purposes"])) for r in rows]


async def put_department(
    db: Database, tenant: str, code: str, name: str, granted: list[str], active: bool
) -> DepartmentInfo:
    """Create or update a department and replace its purposes."""
    _check_purposes(granted, "/purposes")
    async with db.catalog() as conn:
        await conn.execute(
            "INSERT INTO catalog.departments (tenant_code, code, name, active) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_code, code) "
            "DO UPDATE SET name = EXCLUDED.name, active = EXCLUDED.active",
            tenant,
            code,
            name,
            active,
        )
        await conn.execute(
            "DELETE FROM catalog.department_purposes WHERE tenant_code = $1 AND department = $2",
            tenant,
            code,
        )
        await conn.execute(
            "INSERT INTO catalog.department_purposes (tenant_code, department, purpose) "
            "SELECT $1, $2, unnest($3::text[])",
            tenant,
            code,
            sorted(set(granted)),
        )
        await conn.execute(_NOTIFY, tenant)
    return DepartmentInfo(code, name, active, sorted(set(granted)))


def _staff(row: Any) -> StaffInfo:
    return StaffInfo(
        row["staff_id"], row["department"], row["active"], sorted(row["purposes"]), row["note"]
    )


async def list_staff(db: Database, tenant: str) -> list[StaffInfo]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT staff_id, department, active, purposes, note FROM catalog.staff "
            "WHERE tenant_code = $1 ORDER BY staff_id",
            tenant,
        )
    return [_staff(r) for r in rows]


async def get_staff(db: Database, tenant: str, staff_id: str) -> StaffInfo:
    async with db.catalog() as conn:
        row = await conn.fetchrow(
            "SELECT staff_id, department, active, purposes, note FROM catalog.staff "
            "WHERE tenant_code = $1 AND staff_id = $2",
            tenant,
            staff_id,
        )
    if row is None:
        raise errors.not_found("no permissions are recorded for this staff member")
    return _staff(row)


async def put_staff(
    db: Database,
    tenant: str,
    staff_id: str,
    *,
    department: str | None,
    active: bool,
    granted: list[str],
    note: str | None,
) -> StaffInfo:
    """Record a person's department, extra purposes, or suspension."""
    _check_purposes(granted, "/purposes")
    async with db.catalog() as conn:
        if department is not None:
            exists = await conn.fetchval(
                "SELECT 1 FROM catalog.departments WHERE tenant_code = $1 AND code = $2",
                tenant,
                department,
            )
            if not exists:
                raise errors.invalid_field("/department", "no such department in this town")
        row = await conn.fetchrow(
            "INSERT INTO catalog.staff (tenant_code, staff_id, department, active, purposes, note) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_code, staff_id) DO UPDATE SET "
            "department = EXCLUDED.department, active = EXCLUDED.active, "
            "purposes = EXCLUDED.purposes, note = EXCLUDED.note, updated_at = now() "
            "RETURNING staff_id, department, active, purposes, note",
            tenant,
            staff_id,
            department,
            active,
            sorted(set(granted)),
            note,
        )
        await conn.execute(_NOTIFY, tenant)
    return _staff(row)


async def delete_staff(db: Database, tenant: str, staff_id: str) -> None:
    """Forget a person's own permissions (their department's still apply)."""
    async with db.catalog() as conn:
        deleted = await conn.fetchval(
            "DELETE FROM catalog.staff WHERE tenant_code = $1 AND staff_id = $2 RETURNING 1",
            tenant,
            staff_id,
        )
        if not deleted:
            raise errors.not_found("no permissions are recorded for this staff member")
        await conn.execute(_NOTIFY, tenant)
