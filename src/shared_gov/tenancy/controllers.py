"""Operator endpoints to onboard and list tenants."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from shared_gov.auth.principal import Principal
from shared_gov.policy import authorize_operator
from shared_gov.tenancy import service
from shared_gov.tenancy.manifest import Manifest, validate_manifest
from shared_gov.web import services


class TenantOut(msgspec.Struct, kw_only=True):
    code: str
    name: str
    name_kana: str
    prefecture: str
    population: int
    status: str
    schema_revision: str | None
    departments: list[dict[str, str]]


class OnboardOut(msgspec.Struct, kw_only=True):
    code: str
    outcome: str


class TenantController(Controller):
    path = "/api/v1/tenants"
    tags = ("tenants",)

    @post("/", status_code=201, summary="Onboard or update a tenant from its manifest (operator)")
    async def onboard(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[Manifest],
    ) -> Response[OnboardOut]:
        authorize_operator(principal)
        svc = services(request)
        result = await service.onboard(svc.db, validate_manifest(data))
        # This worker's caches (tenants, issuers, permissions, keys) at once;
        # the others through the NOTIFY provisioning committed.
        svc.changes.publish_locally(result.code)
        status = 201 if result.outcome == "created" else 200
        return Response(OnboardOut(code=result.code, outcome=result.outcome), status_code=status)

    @get("/", summary="List tenants (operator)")
    async def list_tenants(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal]
    ) -> list[TenantOut]:
        authorize_operator(principal)
        rows = await service.list_tenants(services(request).db)
        return [msgspec.convert(r, TenantOut, from_attributes=True) for r in rows]
