"""A town's administration of its own permissions: departments and staff.

Tenant admins grant purposes per department and per person (never by rank,
as 住民記録システム標準仕様書 requires). Every change is one catalog
transaction that also records the change — with the permission before and
after — in the town's audit log (:mod:`shared_gov.towns.changes`) and
commits a ``pg_notify`` so every worker drops its cached permissions and
decisions; the caller's process invalidates at once.

A staff record is found by the person key of the id in the path
(:func:`~shared_gov.auth.subjects.person_key`), so every spelling of one
person reaches the one record: ``PUT …/staff/A-0001`` when ``a-0001`` is on
record changes ``a-0001`` (the stored spelling stays, and the answer and the
audit event name it), and nobody gets a second record beside their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared_gov import errors
from shared_gov.audit.recorder import Actor
from shared_gov.auth.subjects import person_key
from shared_gov.db.engine import Database
from shared_gov.messages import access as m
from shared_gov.policy.purposes import purposes
from shared_gov.towns import changes

_NOTIFY = "SELECT pg_notify('shared_gov_policy', $1)"
# The town's provisioning lock: a manifest, an enrolment and an admin change
# of the same town never interleave.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.tenant.' || $1::text, 0))"


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
        errors.FieldError(f"{pointer}/{i}", m.UNKNOWN_PURPOSE)
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


def _department_state(row: Any) -> dict[str, object] | None:
    if row is None:
        return None
    return {"name": row["name"], "active": row["active"], "purposes": sorted(row["purposes"])}


async def put_department(
    db: Database,
    tenant: str,
    code: str,
    name: str,
    granted: list[str],
    active: bool,
    actor: Actor,
) -> DepartmentInfo:
    """Create or update a department and replace its purposes (audited, same transaction)."""
    _check_purposes(granted, "/purposes")
    async with db.catalog() as conn:
        await conn.execute(_LOCK, tenant)
        before = await conn.fetchrow(
            "SELECT d.name, d.active, COALESCE(array_agg(p.purpose ORDER BY p.purpose) "
            "FILTER (WHERE p.purpose IS NOT NULL), '{}') AS purposes "
            "FROM catalog.departments d LEFT JOIN catalog.department_purposes p "
            "ON p.tenant_code = d.tenant_code AND p.department = d.code "
            "WHERE d.tenant_code = $1 AND d.code = $2 GROUP BY d.name, d.active",
            tenant,
            code,
        )
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
        after = {"name": name, "active": active, "purposes": sorted(set(granted))}
        event = changes.change_event(
            "admin.department", "department", code, _department_state(before), after
        )
        await changes.record_change(conn, db, tenant, actor, event)
        await conn.execute(_NOTIFY, tenant)
    return DepartmentInfo(code, name, active, sorted(set(granted)))


def staff_state(row: Any) -> dict[str, object] | None:
    """A person's permission as an audit event shows it (never the free-text note)."""
    if row is None:
        return None
    return {
        "department": row["department"],
        "active": row["active"],
        "purposes": sorted(row["purposes"]),
    }


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


def staff_key(staff_id: str) -> str:
    """The person key of a staff id from a request; 422 when it names nobody."""
    key = person_key(staff_id)
    if not key:
        raise errors.invalid_field("/path/staff_id", m.NAMES_NOBODY)
    return key


async def get_staff(db: Database, tenant: str, staff_id: str) -> StaffInfo:
    async with db.catalog() as conn:
        row = await conn.fetchrow(
            "SELECT staff_id, department, active, purposes, note FROM catalog.staff "
            "WHERE tenant_code = $1 AND person_key = $2",
            tenant,
            staff_key(staff_id),
        )
    if row is None:
        raise errors.not_found(m.NO_PERMISSIONS_RECORDED)
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
    actor: Actor,
) -> StaffInfo:
    """Record a person's department, extra purposes, or suspension (audited, same transaction).

    ``staff_id`` in any spelling of a person on record changes that record
    (see the module docstring); the answer names the stored spelling.
    """
    _check_purposes(granted, "/purposes")
    key = staff_key(staff_id)
    async with db.catalog() as conn:
        await conn.execute(_LOCK, tenant)
        if department is not None:
            exists = await conn.fetchval(
                "SELECT 1 FROM catalog.departments WHERE tenant_code = $1 AND code = $2",
                tenant,
                department,
            )
            if not exists:
                raise errors.invalid_field("/department", m.NO_SUCH_DEPARTMENT)
        before = await conn.fetchrow(
            "SELECT staff_id, department, active, purposes FROM catalog.staff "
            "WHERE tenant_code = $1 AND person_key = $2 FOR UPDATE",
            tenant,
            key,
        )
        # The town's lock serialises writers; the unique (tenant, person_key)
        # index is the guarantee: one record per person.
        row = await conn.fetchrow(
            "INSERT INTO catalog.staff "
            "(tenant_code, staff_id, person_key, department, active, purposes, note) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_code, person_key) "
            "DO UPDATE SET department = EXCLUDED.department, active = EXCLUDED.active, "
            "purposes = EXCLUDED.purposes, note = EXCLUDED.note, updated_at = now() "
            "RETURNING staff_id, department, active, purposes, note",
            tenant,
            staff_id,
            key,
            department,
            active,
            sorted(set(granted)),
            note,
        )
        event = changes.change_event(
            "admin.staff", "staff", row["staff_id"], staff_state(before), staff_state(row)
        )
        await changes.record_change(conn, db, tenant, actor, event)
        await conn.execute(_NOTIFY, tenant)
    return _staff(row)


async def delete_staff(db: Database, tenant: str, staff_id: str, actor: Actor) -> None:
    """Forget a person's own permissions (their department's still apply); audited."""
    key = staff_key(staff_id)
    async with db.catalog() as conn:
        await conn.execute(_LOCK, tenant)
        deleted = await conn.fetchrow(
            "DELETE FROM catalog.staff WHERE tenant_code = $1 AND person_key = $2 "
            "RETURNING staff_id, department, active, purposes",
            tenant,
            key,
        )
        if not deleted:
            raise errors.not_found(m.NO_PERMISSIONS_RECORDED)
        event = changes.change_event(
            "admin.staff.delete", "staff", deleted["staff_id"], staff_state(deleted), None
        )
        await changes.record_change(conn, db, tenant, actor, event)
        await conn.execute(_NOTIFY, tenant)


async def own_department(db: Database, tenant: str, staff_id: str) -> str | None:
    """The department the town's records pin ``staff_id`` (any spelling) to, if any."""
    async with db.catalog() as conn:
        value: str | None = await conn.fetchval(
            "SELECT department FROM catalog.staff WHERE tenant_code = $1 AND person_key = $2",
            tenant,
            person_key(staff_id),
        )
    return value
