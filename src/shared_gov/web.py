"""Request plumbing shared by every controller: app services, the principal
dependency, and the tenant scope that opens a unit of work.

Controllers stay thin (DESIGN.md rule 1): they resolve the principal, enter
the tenant scope and call a service. :func:`tenant_scope` refuses a caller
from another town with the same 404 a missing tenant gets, before any
database work, and binds the tenant code to the request's log context.

Whatever a handler or scope did not record itself, :func:`audit_unrecorded`
(the application's ``after_exception`` hook) does: every request under
``/api/v1/tenants/{code}/`` that ends in a refusal or an error leaves exactly
one event in that town's log (:data:`ROUTE_AUDIT` names its action).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Scope

from shared_gov import errors, policy
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.audit.recorder import (
    AuditEvent,
    record,
    record_apart,
    record_both,
    written_in_request,
)
from shared_gov.auth.failures import FailedLoginGate, failed_login_actor, report_failed_login
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.auth.principal import Principal
from shared_gov.auth.verify import TokenRejected, TokenVerifier
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.crypto.providers import KeyProviderError, WrapError
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.db.engine import UNAVAILABLE_ERRORS, BindingCheckFailed
from shared_gov.db.notify import ChangeListener
from shared_gov.logs import get_logger
from shared_gov.policy import Access, PolicyEngine, agreements
from shared_gov.policy.permissions import PermissionStore, admit
from shared_gov.policy.purposes import purpose_from_header
from shared_gov.settings import Settings
from shared_gov.tenancy.names import TenantNames
from shared_gov.tenancy.registry import TenantRegistry

log = get_logger(__name__)


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

    Every refusal (the same 401 as ever) is reported first: a denied
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
            raise errors.unauthorized()
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            kind = "not a bearer token" if scheme.lower() != "bearer" else "missing token"
            await self._report(connection, kind, None)
            raise errors.unauthorized()
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
    actor = policy.actor_of(principal, town.purposes_for(principal.subject, principal.department))
    structlog.contextvars.bind_contextvars(purpose=purpose.code)
    return Access(principal, actor, purpose, svc.policy)


def audit_actor(
    request: ASGIConnection[Any, Any, Any, Any], principal: Principal, purpose: str | None
) -> AuditActor:
    return AuditActor(
        subject=principal.subject,
        tenant=principal.tenant,
        department=principal.department,
        roles=tuple(sorted(principal.roles)),
        auth_strength="mfa" if principal.mfa else "single",
        client_addr=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        purpose=(purpose or "")[:64] or None,
    )


_TERMS = agreements.TermsCache()
"""This process's cached agreement terms (verified in every request's binding)."""


@asynccontextmanager
async def tenant_scope(
    request: Request[Any, Any, Any],
    principal: Principal,
    code: str,
    purpose: str | None,
    action: str,
    *,
    agreement: str | None = None,
    subject: str | None = None,
) -> AsyncIterator[tuple[TenantUnitOfWork, Access]]:
    """Open a unit of work on town ``code`` for ``principal`` acting for ``purpose``.

    Every access is audited: the event is written in the unit of work's own
    transaction just before it commits (no audit, no access); a refused or
    failed attempt is written in a transaction of its own after the rollback,
    including attempts from other towns (in the target town's log).

    ``agreement`` is the X-Agreement header of the endpoints that serve other
    towns under a sharing agreement (resident read and search): with it, staff
    of another town get a unit of work on ``code`` whose every decision is
    taken under the agreement (see :func:`_shared_scope`).

    ``subject``: the resident the request names (a valid id), recorded on the
    event whatever the outcome, so refused attempts name their target too.
    """
    structlog.contextvars.bind_contextvars(tenant=code)
    svc = services(request)
    if (
        agreement is not None
        and principal.tenant is not None
        and principal.tenant != code
        and not principal.is_operator
    ):
        async with _shared_scope(
            request, principal, code, purpose, action, agreement, subject
        ) as scope:
            yield scope
        return
    actor = audit_actor(request, principal, purpose)
    names = await svc.registry.get(code)
    try:
        access = await access_for(svc, principal, code, purpose)
    except Exception as exc:
        # A refusal is recorded; a 503 (no connection for the permission
        # lookup) decided nothing, and recording it would wait for the pool again.
        if names is not None:
            event = AuditEvent(action=action, subjects=_named(subject))
            if isinstance(exc, errors.DomainError) and exc.status == 404:
                exc.audit.setdefault("reason", "caller from another town")
            await record_failure(svc, names, actor, event, exc)
        raise
    if names is None:  # pragma: no cover - checked in access_for
        raise errors.not_found()
    access.audit = AuditEvent(action=action, subjects=_named(subject))
    try:
        async with svc.db.tenant(names) as uow:
            yield uow, access
            if svc.settings.audit:
                await record(uow, actor, access.audit)
    except Exception as exc:
        await record_failure(svc, names, actor, access.audit, exc)
        raise


def _named(subject: str | None) -> list[str]:
    return [subject] if subject else []


def _refused(event: AuditEvent, exc: errors.DomainError) -> None:
    # Every 4xx is a refusal: "not_found" for a plain 404, "denied" for the
    # rest (400, 403, 409, a stale If-Match's 412, 422, 428...). A refusal
    # answered with 404 (another town, under an agreement) is still a denial.
    plain_404 = exc.status == 404 and not exc.audit.get("reason")
    event.outcome = "not_found" if plain_404 else "denied"
    event.reason = str(exc.audit.get("reason") or exc.extra.get("reason") or exc.detail)
    event.policy_ids = list(exc.audit.get("policies") or exc.extra.get("policies", []))


def decided_nothing(exc: BaseException) -> bool:
    """The database or the key provider was unavailable: a 503 that decided nothing.

    Nothing is written for it: the audit write would wait for the same pool
    or database again (the caller would see its 503 after twice the
    timeout), and an auditor would count a "denial" that was an outage. A
    warning log line (``audit.unrecorded``) says that it happened.
    """
    if isinstance(exc, errors.DomainError):
        return exc.status >= 500
    if isinstance(exc, KeyProviderError):
        return not isinstance(exc, WrapError)
    return isinstance(exc, UNAVAILABLE_ERRORS)


def failed_attempt(event: AuditEvent, exc: BaseException) -> bool:
    """Turn ``event`` into the record of an attempt that ended with ``exc``.

    A refusal (4xx) is ``denied`` / ``not_found`` with its reason; anything
    else that is not an outage (a bug, a constraint the database enforced, a
    statement timeout) is ``error`` with the exception's TYPE only — its
    message may quote the values involved. False: write nothing
    (:func:`decided_nothing`).
    """
    if isinstance(exc, errors.DomainError) and exc.status < 500:
        _refused(event, exc)
        return True
    if decided_nothing(exc):
        return False
    event.outcome = "error"
    event.policy_ids = []
    if isinstance(exc, asyncpg.QueryCanceledError):
        event.reason = "the database did not answer in time"
    else:
        event.reason = f"internal error ({type(exc).__name__})"
    return True


async def record_failure(
    svc: Services,
    names: TenantNames,
    actor: AuditActor,
    event: AuditEvent,
    exc: BaseException,
    write: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Record a refused or failed attempt in a transaction of its own.

    ``write`` writes ``event`` (default: :func:`record_apart` in town
    ``names``); a cross-town scope passes one that writes both towns'
    events. A refusal's write failing fails the request as before (no
    audit, no answer). An error's write failing is logged and the original
    exception kept: what the client gets is the error that happened.
    """
    if not svc.settings.audit:
        return
    if not failed_attempt(event, exc):
        log.warning("audit.unrecorded", action=event.action, error=type(exc).__name__)
        return
    if write is None:

        async def write() -> None:
            await record_apart(svc.db, names, actor, event)

    if event.outcome != "error":
        await write()
        return
    try:
        await write()
    except Exception as failed:
        log.warning(
            "audit.unrecorded",
            action=event.action,
            error=type(exc).__name__,
            audit_error=type(failed).__name__,
        )


@asynccontextmanager
async def _shared_scope(
    request: Request[Any, Any, Any],
    principal: Principal,
    code: str,
    purpose: str | None,
    action: str,
    agreement_header: str,
    subject: str | None = None,
) -> AsyncIterator[tuple[TenantUnitOfWork, Access]]:
    """A recipient town's staff acting on town ``code`` under a sharing agreement.

    One transaction for both towns: bound to the provider (``code``) for the
    work, which therefore still runs as the provider's role and reaches nothing
    else. The agreement is read in that transaction after taking its shared
    advisory lock, so a revocation committed before is seen and one committed
    after waits for this request. The provider's log records who read what
    under which agreement; the recipient's log records what its staff
    obtained; both commit with the access or neither does. Whatever is wrong
    (no agreement, not a party, revoked, expired, not covered) the caller gets
    the same 404 as for a missing resident; the reason goes to both logs.
    """
    svc = services(request)
    actor = audit_actor(request, principal, purpose)
    provider = await svc.registry.get(code)
    recipient = await svc.registry.get(principal.tenant or "")
    agreement_id = agreements.parse_id(agreement_header)
    if provider is None or recipient is None:
        raise errors.not_found()
    event = AuditEvent(
        action=action,
        agreement_id=str(agreement_id) if agreement_id else None,
        subjects=_named(subject),
    )
    try:
        if agreement_id is None:
            raise errors.bad_request("X-Agreement must be an agreement id")
        purpose_ = purpose_from_header(purpose)
        town = await svc.permissions.town(recipient.code)
        access = Access(
            principal,
            policy.actor_of(principal, town.purposes_for(principal.subject, principal.department)),
            purpose_,
            svc.policy,
        )
        structlog.contextvars.bind_contextvars(purpose=purpose_.code)
        access.audit = event
        lock = agreements.lock_name(agreement_id)
        async with contextlib.AsyncExitStack() as stack:
            cached = _TERMS.get(agreement_id)
            try:
                checks = [agreements.check_call(agreement_id, cached)] if cached else []
                at_provider, at_recipient = await stack.enter_async_context(
                    svc.db.pair(provider, recipient, [lock], checks)
                )
            except BindingCheckFailed:
                # The agreement changed since this process cached it: read it.
                _TERMS.drop(agreement_id)
                cached = None
                at_provider, at_recipient = await stack.enter_async_context(
                    svc.db.pair(provider, recipient, [lock])
                )
            terms = cached or await agreements.terms_in(at_provider, agreement_id)
            if terms is None:
                exc = errors.not_found()
                exc.audit["reason"] = "no such agreement with this town"
                raise exc
            if cached is None:
                _TERMS.put(agreement_id, terms)
            access.agreement = terms
            access.now = int(time.time())
            yield at_provider, access
            if svc.settings.audit:
                await record_both(at_provider, at_recipient, actor, event, _obtained(event, code))
    except Exception as exc:

        async def write_both() -> None:
            async with svc.db.pair(provider, recipient) as (at_provider, at_recipient):
                await record_both(at_provider, at_recipient, actor, event, _obtained(event, code))

        await record_failure(svc, provider, actor, event, exc, write_both)
        if not isinstance(exc, errors.DomainError):
            raise
        if exc.status == 404:
            # One 404 for everything: "no such resident" from the service would
            # tell a missing record from one the agreement does not cover.
            raise errors.not_found() from exc
        raise


def _obtained(event: AuditEvent, provider: str) -> AuditEvent:
    """The recipient's record of the same access: what its staff obtained, and from whom."""
    prefix = f"from town {provider} under agreement"
    return dataclasses.replace(
        event,
        subjects=list(event.subjects),
        fields=list(event.fields),
        policy_ids=list(event.policy_ids),
        reason=f"{prefix}: {event.reason}" if event.reason else prefix,
    )


# --- refusals and errors nobody recorded ---------------------------------------

TENANT_ROUTES = "/api/v1/tenants/{code}/"
"""Every route under this prefix leaves an event in the town's log, whatever happens."""


@dataclass(frozen=True, slots=True)
class RouteAudit:
    """What an event about a request on one route is called in the town's log."""

    action: str
    resource_type: str


_T = TENANT_ROUTES
ROUTE_AUDIT: dict[tuple[str, str], RouteAudit] = {
    # The same actions the handlers' own scopes record, so that an auditor
    # finds a refused attempt under the action a granted one has.
    ("POST", _T + "residents"): RouteAudit("resident.register", "resident"),
    ("POST", _T + "residents/one-stop-move-in"): RouteAudit(
        "resident.move_in_from_town", "resident"
    ),
    ("POST", _T + "residents/search"): RouteAudit("resident.search", "resident"),
    ("GET", _T + "residents/{resident_id}"): RouteAudit("resident.read", "resident"),
    ("POST", _T + "residents/{resident_id}/moves"): RouteAudit("resident.move", "resident"),
    ("PUT", _T + "residents/{resident_id}/support-measure"): RouteAudit(
        "resident.protect", "resident"
    ),
    ("GET", _T + "residents/{resident_id}/history"): RouteAudit("resident.history", "resident"),
    ("GET", _T + "residents/{resident_id}/access-log"): RouteAudit(
        "resident.access_log", "resident"
    ),
    ("GET", _T + "households/{household_no}"): RouteAudit("household.read", "resident"),
    ("GET", _T + "events"): RouteAudit("events.read", "event_feed"),
    ("GET", _T + "audit/events"): RouteAudit("audit.query", "audit_log"),
    ("GET", _T + "audit/analyses"): RouteAudit("audit.analyses", "audit_log"),
    ("POST", _T + "audit/suppressions"): RouteAudit("audit.suppress", "audit_log"),
    ("GET", _T + "audit/suppressions"): RouteAudit("audit.query", "audit_log"),
    ("GET", _T + "audit/checkpoint"): RouteAudit("audit.checkpoint", "audit_log"),
    ("GET", _T + "audit/proofs/inclusion"): RouteAudit("audit.proof", "audit_log"),
    ("GET", _T + "audit/proofs/consistency"): RouteAudit("audit.proof", "audit_log"),
    ("GET", _T + "departments"): RouteAudit("admin.department.list", "department"),
    ("PUT", _T + "departments/{department}"): RouteAudit("admin.department", "department"),
    ("GET", _T + "staff"): RouteAudit("admin.staff.list", "staff"),
    ("GET", _T + "staff/{staff_id}"): RouteAudit("admin.staff.read", "staff"),
    ("PUT", _T + "staff/{staff_id}"): RouteAudit("admin.staff", "staff"),
    ("DELETE", _T + "staff/{staff_id}"): RouteAudit("admin.staff.delete", "staff"),
    ("GET", _T + "staff/{staff_id}/explain"): RouteAudit("admin.staff.explain", "staff"),
    ("GET", _T + "issuer"): RouteAudit("admin.issuer.read", "issuer"),
    ("PUT", _T + "issuer"): RouteAudit("admin.issuer", "issuer"),
    ("DELETE", _T + "issuer"): RouteAudit("admin.issuer.delete", "issuer"),
    ("GET", _T + "issuer/pending"): RouteAudit("admin.issuer.pending.read", "issuer"),
    ("POST", _T + "issuer/pending/{proposal_id}/approve"): RouteAudit(
        "admin.issuer.approve", "issuer"
    ),
    ("DELETE", _T + "issuer/pending/{proposal_id}"): RouteAudit("admin.issuer.cancel", "issuer"),
    ("POST", _T + "enrolment"): RouteAudit("tenant.enrol", "enrolment"),
}
"""The audit action of every tenant-scoped route, by (method, path template).

A route missing here is still recorded (action ``api.<handler name>``,
resource type ``request``); tests/audit/test_refusal_coverage.py fails
until it is added."""


def route_audit(scope: Scope) -> RouteAudit:
    """The action and resource type of the request's route (see :data:`ROUTE_AUDIT`)."""
    template = str(scope.get("path_template") or "")
    found = ROUTE_AUDIT.get((str(scope.get("method") or ""), template))
    if found is not None:
        return found
    handler = scope.get("route_handler")
    name = getattr(handler, "handler_name", None) or "unknown"
    return RouteAudit(f"api.{name}", "request")


ANONYMOUS_GATE_KEY = "anonymous_refusals"
"""Where the process's gate for refusals of callers without a token lives on ``app.state``."""


async def audit_unrecorded(scope: Scope, exc: BaseException) -> None:
    """Record a request on a town's route that failed without recording it itself.

    The application's ``after_exception`` hook: it runs after the handler
    raised and before the error response is sent, so a refusal is in the
    log before the caller learns of it (no record, no answer). ``exc`` is
    the exception as the response will render it: a 4xx is a
    :class:`errors.DomainError` (the app converts Litestar's own validation
    and HTTP errors first); anything else is the original exception.

    Covered: everything raised before a scope records — body and parameter
    decoding and validation (400, 422), header checks (428, 412), refusals
    of read-only administration and of the auditors' parameters — and
    whatever a handler raises outside its scope. One event, in a transaction
    of its own, only if nothing was written for the request yet
    (:func:`written_in_request`), in the log of the town of the path when it
    is on this deployment (an unknown code writes nothing, as before):

    - actor: the caller; for a route without a token (enrolment) the failed
      login's ``unauthenticated`` actor, within a per-process budget like the
      failed logins' (a caller without a token must not be able to fill a
      town's log);
    - action and resource type from :data:`ROUTE_AUDIT`; the resident named
      in the path (``resident_id``, when it is an id) as the subject;
    - outcome and reason as :func:`failed_attempt` gives them: ``not_found``,
      ``denied`` (every other 4xx, and a 404 for another town or an
      operator), ``error`` (5xx, the exception's type only); an outage (503)
      writes nothing. Reasons are our own texts: never a submitted value.

    A request routing refused (405: a method the route does not take) has
    no route handler: :func:`shared_gov.unrouted.audit_unrouted` finds the
    route and the caller, and records it here.

    Not covered (recorded elsewhere or never): the authentication
    middleware's refusals (401s, suspended people: :mod:`shared_gov.auth.failures`
    and :func:`shared_gov.policy.permissions.admit` record them), requests
    that match no route with any method (no caller was identified), and
    routes outside a town's path.
    """
    if scope["type"] != ScopeType.HTTP or written_in_request():
        return
    template = str(scope.get("path_template") or "")
    handler = scope.get("route_handler")
    if handler is None:
        # Routing refused it (a 405): the route its path matches, and who asked.
        from shared_gov.unrouted import audit_unrouted

        await audit_unrouted(scope, exc)
        return
    if not template.startswith(TENANT_ROUTES):
        return
    principal = scope.get("user")
    anonymous_ok = _without_token(handler) or bool(scope.get("shared_gov.unrouted"))
    if not isinstance(principal, Principal) and not anonymous_ok:
        return  # the authentication middleware refused it (and reported it)
    code = str((scope.get("path_params") or {}).get("code") or "")
    if not is_valid_lgcode(code):
        return
    request: Request[Any, Any, Any] = Request(scope)
    svc = services(request)
    try:
        names = await svc.registry.get(code)
    except Exception as failed:  # the catalog is unreachable: nothing to write into
        log.warning("audit.unrecorded", error=type(exc).__name__, audit_error=type(failed).__name__)
        return
    if names is None:
        return
    if isinstance(principal, Principal):
        actor = audit_actor(request, principal, _known_purpose(request))
        outsider = _outsider(principal, code)
        if outsider and isinstance(exc, errors.DomainError) and not exc.audit.get("reason"):
            # They got what anyone outside the town gets; the log says who it was.
            exc.audit["reason"] = outsider if exc.status == 404 else f"{outsider}: {exc.detail}"
    else:
        client = request.client.host if request.client else None
        gate = request.app.state.get(ANONYMOUS_GATE_KEY)
        if not isinstance(gate, FailedLoginGate):
            gate = request.app.state[ANONYMOUS_GATE_KEY] = FailedLoginGate()
        if not gate.admit(client or "unknown", code):
            return
        actor = failed_login_actor(client, request.headers.get("user-agent"))
    route = route_audit(scope)
    rid = (scope.get("path_params") or {}).get("resident_id")
    event = AuditEvent(
        action=route.action,
        resource_type=route.resource_type,
        subjects=_named(_resident_id(rid)),
    )
    await record_failure(svc, names, actor, event, exc)


def _without_token(handler: BaseRouteHandler) -> bool:
    return bool(handler.opt.get("exclude_from_auth"))


def _known_purpose(request: Request[Any, Any, Any]) -> str | None:
    # A purpose the platform knows, or none: an arbitrary X-Purpose is the
    # caller's text, and this record may be about a refusal of exactly that.
    try:
        return purpose_from_header(request.headers.get("x-purpose")).code
    except errors.DomainError:
        return None


def _outsider(principal: Principal, code: str) -> str | None:
    if principal.is_operator:
        return "operators have no access to a town's own data"
    if principal.tenant != code:
        return "caller from another town"
    return None


def _resident_id(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


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
    detail = "unknown query parameter" + ("s" if len(unknown) > 1 else "")
    if shown:
        detail += ": " + ", ".join(shown)
    takes = ", ".join(sorted(names)) or "none"
    exc = errors.bad_request(f"{detail}; this endpoint takes {takes}")
    exc.audit["reason"] = "unknown query parameter"
    raise exc
