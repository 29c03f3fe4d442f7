"""Town administration endpoints: departments, staff permissions, purposes,
and the explanation of a decision (what a town admin uses when staff ask why
they cannot see something)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from shared_gov import errors
from shared_gov.api.entry import DEPARTMENTS, STAFF, Entry, audited
from shared_gov.auth.principal import Principal
from shared_gov.auth.subjects import same_person
from shared_gov.messages import access as m
from shared_gov.policy import admin
from shared_gov.policy.explain import FieldExplanation, explain_staff
from shared_gov.policy.purposes import purposes
from shared_gov.validation import NO_NUL_PATTERN, NoNul

DEPT_CODE = r"^[a-z][a-z0-9_]{1,31}\Z"
DeptCode = Annotated[str, msgspec.Meta(pattern=DEPT_CODE)]
# Path parameters take their rules from PathParameter: Litestar ignored the
# msgspec.Meta of FromPath[DeptCode], so "abc\n" became a department code and
# a NUL in a staff id reached the database (a 500).
DeptPath = Annotated[str, PathParameter(pattern=DEPT_CODE)]
StaffPath = Annotated[str, PathParameter(min_length=1, max_length=128, pattern=NO_NUL_PATTERN)]


class DepartmentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64), NoNul]
    purposes: list[str] = msgspec.field(default_factory=list)
    active: bool = True


class DepartmentOut(msgspec.Struct, kw_only=True):
    code: str
    name: str
    active: bool
    purposes: list[str]


class StaffIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    department: DeptCode | None = None
    """Pin the person to a department: tokens naming another one get no department purposes."""
    active: bool = True
    """False suspends the person: no purposes at all."""
    purposes: list[str] = msgspec.field(default_factory=list)
    """Purposes granted to this person in addition to their department's."""
    note: Annotated[str, msgspec.Meta(max_length=200), NoNul] | None = None


class StaffOut(msgspec.Struct, kw_only=True):
    staff_id: str
    department: str | None
    active: bool
    purposes: list[str]
    note: str | None


class PurposeOut(msgspec.Struct, kw_only=True):
    code: str
    name: str
    legal_basis: str
    individual_number: bool
    actions: list[str]
    fields: list[str]


class ExplainOut(msgspec.Struct, kw_only=True):
    staff_id: str
    department: str | None
    granted_purposes: list[str]
    purpose: str
    fields: list[FieldExplanation]


def _changed(entry: Entry) -> None:
    """This worker's caches at once (the others through the change's NOTIFY)."""
    entry.svc.changes.publish_locally(entry.code)


def _asked(codes: list[str]) -> dict[str, object]:
    """The purposes a refused change asked for, as its audit event records them.

    Only codes the platform knows; an unknown one is the sender's text (a
    name, anything), so only how many there were is recorded.
    """
    known = purposes()
    asked: dict[str, object] = {"purposes": sorted({c for c in codes if c in known})}
    unknown = sum(1 for c in codes if c not in known)
    if unknown:
        asked["unknown_purposes"] = unknown
    return asked


def refuse_own(principal: Principal, why: str) -> errors.DomainError:
    """403: nobody changes their own permissions or suspension (two people, always).

    "Own" is by person key (:func:`~shared_gov.auth.subjects.same_person`):
    ``…/staff/A-0001``, ``…/staff/ａ-0001`` and ``…/staff/a-0001%20`` are
    ``a-0001``'s own record, as the permission store reads it.
    """
    del principal
    return errors.forbidden(why)


# --- what the API's routes and the console's pages do alike ----------------------
# One function per step, so that the console (web/admin.py) applies exactly the
# API's rules — the same service calls, the same "nobody changes their own".


async def departments_of(entry: Entry) -> list[DepartmentOut]:
    """The town's departments and their purposes."""
    async with entry:
        rows = await admin.list_departments(entry.svc.db, entry.code)
    return [msgspec.convert(r, DepartmentOut, from_attributes=True) for r in rows]


async def change_department(entry: Entry, department: str, data: DepartmentIn) -> DepartmentOut:
    """Create or update ``department``; never the caller's own department (403)."""
    requested = {"name": data.name, "active": data.active, **_asked(data.purposes)}
    async with entry.changing(department, requested):
        db, code, principal = entry.svc.db, entry.code, entry.principal
        # The purposes of one's own department are one's own permissions.
        pinned = await admin.own_department(db, code, principal.subject)
        if department in {principal.department, pinned}:
            raise refuse_own(principal, m.NOBODY_CHANGES_OWN_DEPARTMENT)
        row = await admin.put_department(
            db, code, department, data.name, data.purposes, data.active, entry.actor
        )
    _changed(entry)
    return msgspec.convert(row, DepartmentOut, from_attributes=True)


async def staff_of(entry: Entry) -> list[StaffOut]:
    """Every per-person permission on record."""
    async with entry:
        rows = await admin.list_staff(entry.svc.db, entry.code)
    return [msgspec.convert(r, StaffOut, from_attributes=True) for r in rows]


async def one_staff(entry: Entry, staff_id: str) -> StaffOut:
    """One person's permissions on record (404 when none)."""
    async with entry:
        row = await admin.get_staff(entry.svc.db, entry.code, staff_id)
    return msgspec.convert(row, StaffOut, from_attributes=True)


async def change_staff(entry: Entry, staff_id: str, data: StaffIn) -> StaffOut:
    """Set a person's department, purposes or suspension; never one's own (403)."""
    requested = {"department": data.department, "active": data.active, **_asked(data.purposes)}
    async with entry.changing(staff_id, requested):
        if same_person(staff_id, entry.principal.subject):
            raise refuse_own(entry.principal, m.NOBODY_CHANGES_OWN_PERMISSIONS)
        row = await admin.put_staff(
            entry.svc.db,
            entry.code,
            staff_id,
            department=data.department,
            active=data.active,
            granted=data.purposes,
            note=data.note,
            actor=entry.actor,
        )
    _changed(entry)
    return msgspec.convert(row, StaffOut, from_attributes=True)


async def forget_staff(entry: Entry, staff_id: str) -> None:
    """Forget a person's own permissions; never one's own (403)."""
    async with entry.changing(staff_id, None):
        if same_person(staff_id, entry.principal.subject):
            raise refuse_own(entry.principal, m.NOBODY_CHANGES_OWN_PERMISSIONS)
        await admin.delete_staff(entry.svc.db, entry.code, staff_id, entry.actor)
    _changed(entry)


async def explanation(
    entry: Entry,
    staff_id: str,
    purpose: str,
    department: str | None = None,
    mfa: bool = False,
    support_measure: bool = False,
) -> ExplainOut:
    """Why ``staff_id`` may or may not see each field for ``purpose``."""
    async with entry:
        result = await explain_staff(
            entry.svc.permissions,
            entry.svc.policy,
            tenant=entry.code,
            staff_id=staff_id,
            purpose_code=purpose,
            department=department,
            mfa=mfa,
            support_measure=support_measure,
        )
    return msgspec.convert(result, ExplainOut, from_attributes=True)


class TownAdminController(Controller):
    """A town's administration, for its admins (gates :data:`DEPARTMENTS` and
    :data:`STAFF`): every change and every refused attempt is an event in the
    town's log; operators and other towns get 404."""

    path = "/api/v1/tenants/{code:str}"
    tags = ("administration",)

    @get(
        "/departments",
        summary="Departments and the purposes granted to each (admin)",
        **audited("admin.department.list", "department", gate=DEPARTMENTS),
    )
    async def departments(self, entry: NamedDependency[Entry]) -> list[DepartmentOut]:
        return await departments_of(entry)

    @put(
        "/departments/{department:str}",
        summary="Create or update a department (admin)",
        **audited("admin.department", "department", gate=DEPARTMENTS),
    )
    async def put_department(
        self, entry: NamedDependency[Entry], department: DeptPath, data: JSONBody[DepartmentIn]
    ) -> DepartmentOut:
        return await change_department(entry, department, data)

    @get(
        "/staff",
        summary="Per-person permissions on record (admin)",
        **audited("admin.staff.list", "staff", gate=STAFF),
    )
    async def staff(self, entry: NamedDependency[Entry]) -> list[StaffOut]:
        return await staff_of(entry)

    @get(
        "/staff/{staff_id:str}",
        summary="One person's permissions (admin)",
        **audited("admin.staff.read", "staff", gate=STAFF),
    )
    async def get_staff(self, entry: NamedDependency[Entry], staff_id: StaffPath) -> StaffOut:
        return await one_staff(entry, staff_id)

    @put(
        "/staff/{staff_id:str}",
        summary="Set a person's permissions (admin)",
        **audited("admin.staff", "staff", gate=STAFF),
    )
    async def put_staff(
        self, entry: NamedDependency[Entry], staff_id: StaffPath, data: JSONBody[StaffIn]
    ) -> StaffOut:
        return await change_staff(entry, staff_id, data)

    @delete(
        "/staff/{staff_id:str}",
        summary="Forget a person's own permissions (admin)",
        **audited("admin.staff.delete", "staff", gate=STAFF),
    )
    async def delete_staff(self, entry: NamedDependency[Entry], staff_id: StaffPath) -> None:
        await forget_staff(entry, staff_id)

    @get(
        "/staff/{staff_id:str}/explain",
        summary="Why a person may or may not see each field",
        **audited("admin.staff.explain", "staff", gate=STAFF),
    )
    async def explain(
        self,
        entry: NamedDependency[Entry],
        staff_id: StaffPath,
        purpose: Annotated[str, QueryParameter(description="purpose code")],
        department: Annotated[str | None, QueryParameter()] = None,
        mfa: Annotated[bool, QueryParameter()] = False,
        support_measure: Annotated[bool, QueryParameter()] = False,
    ) -> ExplainOut:
        return await explanation(entry, staff_id, purpose, department, mfa, support_measure)


class PurposeController(Controller):
    path = "/api/v1/purposes"
    tags = ("administration",)

    @get("/", summary="Purposes of use and what each covers")
    async def list_purposes(self, principal: NamedDependency[Principal]) -> list[PurposeOut]:
        return [
            PurposeOut(
                code=p.code,
                name=p.name,
                legal_basis=p.legal_basis,
                individual_number=p.individual_number,
                actions=sorted(p.actions),
                fields=sorted(p.fields),
            )
            for p in purposes().values()
        ]


__all__ = [
    "DepartmentIn",
    "PurposeController",
    "Response",
    "StaffIn",
    "TownAdminController",
    "change_department",
    "change_staff",
    "departments_of",
    "explanation",
    "forget_staff",
    "one_staff",
    "staff_of",
]
