"""How a route gets its entry: :func:`audited`, the route's declaration.

Spread into the route decorator, it declares the route's audit action and
gate (:class:`.routes.Audit`) and provides the ``entry`` dependency, whose
own parameters are the town code and the headers the gate reads — so the
OpenAPI document lists them per route and no handler repeats them.

Who first, then what: on every such route the entry starts before
Litestar decodes a parameter or the body. A gate decided in a guard
(:attr:`.gates.Gate.in_guard`) is decided there whole
(:func:`admitted_first`); any other gate's route middleware
(:func:`town_first`) at least refuses another town and an operator with
their 404 — never a 422 naming the fields they sent. Only then are
repeated values refused (:func:`.pipeline.single_values`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.params import HeaderParameter, PathParameter
from litestar.types import ASGIApp, Receive, Scope, Send

from shared_gov import errors
from shared_gov.auth.principal import Principal
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.towns.names import TenantNames

from ..pipeline import CHECKED_BY_ENTRY, known_query_only, services, single_values
from .gates import RECORDS, Gate
from .routes import AUDIT, Audit
from .scope import Entry

TenantCode = Annotated[str, PathParameter(description="6-digit local government code")]
PurposeHeader = Annotated[
    str | None,
    HeaderParameter(name="X-Purpose", description="purpose of use, see policies/purposes.toml"),
]
IfMatchHeader = Annotated[str | None, HeaderParameter(name="If-Match")]
AgreementHeader = Annotated[
    str | None,
    HeaderParameter(
        name="X-Agreement",
        description="staff of another town: the id of the sharing agreement relied on",
    ),
]

NAMED = "shared_gov.named"
"""The key, in a route's ``opt``, of what finds the towns a request names
before its body is decoded (:func:`audited`'s ``named``): where an operator's
refusal on a gate in the caller's own town is recorded."""

Naming = Callable[[Entry], Awaitable[tuple[str, ...]]]

_GUARDED = "shared_gov.entry"
"""Where a guard leaves the entry it let into the town, on the request's state."""


def guarded_entry(connection: ASGIConnection[Any, Any, Any, Any]) -> Entry | None:
    """The entry a guard let into the request's town (admitted, or only past
    :meth:`Entry.enter_town`), if any: what the refusal hook records through."""
    found = connection.state.get(_GUARDED)
    return found if isinstance(found, Entry) else None


def _entry(
    request: ASGIConnection[Any, Any, Any, Any],
    principal: Principal,
    code: str,
    purpose: str | None = None,
    agreement: str | None = None,
    if_match: str | None = None,
) -> Entry:
    guarded = guarded_entry(request)
    if guarded is not None:
        # The guard read no header: the declared parameters are the entry's.
        guarded.purpose, guarded.agreement, guarded.if_match = purpose, agreement, if_match
        return guarded
    return Entry(request, principal, code, purpose, agreement, if_match)


async def _with_purpose(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    code: TenantCode,
    purpose: PurposeHeader = None,
) -> Entry:
    return _entry(request, principal, code, purpose)


async def _with_if_match(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    code: TenantCode,
    purpose: PurposeHeader = None,
    if_match: IfMatchHeader = None,
) -> Entry:
    return _entry(request, principal, code, purpose, if_match=if_match)


async def _with_agreement(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    code: TenantCode,
    purpose: PurposeHeader = None,
    agreement: AgreementHeader = None,
) -> Entry:
    return _entry(request, principal, code, purpose, agreement)


async def _of_path(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal], code: TenantCode
) -> Entry:
    return _entry(request, principal, code)


async def _of_caller(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal]
) -> Entry:
    return _entry(request, principal, principal.tenant or "")


def _provider(
    gate: Gate, agreement: bool, if_match: bool
) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """The entry's provider for a route, and what it takes (for the OpenAPI problems)."""
    if gate.town == "caller":
        return _of_caller, ()
    if gate.purpose is None:
        return _of_path, ("code",)
    if agreement:
        return _with_agreement, ("code", "purpose", "agreement")
    if if_match:
        return _with_if_match, ("code", "purpose", "if_match")
    return _with_purpose, ("code", "purpose")


def _caller(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = connection.scope.get("user")
    if not isinstance(principal, Principal):  # pragma: no cover - authenticated routes
        raise errors.unauthorized()
    return principal


async def admitted_first(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """Guard of a gate decided before Litestar decodes any parameter or body.

    Whoever may not ask gets the refusal (recorded as always), never a
    validation error about what they sent; the handler's ``entry`` is the
    one admitted here. An operator on a gate in the caller's own town (who
    has none) is refused here too, before the body is decoded, in the log of
    each town the request names (the route's ``named``, :meth:`Entry.naming`).
    """
    principal = _caller(connection)
    entry = Entry(connection, principal, str(connection.path_params.get("code") or ""))
    if entry.gate.town == "caller" and principal.is_operator:
        named: Naming | None = (getattr(_handler, "opt", None) or {}).get(NAMED)
        if named is not None:
            entry.naming(*await named(entry))
    await entry.admit()
    connection.state[_GUARDED] = entry


def town_first(agreement: bool) -> Callable[[ASGIApp], ASGIApp]:
    """Route middleware of a gate decided in the handler: the town and who is
    its own, before any parameter or body is decoded (:meth:`Entry.enter_town`).

    A middleware rather than a guard: Litestar copies the route handler for
    every guard call (~35 µs), and this runs on every resident read.
    ``agreement``: the route serves staff of other towns under X-Agreement;
    such a caller is left to the entry, which refuses whatever the agreement
    does not cover with the same 404.
    """

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope, receive, send)
            principal = _caller(connection)
            code = str((scope.get("path_params") or {}).get("code") or "")
            under_agreement = (
                agreement
                and connection.headers.get("x-agreement") is not None
                and not principal.is_operator
                and principal.tenant not in (None, code)
            )
            if not under_agreement:
                entry = Entry(connection, principal, code)
                await entry.enter_town()
                connection.state[_GUARDED] = entry
            single_values(scope)
            await app(scope, receive, send)

        return middleware

    return wrap


def audited(
    action: str,
    resource_type: str = "resident",
    *,
    gate: Gate = RECORDS,
    record: str | None = None,
    agreement: bool = False,
    if_match: bool = False,
    exported_as: str | None = None,
    named: Naming | None = None,
) -> dict[str, Any]:
    """A town route's declaration: its audit action, its gate and its :class:`Entry`.

    Spread into the route decorator. ``record``: the path parameter naming
    the record (the event's subject); ``agreement``: the route serves staff
    of other towns under X-Agreement; ``if_match``: the change needs
    If-Match (read inside the entry, so another town gets its 404 first);
    ``exported_as``: the action when the request asks for an export;
    ``named``: on a gate in the caller's own town, the towns the request
    names (read before the body is decoded), where an operator is refused.
    """
    provide, inputs = _provider(gate, agreement, if_match)
    declared: dict[str, Any] = {
        AUDIT: Audit(action, resource_type, record, gate, exported_as),
        "dependencies": {"entry": Provide(provide)},
        "inputs": inputs,  # for the OpenAPI problems (shared_gov.openapi)
        # Who first, then what: repeated values only for those let in.
        CHECKED_BY_ENTRY: True,
    }
    if named is not None:
        declared[NAMED] = named
    if gate.in_guard:
        # Unknown query parameters too (then repeated values), only for those let in.
        declared["guards"] = [admitted_first, known_query_only]
    else:
        declared["middleware"] = [town_first(agreement)]
    return declared


async def _town(request: Request[Any, Any, Any], code: TenantCode) -> TenantNames:
    structlog.contextvars.bind_contextvars(tenant=code)
    if not is_valid_lgcode(code):
        raise errors.not_found()
    names = await services(request).registry.get(code)
    if names is None:
        raise errors.not_found()
    return names


TOWN = {"town": Provide(_town)}
"""The ``town`` dependency of a route without a bearer token (the enrolment):
the binding of the path's town, or 404."""
