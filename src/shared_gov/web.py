"""Request plumbing shared by every controller: app services, the principal
dependency, and the tenant scope that opens a unit of work.

Controllers stay thin (DESIGN.md rule 1): they resolve the principal, enter
the tenant scope and call a service. :func:`tenant_scope` refuses a caller
from another town with the same 404 a missing tenant gets, before any
database work, and binds the tenant code to the request's log context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from shared_gov import errors, policy
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.auth.principal import Principal
from shared_gov.auth.verify import TokenVerifier
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.db.notify import ChangeListener
from shared_gov.policy import Access, Actor, PolicyEngine
from shared_gov.policy.permissions import PermissionStore
from shared_gov.policy.purposes import purpose_from_header
from shared_gov.settings import Settings
from shared_gov.tenancy.registry import TenantRegistry


@dataclass(slots=True)
class Services:
    """Process-wide objects the handlers use, stored on ``app.state.services``."""

    settings: Settings
    db: Database
    registry: TenantRegistry
    issuer: BuiltinIssuer
    verifier: TokenVerifier
    changes: ChangeListener
    """Subscribe here to drop caches when a town's permissions or issuer change."""
    policy: PolicyEngine
    permissions: PermissionStore


def services(request: Request[Any, Any, Any]) -> Services:
    result: Services = request.app.state.services
    return result


class BearerAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Verify the bearer token before anything else about the request is read."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if header is None:
            raise errors.unauthorized()
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise errors.unauthorized()
        services_: Services = connection.app.state.services
        principal = await services_.verifier.verify(token.strip())
        structlog.contextvars.bind_contextvars(actor=principal.actor)
        return AuthenticationResult(user=principal, auth=None)


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Litestar dependency: the caller the authentication middleware verified."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise errors.unauthorized()
    return user


async def access_for(
    svc: Services, principal: Principal, code: str, purpose_header: str | None
) -> Access:
    """The caller's Access to town ``code`` for the purpose stated in X-Purpose.

    Order matters: a caller from another town gets 404 before anything else
    (not even whether the purpose exists is revealed); then a missing or
    unknown purpose is 400; permissions come from the town's cached snapshot.
    """
    if not policy.may_enter(principal, code):
        raise errors.not_found()
    names = await svc.registry.get(code)
    if names is None:
        raise errors.not_found()
    purpose = purpose_from_header(purpose_header)
    town = await svc.permissions.town(code)
    actor = Actor(
        tenant=principal.tenant,
        department=principal.department or "",
        roles=principal.roles,
        mfa=principal.mfa,
        purposes=town.purposes_for(principal.subject, principal.department),
        operator=principal.is_operator,
        staff_id=principal.subject,
    )
    structlog.contextvars.bind_contextvars(purpose=purpose.code)
    return Access(principal, actor, purpose, svc.policy)


@asynccontextmanager
async def tenant_scope(
    request: Request[Any, Any, Any], principal: Principal, code: str, purpose: str | None
) -> AsyncIterator[tuple[TenantUnitOfWork, Access]]:
    """Open a unit of work on town ``code`` for ``principal`` acting for ``purpose``."""
    structlog.contextvars.bind_contextvars(tenant=code)
    svc = services(request)
    access = await access_for(svc, principal, code, purpose)
    names = await svc.registry.get(code)
    if names is None:  # pragma: no cover - checked in access_for
        raise errors.not_found()
    async with svc.db.tenant(names) as uow:
        yield uow, access
