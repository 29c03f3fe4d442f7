"""Staff permissions: purposes granted per department and per person.

As the resident-records standard asks, permissions are granted per person and
per organisation, never by rank. A staff member's purposes are their
department's (if the department is active) plus their own grants; a person
can also be suspended (``active = false``: no purposes at all). If the
platform has a department on file for the person and the token names another
one, the department's purposes are not granted — the identity provider and
the town's records disagree, and the safe answer is less.

A person is found by their :func:`~shared_gov.auth.subjects.person_key`,
never by the exact spelling of a subject: the token ``E-3`` is the suspended
``e-3``, and the purposes granted to ``a-0001`` are those of ``A-0001``
(``catalog.staff`` holds one record per key).

Permissions live in the catalog and are cached per town in each process;
changes invalidate the cache locally and, through LISTEN/NOTIFY, in every
other worker (see :mod:`shared_gov.db.notify`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from shared_gov import errors
from shared_gov.audit.recorder import Actor, AuditEvent, record_apart
from shared_gov.auth.principal import Principal
from shared_gov.auth.subjects import person_key
from shared_gov.db.engine import Database
from shared_gov.logs import get_logger
from shared_gov.messages import tokens as mt

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StaffRecord:
    staff_id: str
    department: str | None
    active: bool
    purposes: frozenset[str]


@dataclass(slots=True)
class TownPermissions:
    departments: dict[str, frozenset[str]] = field(default_factory=dict)
    """Active departments and their purposes."""
    staff: dict[str, StaffRecord] = field(default_factory=dict)
    """Per-person records by person key (never by a subject's exact spelling)."""

    def record_of(self, subject: str) -> StaffRecord | None:
        """The town's record of the person ``subject`` names, in any spelling."""
        return self.staff.get(person_key(subject))

    def suspended(self, staff_id: str) -> bool:
        """Whether the town suspended ``staff_id`` (refused for every role, everywhere)."""
        record = self.record_of(staff_id)
        return record is not None and not record.active

    def purposes_for(self, staff_id: str, department: str | None) -> frozenset[str]:
        record = self.record_of(staff_id)
        if record is not None and not record.active:
            return frozenset()
        granted: frozenset[str] = frozenset()
        dept_ok = record is None or record.department is None or record.department == department
        if department and dept_ok:
            granted = self.departments.get(department, frozenset())
        if record is not None:
            granted = granted | record.purposes
        return granted


class PermissionStore:
    """Per-town permission snapshots, loaded on first use and on invalidation."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._towns: dict[str, TownPermissions] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # A load that raced an invalidation must not store what it read.
        self._generation = 0

    def invalidate(self, tenant: str = "*") -> None:
        self._generation += 1
        if tenant == "*":
            self._towns.clear()
        else:
            self._towns.pop(tenant, None)

    async def town(self, tenant: str) -> TownPermissions:
        cached = self._towns.get(tenant)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(tenant, asyncio.Lock())
        async with lock:
            while (cached := self._towns.get(tenant)) is None:
                generation = self._generation
                loaded = await self._load(tenant)
                if generation == self._generation:
                    self._towns[tenant] = loaded
        return cached

    async def _load(self, tenant: str) -> TownPermissions:
        async with self._db.catalog() as conn:
            depts = await conn.fetch(
                """
                SELECT d.code, COALESCE(array_agg(p.purpose) FILTER (WHERE p.purpose IS NOT NULL),
                                        '{}') AS purposes
                FROM catalog.departments d
                LEFT JOIN catalog.department_purposes p
                       ON p.tenant_code = d.tenant_code AND p.department = d.code
                WHERE d.tenant_code = $1 AND d.active
                GROUP BY d.code
                """,
                tenant,
            )
            staff = await conn.fetch(
                "SELECT staff_id, person_key, department, active, purposes FROM catalog.staff "
                "WHERE tenant_code = $1",
                tenant,
            )
        return TownPermissions(
            departments={r["code"]: frozenset(r["purposes"]) for r in depts},
            staff={
                r["person_key"]: StaffRecord(
                    r["staff_id"], r["department"], r["active"], frozenset(r["purposes"])
                )
                for r in staff
            },
        )


async def admit(connection: Any, principal: Principal) -> None:
    """After the token verified: refuse callers whose town or person is not in service.

    Called by the authentication middleware on every request, so that no
    endpoint — resident, event feed, audit log, administration, agreements —
    can forget it:

    - a town that is not active (being offboarded, offboarded, unknown): 401,
      as if the token were invalid — its tokens authenticate nobody;
    - a suspended person (``catalog.staff.active = false``): 403 for every
      role (staff, admin, auditor, integration), recorded as a denied
      ``authenticate`` event in the town's log with the person's id.

    Both answers come from in-memory caches (the active towns, the town's
    permission snapshot) that changes invalidate through NOTIFY.
    """
    if principal.tenant is None:  # operators belong to no town
        return
    svc = connection.app.state.services
    names = await svc.registry.get(principal.tenant)
    if names is None:
        log.info("auth.rejected", reason="town_not_active", issuer_tenant=principal.tenant)
        raise errors.unauthorized(mt.TOWN_NOT_ACTIVE)
    client = connection.client.host if connection.client else None
    actor = Actor(
        subject=principal.subject,
        tenant=principal.tenant,
        department=principal.department,
        roles=tuple(sorted(principal.roles)),
        auth_strength="mfa" if principal.mfa else "single",
        client_addr=client,
        user_agent=connection.headers.get("user-agent"),
        purpose=None,
    )
    try:
        town = await svc.permissions.town(principal.tenant)
    except errors.DomainError:
        raise  # 503: the catalog is unreachable; nothing was decided
    except Exception as exc:
        # Fail closed, and audited: a request of the town's that failed.
        if svc.settings.audit:
            event = AuditEvent(
                action="authenticate",
                resource_type="token",
                outcome="error",
                reason=f"internal error ({type(exc).__name__})",
            )
            await record_apart(svc.db, names, actor, event)
        raise
    if not town.suspended(principal.subject):
        return
    if svc.settings.audit:
        event = AuditEvent(
            action="authenticate", resource_type="token", outcome="denied", reason="suspended"
        )
        await record_apart(svc.db, names, actor, event)
    raise errors.forbidden(mt.SUSPENDED)
