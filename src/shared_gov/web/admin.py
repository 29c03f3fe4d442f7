"""The town admins' pages: departments and their purposes, staff permissions
and suspensions, and "why can't this person see this field"
(``/console/towns/{code}/admin/…``).

Each page declares the audit action and gate of the API endpoint behind it
(``**audited("admin.staff", "staff", gate=STAFF)``) and calls the same step
as that endpoint (:mod:`shared_gov.api.administration`): the same Cedar
decision (``administer`` on the town), the same "nobody changes their own
permissions, suspension or department", the same events — a change and its
before/after in the town's log in the change's own transaction, every
refusal a denied event. The town's other staff get the 403 page with the
reason; another town's staff the 404 page. Staff ids travel in POST forms,
never in a URL.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency

from shared_gov import errors
from shared_gov.api.administration import (
    DEPT_CODE,
    DepartmentIn,
    StaffIn,
    StaffOut,
    change_department,
    change_staff,
    departments_of,
    explanation,
    forget_staff,
    one_staff,
    staff_of,
)
from shared_gov.api.entry import DEPARTMENTS, STAFF, Entry, audited
from shared_gov.messages import console as L
from shared_gov.messages import validation as mv
from shared_gov.messages.core import FieldName
from shared_gov.policy import admin
from shared_gov.policy.purposes import purposes

from .gated import (
    checked,
    identifier,
    parsed,
    refusal,
    refused_input,
    shown_inline,
    signed_in_first,
    text,
    texts,
)
from .pages import page

_DEPT = re.compile(DEPT_CODE)
"""A department code, as the API's path parameter takes it."""


def purpose_choices() -> list[tuple[str, str]]:
    """Every purpose of use as (code, name), for the checkboxes."""
    return [(code, p.name) for code, p in sorted(purposes().items())]


class DepartmentPages(Controller):
    """Departments and the purposes granted to each (gate ``DEPARTMENTS``)."""

    path = "/towns/{code:str}/admin/departments"
    include_in_schema = False
    middleware = [signed_in_first]  # noqa: RUF012 - Litestar's own class attribute

    async def _page(
        self,
        request: Request[Any, Any, Any],
        entry: Entry,
        status: int = 200,
        exc: errors.DomainError | None = None,
        **extra: Any,
    ) -> Response[Any]:
        rows = await departments_of(entry)
        return page(
            request,
            "admin/departments.html",
            status,
            code=entry.code,
            departments=rows,
            purposes=purpose_choices(),
            **refusal(exc),
            **extra,
        )

    @get("/", **audited("admin.department.list", "department", gate=DEPARTMENTS))
    async def list_page(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        return await self._page(request, entry)

    @post("/", **audited("admin.department", "department", gate=DEPARTMENTS))
    async def save(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        form = await request.form()
        await entry.admit()
        try:
            department = identifier(form, "department", 200)
            if not _DEPT.match(department):
                raise errors.invalid_field("/department", mv.PATTERN)
            data = parsed(
                DepartmentIn,
                {
                    "name": text(form, "name", 1000),
                    "purposes": texts(form, "purposes"),
                    "active": checked(form, "active"),
                },
            )
        except errors.DomainError as exc:
            await refused_input(entry, exc)
            return await self._page(request, entry, exc.status, exc)
        try:
            row = await change_department(entry, department, data)
        except errors.DomainError as exc:
            if not shown_inline(exc):
                raise
            return await self._page(request, entry, exc.status, exc)
        return await self._page(request, entry, notice=L.DEPARTMENT_SAVED(department=row.code))


@dataclasses.dataclass(frozen=True, slots=True)
class _Done:
    """What a staff page says after a change."""

    notice: Any
    edited: StaffOut | None = None


class StaffPages(Controller):
    """Per-person permissions and suspensions, and the explanation (gate ``STAFF``)."""

    path = "/towns/{code:str}/admin/staff"
    include_in_schema = False
    middleware = [signed_in_first]  # noqa: RUF012 - Litestar's own class attribute

    async def _page(
        self,
        request: Request[Any, Any, Any],
        entry: Entry,
        status: int = 200,
        exc: errors.DomainError | None = None,
        *,
        notice: Any = None,
        edited: StaffOut | None = None,
    ) -> Response[Any]:
        rows = await staff_of(entry)
        return page(
            request,
            "admin/staff.html",
            status,
            code=entry.code,
            staff=rows,
            departments=await admin.list_departments(entry.svc.db, entry.code),
            purposes=purpose_choices(),
            notice=notice,
            edited=edited,
            **refusal(exc),
        )

    async def _change(
        self,
        request: Request[Any, Any, Any],
        entry: Entry,
        step: Any,
    ) -> Response[Any]:
        """Admit, read the form, run ``step(form)``; show the result or the refusal."""
        form = await request.form()
        await entry.admit()
        try:
            done: _Done = await step(form)
        except errors.DomainError as exc:
            if not shown_inline(exc):
                raise
            return await self._page(request, entry, exc.status, exc)
        return await self._page(request, entry, notice=done.notice, edited=done.edited)

    @get("/", **audited("admin.staff.list", "staff", gate=STAFF))
    async def list_page(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        return await self._page(request, entry)

    @post("/", **audited("admin.staff", "staff", gate=STAFF))
    async def save(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        async def step(form: FormMultiDict) -> _Done:
            staff_id = await _staff_id(entry, form)
            try:
                data = _staff_in(form)
            except errors.DomainError as exc:
                await refused_input(entry, exc)
                raise
            row = await change_staff(entry, staff_id, data)
            return _Done(L.STAFF_SAVED(staff=row.staff_id))

        return await self._change(request, entry, step)

    @post("/suspension", **audited("admin.staff", "staff", gate=STAFF))
    async def suspension(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        """Suspend or lift: the person's record as it is, with ``active`` set."""

        async def step(form: FormMultiDict) -> _Done:
            staff_id = await _staff_id(entry, form)
            active = form.get("active") == "1"
            try:
                now = await admin.get_staff(entry.svc.db, entry.code, staff_id)
                department, granted, note = now.department, now.purposes, now.note
            except errors.NotFound:
                department, granted, note = None, [], None
            except errors.DomainError as exc:  # an id that names nobody: 422
                await entry.refused(exc)
                raise
            data = StaffIn(department=department, active=active, purposes=granted, note=note)
            row = await change_staff(entry, staff_id, data)
            said = L.STAFF_LIFTED if active else L.STAFF_SUSPENDED
            return _Done(said(staff=row.staff_id))

        return await self._change(request, entry, step)

    @post("/edit", **audited("admin.staff.read", "staff", gate=STAFF))
    async def edit(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        """One person's record in the form (read by POST: the id stays out of the URL)."""

        async def step(form: FormMultiDict) -> _Done:
            staff_id = await _staff_id(entry, form)
            return _Done(None, await one_staff(entry, staff_id))

        return await self._change(request, entry, step)

    @post("/forget", **audited("admin.staff.delete", "staff", gate=STAFF))
    async def forget(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        async def step(form: FormMultiDict) -> _Done:
            staff_id = await _staff_id(entry, form)
            await forget_staff(entry, staff_id)
            return _Done(L.STAFF_FORGOTTEN(staff=staff_id))

        return await self._change(request, entry, step)

    @get("/explain", **audited("admin.staff.explain", "staff", gate=STAFF))
    async def explain_form(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        async with entry:  # admitted (admins only); nothing read, nothing recorded
            pass
        return page(
            request,
            "admin/explain.html",
            code=entry.code,
            purposes=purpose_choices(),
            asked={},
            result=None,
        )

    @post("/explain", **audited("admin.staff.explain", "staff", gate=STAFF))
    async def explain(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        form = await request.form()
        asked = {
            "staff_id": text(form, "staff_id", 128),
            "purpose": text(form, "purpose", 200),
            "department": text(form, "department", 200),
            "mfa": checked(form, "mfa"),
            "support_measure": checked(form, "support_measure"),
        }
        await entry.admit()
        try:
            staff_id = await _staff_id(entry, form)
            result = await explanation(
                entry,
                staff_id,
                str(asked["purpose"]),
                str(asked["department"]) or None,
                bool(asked["mfa"]),
                bool(asked["support_measure"]),
            )
        except errors.DomainError as exc:
            if not shown_inline(exc):
                raise
            return page(
                request,
                "admin/explain.html",
                exc.status,
                code=entry.code,
                purposes=purpose_choices(),
                asked=asked,
                result=None,
                **refusal(exc),
            )
        return page(
            request,
            "admin/explain.html",
            code=entry.code,
            purposes=purpose_choices(),
            asked=asked,
            result=result,
            labels={f.field: FieldName(f.field) for f in result.fields},
        )


async def _staff_id(entry: Entry, form: FormMultiDict) -> str:
    """The form's staff id; a missing or malformed one is refused and recorded."""
    try:
        return identifier(form, "staff_id")
    except errors.DomainError as exc:
        await refused_input(entry, exc)
        raise


def _staff_in(form: FormMultiDict) -> StaffIn:
    """The "set permissions" form as the API's :class:`StaffIn`."""
    department = text(form, "department", 200) or None
    return parsed(
        StaffIn,
        {
            "department": department,
            "active": not checked(form, "suspended"),
            "purposes": texts(form, "purposes"),
            "note": text(form, "note", 1000) or None,
        },
    )
