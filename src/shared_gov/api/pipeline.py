"""Request plumbing every controller shares: the process's services, bearer
authentication, the principal dependency, the guard that refuses unknown
query parameters and the check that refuses repeated single values."""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Receive, Scope, Send

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


# --- query parameters and the entry's headers -------------------------------------

_QUERY_NAMES: weakref.WeakKeyDictionary[BaseRouteHandler, tuple[frozenset[str], frozenset[str]]] = (
    weakref.WeakKeyDictionary()
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")

SINGLE_HEADERS = (b"x-purpose", b"x-agreement", b"if-match")
"""Headers the guarded entry reads one value of: each at most once per request."""

CHECKED_BY_ENTRY = "values_checked_by_entry"
"""``opt`` key of a route whose entry checks :func:`single_values` itself,
after deciding who may ask (:mod:`shared_gov.api.entry.dependencies`)."""


def _query_names(
    handler: BaseRouteHandler, path_params: dict[str, Any]
) -> tuple[frozenset[str], frozenset[str]]:
    """The query parameters ``handler`` takes (with its dependencies'), and the
    ones among them it takes a single value of.

    ``handler``: the route's own (``scope["route_handler"]``), not the copy
    Litestar hands each guard, so that the cache holds.
    """
    found = _QUERY_NAMES.get(handler)
    if found is None:
        model = handler.create_kwargs_model(dict.fromkeys(path_params))  # type: ignore[arg-type]
        params = model.expected_query_params
        found = _QUERY_NAMES[handler] = (
            frozenset(p.field_alias for p in params),
            frozenset(p.field_alias for p in params if not p.is_sequence),
        )
    return found


def single_values(scope: Scope) -> None:
    """400 for a single-valued query parameter or an entry header given twice.

    ``?format=json&format=csv``: the audit declaration read the first value
    (an ``audit.query``), Litestar bound the last (a CSV export of the whole
    log). Two readers of one request must never see different values, so a
    repeated one is refused rather than picked (as a repeated JSON key is).
    The same for X-Purpose, X-Agreement and If-Match. The response names
    the parameter or header (only a plain short name); the audit reason never does.
    """
    raw = [name.lower() for name, _ in scope.get("headers") or ()]
    twice = [n.decode() for n in SINGLE_HEADERS if raw.count(n) > 1]
    if twice:
        exc = errors.bad_request("header given more than once: " + ", ".join(twice))
        exc.audit["reason"] = "repeated header"
        raise exc
    query = scope.get("query_string") or b""
    handler = scope.get("route_handler")
    if not query or not isinstance(handler, BaseRouteHandler):
        return
    _names, single = _query_names(handler, scope.get("path_params") or {})
    given = [name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
    repeated = sorted({n for n in given if n in single and given.count(n) > 1})
    if repeated:
        shown = [n for n in repeated if _SAFE_NAME.match(n)]
        exc = errors.bad_request(
            "query parameter given more than once: " + ", ".join(shown)
            if shown
            else "a query parameter given more than once"
        )
        exc.audit["reason"] = "repeated query parameter"
        raise exc


def single_valued(app: ASGIApp) -> ASGIApp:
    """Route middleware: :func:`single_values` on every request, unless the
    route's entry checks it once it has decided who asks (``opt[CHECKED_BY_ENTRY]``).

    A middleware (inside authentication), not an application-wide guard:
    Litestar copies the route handler for every guard call (see
    :func:`shared_gov.validation.text_path_parameters`).
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        if not (handler is not None and handler.opt.get(CHECKED_BY_ENTRY)):
            single_values(scope)
        await app(scope, receive, send)

    return middleware


async def known_query_only(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: a query parameter the endpoint does not take is a 400, never ignored;
    then :func:`single_values`.

    An ignored filter is a wrong answer that looks right: ``?resident=<id>``
    on a search whose filter is ``subject`` returned the whole log. Put it
    after the endpoint's authorisation guard, so that a caller who may not
    use the endpoint learns nothing else. The response names the parameter
    (only when it is a plain short name); the audit reason never does.
    """
    route = connection.scope.get("route_handler")
    names, _single = _query_names(
        route if isinstance(route, BaseRouteHandler) else handler, connection.path_params
    )
    unknown = sorted(set(connection.query_params) - names)
    if not unknown:
        single_values(connection.scope)
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
