"""Town administration endpoints: departments, staff permissions, purposes,
and the explanation of a decision (what a town admin uses when staff ask why
they cannot see something)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from shared_gov import errors
from shared_gov.api.entry import Audit, audit_actor
from shared_gov.api.pipeline import services
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.auth.principal import Principal
from shared_gov.auth.subjects import same_person
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.policy import admin, authorize_admin
from shared_gov.policy.explain import FieldExplanation, explain_staff
from shared_gov.policy.purposes import purposes
from shared_gov.towns.changes import record_refusal, refusal_event
from shared_gov.validation import NO_NUL_PATTERN, NoNul

TenantCode = Annotated[str, PathParameter(description="6-digit local government code")]
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


async def _town(
    request: Request[Any, Any, Any], principal: Principal, code: str, area: str
) -> None:
    authorize_admin(principal, code, area)
    if await services(request).registry.get(code) is None:
        raise errors.not_found()


def _changed(request: Request[Any, Any, Any], code: str) -> None:
    services(request).changes.publish_locally(code)


def _why_not_admitted(principal: Principal, code: str, exc: errors.DomainError) -> str:
    if principal.is_operator:
        return "operators never change a town's identity or permissions"
    if principal.tenant != code:
        return "caller from another town"
    return str(exc.extra.get("reason") or exc.detail)


@asynccontextmanager
async def administering(
    request: Request[Any, Any, Any],
    principal: Principal,
    code: str,
    area: str,
    *,
    action: str,
    resource_type: str,
    target: str,
    requested: object,
) -> AsyncIterator[AuditActor]:
    """Authorise a change of the town's administration; record every refusal.

    Yields the audit actor the change records itself with (in its own
    transaction). A refusal — another town, an operator, a non-admin, a
    change of one's own permissions, bad input, a conflict — is recorded as a
    denied event in the town's log, in a transaction of its own.
    """
    svc = services(request)
    actor = audit_actor(request, principal, None)
    try:
        await _town(request, principal, code, area)
    except errors.DomainError as exc:
        if exc.outcome is not None and is_valid_lgcode(code):
            why = _why_not_admitted(principal, code, exc)
            event = refusal_event(action, resource_type, target, requested, why, "denied")
            await record_refusal(svc.db, code, actor, event)
        raise
    try:
        yield actor
    except errors.DomainError as exc:
        if exc.outcome is not None:
            why = str(exc.extra.get("reason") or exc.detail)
            event = refusal_event(action, resource_type, target, requested, why, exc.outcome)
            await record_refusal(svc.db, code, actor, event)
        raise


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


def refuse_own(principal: Principal, what: str) -> errors.DomainError:
    """403: nobody changes their own permissions or suspension (two people, always).

    "Own" is by person key (:func:`~shared_gov.auth.subjects.same_person`):
    ``…/staff/A-0001``, ``…/staff/ａ-0001`` and ``…/staff/a-0001%20`` are
    ``a-0001``'s own record, as the permission store reads it.
    """
    del principal
    return errors.forbidden(f"nobody changes {what}; another admin of the town must")


class TownAdminController(Controller):
    path = "/api/v1/tenants/{code:str}"
    tags = ("administration",)

    @get(
        "/departments",
        summary="Departments and the purposes granted to each (admin)",
        audit=Audit("admin.department.list", "department"),
    )
    async def departments(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
    ) -> list[DepartmentOut]:
        await _town(request, principal, code, "departments")
        rows = await admin.list_departments(services(request).db, code)
        return [msgspec.convert(r, DepartmentOut, from_attributes=True) for r in rows]

    @put(
        "/departments/{department:str}",
        summary="Create or update a department (admin)",
        audit=Audit("admin.department", "department"),
    )
    async def put_department(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        department: DeptPath,
        data: JSONBody[DepartmentIn],
    ) -> DepartmentOut:
        svc = services(request)
        requested = {"name": data.name, "active": data.active, **_asked(data.purposes)}
        async with administering(
            request,
            principal,
            code,
            "departments",
            action="admin.department",
            resource_type="department",
            target=department,
            requested=requested,
        ) as actor:
            # The purposes of one's own department are one's own permissions.
            pinned = await admin.own_department(svc.db, code, principal.subject)
            if department in {principal.department, pinned}:
                raise refuse_own(principal, "the purposes of their own department")
            row = await admin.put_department(
                svc.db, code, department, data.name, data.purposes, data.active, actor
            )
        _changed(request, code)
        return msgspec.convert(row, DepartmentOut, from_attributes=True)

    @get(
        "/staff",
        summary="Per-person permissions on record (admin)",
        audit=Audit("admin.staff.list", "staff"),
    )
    async def staff(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
    ) -> list[StaffOut]:
        await _town(request, principal, code, "staff")
        rows = await admin.list_staff(services(request).db, code)
        return [msgspec.convert(r, StaffOut, from_attributes=True) for r in rows]

    @get(
        "/staff/{staff_id:str}",
        summary="One person's permissions (admin)",
        audit=Audit("admin.staff.read", "staff"),
    )
    async def get_staff(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        staff_id: StaffPath,
    ) -> StaffOut:
        await _town(request, principal, code, "staff")
        row = await admin.get_staff(services(request).db, code, staff_id)
        return msgspec.convert(row, StaffOut, from_attributes=True)

    @put(
        "/staff/{staff_id:str}",
        summary="Set a person's permissions (admin)",
        audit=Audit("admin.staff", "staff"),
    )
    async def put_staff(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        staff_id: StaffPath,
        data: JSONBody[StaffIn],
    ) -> StaffOut:
        requested = {"department": data.department, "active": data.active, **_asked(data.purposes)}
        async with administering(
            request,
            principal,
            code,
            "staff",
            action="admin.staff",
            resource_type="staff",
            target=staff_id,
            requested=requested,
        ) as actor:
            if same_person(staff_id, principal.subject):
                raise refuse_own(principal, "their own permissions or suspension")
            row = await admin.put_staff(
                services(request).db,
                code,
                staff_id,
                department=data.department,
                active=data.active,
                granted=data.purposes,
                note=data.note,
                actor=actor,
            )
        _changed(request, code)
        return msgspec.convert(row, StaffOut, from_attributes=True)

    @delete(
        "/staff/{staff_id:str}",
        summary="Forget a person's own permissions (admin)",
        audit=Audit("admin.staff.delete", "staff"),
    )
    async def delete_staff(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        staff_id: StaffPath,
    ) -> None:
        async with administering(
            request,
            principal,
            code,
            "staff",
            action="admin.staff.delete",
            resource_type="staff",
            target=staff_id,
            requested=None,
        ) as actor:
            if same_person(staff_id, principal.subject):
                raise refuse_own(principal, "their own permissions or suspension")
            await admin.delete_staff(services(request).db, code, staff_id, actor)
        _changed(request, code)

    @get(
        "/staff/{staff_id:str}/explain",
        summary="Why a person may or may not see each field",
        audit=Audit("admin.staff.explain", "staff"),
    )
    async def explain(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        staff_id: StaffPath,
        purpose: Annotated[str, QueryParameter(description="purpose code")],
        department: Annotated[str | None, QueryParameter()] = None,
        mfa: Annotated[bool, QueryParameter()] = False,
        support_measure: Annotated[bool, QueryParameter()] = False,
    ) -> ExplainOut:
        await _town(request, principal, code, "staff")
        svc = services(request)
        result = await explain_staff(
            svc.permissions,
            svc.policy,
            tenant=code,
            staff_id=staff_id,
            purpose_code=purpose,
            department=department,
            mfa=mfa,
            support_measure=support_measure,
        )
        return msgspec.convert(result, ExplainOut, from_attributes=True)


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


__all__ = ["PurposeController", "Response", "TownAdminController"]
