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
from shared_gov.auth.registry import internal_address_problem, parse_issuer_config
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.logs import get_logger
from shared_gov.policy import authorize_admin
from shared_gov.policy.controllers import administering
from shared_gov.tenancy.manifest import IssuerConfig
from shared_gov.web import Services, services

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
    """A town's own OpenID Connect issuer (the town's admins only).

    The body is the manifest's ``[issuer]`` table as JSON: ``url``,
    ``audience``, exactly one of ``jwks_uri`` and ``jwks``, ``algorithms``
    (asymmetric only), and the ``staff_claim``, ``department_claim`` and
    ``roles_claim`` names. Every change and every refused attempt is an event
    in the town's audit log; operators get 404 (they never change a town's
    identity: docs/separation-of-duties.md).
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
        structlog.contextvars.bind_contextvars(tenant=code)
        if not is_valid_lgcode(code):
            raise errors.not_found()
        svc = services(request)
        async with administering(
            request,
            principal,
            code,
            "issuer",
            action="admin.issuer",
            resource_type="issuer",
            target=code,
            requested=_requested(data),
        ) as actor:
            config = await validated_issuer(svc, data)
            created = await issuers.put_issuer(svc.db, code, config, actor)
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
        structlog.contextvars.bind_contextvars(tenant=code)
        if not is_valid_lgcode(code):
            raise errors.not_found()
        svc = services(request)
        async with administering(
            request,
            principal,
            code,
            "issuer",
            action="admin.issuer.delete",
            resource_type="issuer",
            target=code,
            requested=None,
        ) as actor:
            await issuers.delete_issuer(svc.db, code, actor)
        svc.verifier.invalidate_issuers(code)
        log.info("issuer.removed", tenant=code)


def _requested(data: object) -> object:
    """What an audit event says of a refused issuer body: the URL only (no keys)."""
    if isinstance(data, dict):
        url, uri = data.get("url"), data.get("jwks_uri")
        return {
            "url": url if isinstance(url, str) else None,
            "jwks_uri": uri if isinstance(uri, str) else None,
        }
    return None


async def validated_issuer(svc: Services, data: object) -> IssuerConfig:
    """A town's issuer settings from a request body, or 409/422.

    Outside development: https only, and the ``jwks_uri`` host must not be
    (or resolve to) a loopback, link-local, private, unique-local, multicast,
    unspecified or otherwise non-global address — the platform must not be
    made to fetch from its own network.
    """
    config = parse_issuer_config(data, require_https=not svc.settings.is_dev)
    if config.url.rstrip("/") == svc.issuer.issuer.rstrip("/"):
        raise errors.conflict("this issuer URL is the platform's own")
    if not svc.settings.is_dev and config.jwks_uri is not None:
        problem = await internal_address_problem(config.jwks_uri)
        if problem is not None:
            raise errors.invalid_field("/jwks_uri", problem)
    return config


def _authorize(principal: Principal, code: str) -> None:
    structlog.contextvars.bind_contextvars(tenant=code)
    if not is_valid_lgcode(code):
        raise errors.not_found()
    authorize_admin(principal, code)
