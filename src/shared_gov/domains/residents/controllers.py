"""HTTP endpoints of resident records under ``/api/v1/tenants/{code}``.

Searches take their personal values in a POST body so they never appear in
URLs or access logs.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter

from shared_gov.auth.principal import Principal
from shared_gov.domains.residents import flows, service
from shared_gov.domains.residents.models import Resident
from shared_gov.domains.residents.schemas import (
    HistoryEntry,
    HistoryOut,
    HouseholdMember,
    HouseholdOut,
    MoveCreate,
    OneStopMoveIn,
    ResidentCreate,
    ResidentOut,
    ResidentSearch,
    SearchResult,
    SupportMeasure,
)
from shared_gov.policy import FieldView
from shared_gov.web import audit_actor, services, tenant_scope

TenantCode = Annotated[str, PathParameter(description="6-digit local government code")]


_META = ("id", "atena_no", "state", "version", "history_no", "support_measure")
_MEMBER_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "relationship",
)
_MOVE_DATE_FIELDS = frozenset({"birth_date", "resident_since", "address_since", "removed_on"})
"""Record dates a history entry's 異動日 may equal: it is withheld with any of them."""
Purpose = Annotated[
    str | None,
    HeaderParameter(name="X-Purpose", description="purpose of use, see policies/purposes.toml"),
]
IfMatch = Annotated[str | None, HeaderParameter(name="If-Match")]
AgreementHeader = Annotated[
    str | None,
    HeaderParameter(
        name="X-Agreement",
        description="staff of another town: the id of the sharing agreement relied on",
    ),
]


def _out(resident: Resident, view: FieldView) -> ResidentOut:
    """Only the fields the policy allows for this caller and purpose."""
    values: dict[str, Any] = {name: getattr(resident, name) for name in _META}
    values.update({name: getattr(resident, name) for name in view.allowed})
    return ResidentOut(**values, withheld=list(view.withheld), withheld_reasons=dict(view.reasons))


def _member(resident: Resident, view: FieldView) -> HouseholdMember:
    values = {n: getattr(resident, n) for n in _MEMBER_FIELDS if n in view.allowed}
    return HouseholdMember(
        id=resident.id, atena_no=resident.atena_no, state=resident.state, **values
    )


def _with_etag(
    resident: Resident, view: FieldView, status: int = 200, location: str | None = None
) -> Response[ResidentOut]:
    headers = {"ETag": service.etag(resident)}
    if location:
        headers["Location"] = location
    return Response(_out(resident, view), status_code=status, headers=headers)


class ResidentController(Controller):
    path = "/api/v1/tenants/{code:str}"
    tags = ("residents",)

    @post("/residents", status_code=201, summary="Register a person (記載)")
    async def register(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        data: JSONBody[ResidentCreate],
        purpose: Purpose = None,
    ) -> Response[ResidentOut]:
        async with tenant_scope(request, principal, code, purpose, "resident.register") as (
            uow,
            access,
        ):
            resident = await service.register(uow, access, data)
            view = await service.view_of(uow, access, resident)
        return _with_etag(resident, view, 201, f"/api/v1/tenants/{code}/residents/{resident.id}")

    @post(
        "/residents/one-stop-move-in",
        status_code=201,
        summary="Move-in citing the old town's record when it is a tenant (one-stop move)",
    )
    async def one_stop_move_in(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        data: JSONBody[OneStopMoveIn],
        purpose: Purpose = None,
    ) -> Response[ResidentOut]:
        result = await flows.one_stop_move_in(
            services(request),
            principal,
            audit_actor(request, principal, purpose),
            code,
            purpose,
            data,
        )
        resident = result.resident
        response = _with_etag(
            resident, result.view, 201, f"/api/v1/tenants/{code}/residents/{resident.id}"
        )
        response.headers["X-Transfer-ID"] = result.transfer_id
        return response

    @get("/residents/{resident_id:str}", summary="Current record of a resident")
    async def read(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        resident_id: FromPath[str],
        purpose: Purpose = None,
        agreement: AgreementHeader = None,
    ) -> Response[ResidentOut]:
        async with tenant_scope(
            request,
            principal,
            code,
            purpose,
            "resident.read",
            agreement=agreement,
            subject=service.subject_of(resident_id),
        ) as (uow, access):
            resident, view = await service.get(uow, access, resident_id)
        return _with_etag(resident, view)

    @post(
        "/residents/{resident_id:str}/moves",
        status_code=200,
        summary="Register a change or removal event (修正・消除); needs If-Match",
    )
    async def move(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        resident_id: FromPath[str],
        data: JSONBody[MoveCreate],
        if_match: IfMatch = None,
        purpose: Purpose = None,
    ) -> Response[ResidentOut]:
        async with tenant_scope(
            request,
            principal,
            code,
            purpose,
            "resident.move",
            subject=service.subject_of(resident_id),
        ) as (uow, access):
            # Inside the scope: another town gets its 404 first, and a missing
            # or malformed If-Match is recorded like any other refusal.
            expected = service.parse_if_match(if_match)
            resident, view = await service.move(uow, access, resident_id, data, expected)
        return _with_etag(resident, view)

    @put(
        "/residents/{resident_id:str}/support-measure",
        summary="Set or lift 支援措置 (市民課, juki.registration); needs If-Match",
    )
    async def support_measure(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        resident_id: FromPath[str],
        data: JSONBody[SupportMeasure],
        if_match: IfMatch = None,
        purpose: Purpose = None,
    ) -> Response[ResidentOut]:
        async with tenant_scope(
            request,
            principal,
            code,
            purpose,
            "resident.protect",
            subject=service.subject_of(resident_id),
        ) as (uow, access):
            expected = service.parse_if_match(if_match)
            resident, view = await service.set_support_measure(
                uow, access, resident_id, data.active, expected
            )
        return _with_etag(resident, view)

    @get("/residents/{resident_id:str}/history", summary="Every snapshot (履歴), in order")
    async def history(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        resident_id: FromPath[str],
        purpose: Purpose = None,
    ) -> HistoryOut:
        async with tenant_scope(
            request,
            principal,
            code,
            purpose,
            "resident.history",
            subject=service.subject_of(resident_id),
        ) as (uow, access):
            entries, view = await service.history(uow, access, resident_id)
        hidden = set(view.withheld)
        for entry in entries:
            entry["snapshot"] = {k: v for k, v in entry["snapshot"].items() if k not in hidden}
            # A withheld field appears nowhere: 届出日 is notified_on, and an
            # entry's 異動日 is the day one of the record dates took (birth,
            # move-in, move, removal), so it goes whenever any of them is withheld.
            if "notified_on" in hidden:
                del entry["notified_on"]
            if hidden & _MOVE_DATE_FIELDS:
                del entry["move_date"]
        return HistoryOut(
            resident_id=resident_id,
            entries=[msgspec.convert(e, HistoryEntry) for e in entries],
            withheld=list(view.withheld),
        )

    @post("/residents/search", status_code=200, summary="Search residents (values in the body)")
    async def search(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        data: JSONBody[ResidentSearch],
        purpose: Purpose = None,
        agreement: AgreementHeader = None,
    ) -> SearchResult:
        async with tenant_scope(
            request, principal, code, purpose, "resident.search", agreement=agreement
        ) as (uow, access):
            found = await service.search(uow, access, data)
            shaped = [_out(r, view) for r, view in found]
        return SearchResult(count=len(shaped), residents=shaped)

    @get("/households/{household_no:str}", summary="Members of a household (世帯)")
    async def household(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        household_no: FromPath[str],
        purpose: Purpose = None,
    ) -> HouseholdOut:
        async with tenant_scope(request, principal, code, purpose, "household.read") as (
            uow,
            access,
        ):
            head, members = await service.household(uow, access, household_no)
            shaped = [_member(m, view) for m, view in members]
        return HouseholdOut(household_no=household_no, head_id=head, members=shaped)
