"""HTTP endpoints of resident records under ``/api/v1/tenants/{code}``.

Searches take their personal values in a POST body so they never appear in
URLs or access logs.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter

from shared_gov.auth.principal import Principal
from shared_gov.domains.residents import service
from shared_gov.domains.residents.models import Resident
from shared_gov.domains.residents.schemas import (
    HistoryEntry,
    HistoryOut,
    HouseholdMember,
    HouseholdOut,
    MoveCreate,
    ResidentCreate,
    ResidentOut,
    ResidentSearch,
    SearchResult,
)
from shared_gov.web import tenant_scope

TenantCode = Annotated[str, PathParameter(description="6-digit local government code")]


def _out(resident: Resident) -> ResidentOut:
    return msgspec.convert(resident, ResidentOut, from_attributes=True)


def _with_etag(
    resident: Resident, status: int = 200, location: str | None = None
) -> Response[ResidentOut]:
    headers = {"ETag": service.etag(resident)}
    if location:
        headers["Location"] = location
    return Response(_out(resident), status_code=status, headers=headers)


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
    ) -> Response[ResidentOut]:
        async with tenant_scope(request, principal, code) as uow:
            resident = await service.register(uow, principal, data)
        return _with_etag(resident, 201, f"/api/v1/tenants/{code}/residents/{resident.id}")

    @get("/residents/{resident_id:str}", summary="Current record of a resident")
    async def read(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        resident_id: FromPath[str],
    ) -> Response[ResidentOut]:
        async with tenant_scope(request, principal, code) as uow:
            resident = await service.get(uow, principal, resident_id)
        return _with_etag(resident)

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
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> Response[ResidentOut]:
        expected = service.parse_if_match(if_match)
        async with tenant_scope(request, principal, code) as uow:
            resident = await service.move(uow, principal, resident_id, data, expected)
        return _with_etag(resident)

    @get("/residents/{resident_id:str}/history", summary="Every snapshot (履歴), in order")
    async def history(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        resident_id: FromPath[str],
    ) -> HistoryOut:
        async with tenant_scope(request, principal, code) as uow:
            entries = await service.history(uow, principal, resident_id)
        return HistoryOut(
            resident_id=resident_id,
            entries=[msgspec.convert(e, HistoryEntry) for e in entries],
        )

    @post("/residents/search", status_code=200, summary="Search residents (values in the body)")
    async def search(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        data: JSONBody[ResidentSearch],
    ) -> SearchResult:
        async with tenant_scope(request, principal, code) as uow:
            found = await service.search(uow, principal, data)
        return SearchResult(count=len(found), residents=[_out(r) for r in found])

    @get("/households/{household_no:str}", summary="Members of a household (世帯)")
    async def household(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        household_no: FromPath[str],
    ) -> HouseholdOut:
        async with tenant_scope(request, principal, code) as uow:
            head, members = await service.household(uow, principal, household_no)
        return HouseholdOut(
            household_no=household_no,
            head_id=head,
            members=[msgspec.convert(m, HouseholdMember, from_attributes=True) for m in members],
        )
