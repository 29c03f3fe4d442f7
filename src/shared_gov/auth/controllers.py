"""Identity endpoints: discovery and JWKS of the built-in issuer, and a town's
own issuer (``/api/v1/tenants/{code}/issuer``)."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from litestar import Controller, Request, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.params import Body, PathParameter

from shared_gov import errors
from shared_gov.auth import issuers
from shared_gov.auth.principal import Principal
from shared_gov.auth.registry import parse_issuer_config
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.logs import get_logger
from shared_gov.policy import authorize_admin
from shared_gov.tenancy.manifest import IssuerConfig
from shared_gov.web import services

log = get_logger(__name__)


class WellKnownController(Controller):
    path = "/.well-known"
    tags = ("identity",)

    @get("/openid-configuration", summary="OpenID discovery of the built-in issuer")
    async def discovery(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return services(request).issuer.discovery()

    @get("/jwks.json", summary="Public signing keys of the built-in issuer")
    async def jwks(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return services(request).issuer.jwks()


TenantCode = Annotated[str, PathParameter(description="6-digit local government code")]
IssuerBody = Annotated[
    dict[str, Any],
    Body(
        title="IssuerConfig",
        description=(
            "The manifest's [issuer] table as JSON: url, audience, exactly one of "
            "jwks_uri and jwks (public keys only), algorithms (RS*, PS*, ES256, ES384, "
            "EdDSA; never none or HS*), staff_claim, department_claim, roles_claim."
        ),
    ),
]


class IssuerOut(IssuerConfig, kw_only=True, frozen=True):
    """A town's registered issuer: the manifest's ``[issuer]`` shape and the town."""

    tenant: str


def _out(code: str, config: IssuerConfig) -> IssuerOut:
    return IssuerOut(tenant=code, **issuers.to_json(config))


class IssuerController(Controller):
    """A town's own OpenID Connect issuer (town admins and operators).

    The body is the manifest's ``[issuer]`` table as JSON: ``url``,
    ``audience``, exactly one of ``jwks_uri`` and ``jwks``, ``algorithms``
    (asymmetric only), and the ``staff_claim``, ``department_claim`` and
    ``roles_claim`` names.
    """

    path = "/api/v1/tenants/{code:str}/issuer"
    tags = ("identity",)

    @get("/", summary="The town's own token issuer")
    async def get_issuer(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
    ) -> IssuerOut:
        _authorize(principal, code)
        return _out(code, await issuers.get_issuer(services(request).db, code))

    @put("/", summary="Register or replace the town's own token issuer")
    async def put_issuer(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        data: IssuerBody,
    ) -> Response[IssuerOut]:
        _authorize(principal, code)
        svc = services(request)
        config = parse_issuer_config(data, require_https=not svc.settings.is_dev)
        if config.url.rstrip("/") == svc.issuer.issuer.rstrip("/"):
            raise errors.conflict("this issuer URL is the platform's own")
        created = await issuers.put_issuer(svc.db, code, config)
        # The NOTIFY reaches the other workers; this one must not wait for it.
        svc.verifier.invalidate_issuers(code)
        log.info("issuer.registered", tenant=code, created=created)
        return Response(_out(code, config), status_code=201 if created else 200)

    @delete("/", summary="Remove the town's own token issuer", status_code=204)
    async def delete_issuer(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
    ) -> None:
        _authorize(principal, code)
        svc = services(request)
        await issuers.delete_issuer(svc.db, code)
        svc.verifier.invalidate_issuers(code)
        log.info("issuer.removed", tenant=code)


def _authorize(principal: Principal, code: str) -> None:
    structlog.contextvars.bind_contextvars(tenant=code)
    if not is_valid_lgcode(code):
        raise errors.not_found()
    authorize_admin(principal, code)
