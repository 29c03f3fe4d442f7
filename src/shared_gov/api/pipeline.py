"""Request plumbing every controller shares: the process's services, bearer
authentication, the principal dependency and the guard that refuses unknown
query parameters."""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from shared_gov import errors
from shared_gov.auth.failures import FailedLoginGate, report_failed_login
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.auth.principal import Principal
from shared_gov.auth.verify import TokenRejected, TokenVerifier
from shared_gov.db import Database
from shared_gov.db.notify import ChangeListener
from shared_gov.messages import http as m
from shared_gov.messages import tokens as mt
from shared_gov.policy import PolicyEngine
from shared_gov.policy.permissions import PermissionStore, admit
from shared_gov.settings import Settings
from shared_gov.towns.registry import TenantRegistry


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


def services(request: ASGIConnection[Any, Any, Any, Any]) -> Services:
    result: Services = request.app.state.services
    return result


class BearerAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Verify the bearer token before anything else about the request is read.

    Every refusal (a 401 saying which check failed) is reported first: a denied
    ``authenticate`` event in the log of the town the token points at, or a
    warning log line, both rate limited per client address and town (see
    :mod:`shared_gov.auth.failures`).
    """

    GATE_STATE_KEY = "failed_logins"
    """Where the process's :class:`FailedLoginGate` lives on ``app.state``."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if header is None:
            await self._report(connection, "missing token", None)
            raise errors.unauthorized(mt.MISSING)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            bearer = scheme.lower() == "bearer"
            await self._report(
                connection, "missing token" if bearer else "not a bearer token", None
            )
            raise errors.unauthorized(mt.MISSING if bearer else mt.NOT_BEARER)
        services_: Services = connection.app.state.services
        try:
            principal = await services_.verifier.verify(token.strip())
        except TokenRejected as exc:
            await self._report(connection, exc.kind, exc.town)
            raise
        structlog.contextvars.bind_contextvars(actor=principal.actor)
        # Inactive towns (401) and suspended people (403), for every role.
        await admit(connection, principal)
        return AuthenticationResult(user=principal, auth=None)

    async def _report(
        self, connection: ASGIConnection[Any, Any, Any, Any], kind: str, town: str | None
    ) -> None:
        state = connection.app.state
        gate = state.get(self.GATE_STATE_KEY)
        if not isinstance(gate, FailedLoginGate):
            gate = state[self.GATE_STATE_KEY] = FailedLoginGate()
        services_: Services = state.services
        await report_failed_login(
            kind=kind,
            town=town,
            client_addr=connection.client.host if connection.client else None,
            user_agent=connection.headers.get("user-agent"),
            gate=gate,
            db=services_.db,
            registry=services_.registry,
            audit=services_.settings.audit,
        )


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Litestar dependency: the caller the authentication middleware verified."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise errors.unauthorized()
    return user


# --- query parameters ------------------------------------------------------------

_QUERY_NAMES: weakref.WeakKeyDictionary[BaseRouteHandler, frozenset[str]] = (
    weakref.WeakKeyDictionary()
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")


async def known_query_only(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: a query parameter the endpoint does not take is a 400, never ignored.

    An ignored filter is a wrong answer that looks right: ``?resident=<id>``
    on a search whose filter is ``subject`` returned the whole log. Put it
    after the endpoint's authorisation guard, so that a caller who may not
    use the endpoint learns nothing else. The response names the parameter
    (only when it is a plain short name); the audit reason never does.
    """
    names = _QUERY_NAMES.get(handler)
    if names is None:
        model = handler.create_kwargs_model(dict.fromkeys(connection.path_params))  # type: ignore[arg-type]
        names = _QUERY_NAMES[handler] = frozenset(
            p.field_alias for p in model.expected_query_params
        )
    unknown = sorted(set(connection.query_params) - names)
    if not unknown:
        return
    shown = [n for n in unknown if _SAFE_NAME.match(n)]
    sentence = m.UNKNOWN_QUERY_PARAMETERS if len(unknown) > 1 else m.UNKNOWN_QUERY_PARAMETER
    exc = errors.bad_request(
        sentence(
            names=": " + ", ".join(shown) if shown else "",
            takes=", ".join(sorted(names)) or m.NONE,
        )
    )
    exc.audit["reason"] = "unknown query parameter"
    raise exc
