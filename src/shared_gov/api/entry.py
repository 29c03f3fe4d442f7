"""The one guarded entry into a town: decide, record a refusal, bind the town,
record the access.

Every route under ``/api/v1/tenants/{code}/`` declares what it is called in
the town's log (:class:`Audit`, on the route: ``@get(..., **audited(...))``
or ``audit=Audit(...)``). A route that works on the town's records takes the
:class:`Entry` dependency and enters it::

    @get("/residents/{resident_id:str}", **audited("resident.read", record="resident_id",
                                                   agreement=True))
    async def read(self, entry: NamedDependency[Entry], resident_id: FromPath[str]) -> ...:
        async with entry:
            resident, view = await service.get(entry.uow, entry.access, resident_id)

The entry (after Zulip's ``access_*_by_id`` helpers, which fetch, scope and
authorise in one call; and Dispatch's per-request session dependency):

1. refuses a caller from another town with the same 404 a missing town gets
   (:class:`errors.Concealed`: a denial in the log), before any database work;
2. resolves the purpose (X-Purpose) and the caller's Cedar attributes — the
   Access it hands over is bound to the town, so no decision names it again;
3. opens the town's unit of work — or, for staff of another town with an
   X-Agreement, one transaction on both towns under the agreement
   (:func:`_shared`);
4. records the access in that transaction just before it commits (no audit,
   no access), or the refusal or failure in a transaction of its own after
   the rollback. The actor's purpose is the one Cedar decided on.

Record-less resources (the town's event feed, its audit log) are decided by
:func:`admit_town` in a guard, before any parameter is decoded; what a route
raises outside any entry is recorded by :mod:`.refusals`.

Headers and the town code arrive as the entry dependency's own parameters,
so the OpenAPI document still lists them per route, and no handler repeats them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any

import asyncpg
import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, PathParameter

from shared_gov import errors, policy
from shared_gov.audit.recorder import (
    READ_ACTIONS,
    AuditEvent,
    record,
    record_apart,
    record_both,
    submit,
)
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.auth.principal import Principal
from shared_gov.crypto.providers import KeyProviderError, WrapError
from shared_gov.db import TenantUnitOfWork
from shared_gov.db.engine import UNAVAILABLE_ERRORS, BindingCheckFailed
from shared_gov.logs import get_logger
from shared_gov.policy import Access, Query, Resource, agreements
from shared_gov.policy.purposes import purpose_from_header
from shared_gov.towns.names import TenantNames

from .pipeline import Services, services

log = get_logger(__name__)

TENANT_ROUTES = "/api/v1/tenants/{code}/"
"""Every route under this prefix leaves an event in the town's log, whatever happens."""


# --- what a route is called in the log -------------------------------------------


@dataclass(frozen=True, slots=True)
class Audit:
    """What an event about a request on one route is called in the town's log.

    Declared on the route (its ``opt["audit"]``), read by the entry and by
    the refusal hook, so that a refused attempt is found under the action a
    granted one has.
    """

    action: str
    resource_type: str = "resident"
    record: str | None = None
    """The path parameter naming the record (a resident id): the event's subject,
    whatever the outcome."""

    def subject(self, path_params: dict[str, Any] | None) -> list[str]:
        """The event's subjects: the record the path names, when it is an id."""
        if self.record is None or not path_params:
            return []
        value = path_params.get(self.record)
        if not isinstance(value, str):
            return []
        try:
            return [str(uuid.UUID(value))]
        except ValueError:
            return []


AUDIT = "audit"
"""The key of a route's :class:`Audit` in its ``opt``."""


def route_audit(scope: Any) -> Audit:
    """The :class:`Audit` of the request's route (``api.<handler>`` if it declares none)."""
    handler = scope.get("route_handler")
    opt = getattr(handler, "opt", None) or {}
    found = opt.get(AUDIT)
    if isinstance(found, Audit):
        return found
    name = getattr(handler, "handler_name", None) or "unknown"
    return Audit(f"api.{name}", "request")


# --- the entry's parameters (documented per route by the dependency) --------------

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


async def _entry(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    code: TenantCode,
    purpose: PurposeHeader = None,
) -> Entry:
    return Entry(request, principal, code, purpose, None, None)


async def _entry_if_match(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    code: TenantCode,
    purpose: PurposeHeader = None,
    if_match: IfMatchHeader = None,
) -> Entry:
    return Entry(request, principal, code, purpose, None, if_match)


async def _entry_shared(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    code: TenantCode,
    purpose: PurposeHeader = None,
    agreement: AgreementHeader = None,
) -> Entry:
    return Entry(request, principal, code, purpose, agreement, None)


_PROVIDERS = {
    (False, False): ({"entry": Provide(_entry)}, ("code", "purpose")),
    (False, True): ({"entry": Provide(_entry_if_match)}, ("code", "purpose", "if_match")),
    (True, False): ({"entry": Provide(_entry_shared)}, ("code", "purpose", "agreement")),
}


def audited(
    action: str,
    resource_type: str = "resident",
    *,
    record: str | None = None,
    agreement: bool = False,
    if_match: bool = False,
) -> dict[str, Any]:
    """A town route's declaration: its audit action and its :class:`Entry`.

    Spread into the route decorator. ``agreement``: the route serves staff of
    other towns under X-Agreement; ``if_match``: the change needs If-Match
    (read inside the entry, so another town gets its 404 first).
    """
    dependencies, inputs = _PROVIDERS[(agreement, if_match)]
    return {
        AUDIT: Audit(action, resource_type, record),
        "dependencies": dependencies,
        "inputs": inputs,  # for the OpenAPI problems (shared_gov.openapi)
    }


# --- the audit actor and the decision ---------------------------------------------


def audit_actor(
    request: ASGIConnection[Any, Any, Any, Any], principal: Principal, purpose: str | None
) -> AuditActor:
    """Who acts, as the log records it; ``purpose``: one the platform decided on, or None."""
    return AuditActor(
        subject=principal.subject,
        tenant=principal.tenant,
        department=principal.department,
        roles=tuple(sorted(principal.roles)),
        auth_strength="mfa" if principal.mfa else "single",
        client_addr=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        purpose=purpose,
    )


def known_purpose(header: str | None) -> str | None:
    """The purpose an X-Purpose names when the platform knows it, else None.

    An arbitrary X-Purpose is the caller's text, and the record may be about
    a refusal of exactly that: the log holds only purposes that exist.
    """
    try:
        return purpose_from_header(header).code
    except errors.DomainError:
        return None


def outsider(principal: Principal, code: str) -> str | None:
    """Why ``principal`` is outside town ``code`` (None: they are its own)."""
    if principal.is_operator:
        return "operators have no access to a town's own data"
    if principal.tenant != code:
        return "caller from another town"
    return None


async def access_for(
    svc: Services, principal: Principal, code: str, purpose_header: str | None
) -> Access:
    """The caller's Access to town ``code`` for the purpose stated in X-Purpose.

    Order matters: a caller from another town gets 404 before anything else
    (not even whether the purpose exists is revealed); then a missing or
    unknown purpose is 400; permissions come from the town's cached snapshot.
    """
    if not policy.may_enter(principal, code):
        raise errors.concealed("caller from another town")
    purpose = purpose_from_header(purpose_header)
    town = await svc.permissions.town(code)
    actor = policy.actor_of(principal, town.purposes_for(principal.subject, principal.department))
    structlog.contextvars.bind_contextvars(purpose=purpose.code)
    return Access(principal, actor, purpose, svc.policy, code)


# --- the entry ------------------------------------------------------------------

_TERMS = agreements.TermsCache()
"""This process's cached agreement terms (verified in every request's binding)."""


class Entry:
    """One request's way into a town: what the handler works with.

    ``async with entry:`` decides, binds and records (module docstring);
    inside, ``entry.uow`` is the town's unit of work, ``entry.access`` the
    town-bound Access, ``entry.audit`` the event that will be recorded (the
    services fill it). ``entry.if_match`` is the If-Match header of a change.
    """

    __slots__ = (
        "_scope",
        "access",
        "agreement",
        "code",
        "if_match",
        "principal",
        "purpose",
        "request",
        "uow",
    )

    uow: TenantUnitOfWork
    access: Access

    def __init__(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        code: str,
        purpose: str | None,
        agreement: str | None,
        if_match: str | None,
    ) -> None:
        self.request = request
        self.principal = principal
        self.code = code
        self.purpose = purpose
        self.agreement = agreement
        self.if_match = if_match

    @property
    def audit(self) -> AuditEvent:
        return self.access.audit

    @property
    def route(self) -> Audit:
        return route_audit(self.request.scope)

    def _event(self, route: Audit) -> AuditEvent:
        return AuditEvent(
            action=route.action,
            resource_type=route.resource_type,
            subjects=route.subject(self.request.scope.get("path_params")),
        )

    async def __aenter__(self) -> Entry:
        structlog.contextvars.bind_contextvars(tenant=self.code)
        principal = self.principal
        if (
            self.agreement is not None
            and principal.tenant is not None
            and principal.tenant != self.code
            and not principal.is_operator
        ):
            self._scope = _shared(self, self.agreement)
        else:
            self._scope = _own(self)
        await self._scope.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._scope.__aexit__(exc_type, exc, tb)


@asynccontextmanager
async def _own(entry: Entry) -> AsyncIterator[None]:
    """The caller's own town: one unit of work, one event."""
    request, principal, code = entry.request, entry.principal, entry.code
    svc = services(request)
    route = entry.route
    names = await svc.registry.get(code)
    try:
        if names is None:
            raise errors.not_found()
        access = await access_for(svc, principal, code, entry.purpose)
    except Exception as exc:
        # A refusal is recorded; a 503 (no connection for the permission
        # lookup) decided nothing, and recording it would wait for the pool again.
        if names is not None:
            actor = audit_actor(request, principal, known_purpose(entry.purpose))
            await record_failure(svc, names, actor, entry._event(route), exc)
        raise
    # The purpose Cedar decides on (access_for refused any other).
    actor = audit_actor(request, principal, access.purpose.code if access.purpose else None)
    access.audit = entry._event(route)
    entry.access = access
    # A read writes nothing: its transaction ends without a WAL flush, and its
    # event is group-committed by the audit writer before the answer leaves
    # (a failed batch fails the read: 503, nothing disclosed). A write's event
    # commits with the write (audit/recorder.py).
    reads = access.audit.action in READ_ACTIONS
    try:
        # A read's transaction is READ ONLY, begun with its first statement
        # (a resident GET needs none: one call of the town's read function).
        async with svc.db.tenant(names, read_only=reads) as uow:
            entry.uow = uow
            yield
            if svc.settings.audit and not reads:
                await record(uow, actor, access.audit)
        if svc.settings.audit and reads:
            await submit(svc.db, names, actor, access.audit)
    except Exception as exc:
        await record_failure(svc, names, actor, access.audit, exc)
        raise


@asynccontextmanager
async def _shared(entry: Entry, agreement_header: str) -> AsyncIterator[None]:
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
    request, principal, code = entry.request, entry.principal, entry.code
    svc = services(request)
    provider = await svc.registry.get(code)
    recipient = await svc.registry.get(principal.tenant or "")
    agreement_id = agreements.parse_id(agreement_header)
    if provider is None or recipient is None:
        raise errors.not_found()
    actor = audit_actor(request, principal, known_purpose(entry.purpose))
    event = entry._event(entry.route)
    event.agreement_id = str(agreement_id) if agreement_id else None
    try:
        if agreement_id is None:
            raise errors.bad_request("X-Agreement must be an agreement id")
        purpose_ = purpose_from_header(entry.purpose)
        town = await svc.permissions.town(recipient.code)
        access = Access(
            principal,
            policy.actor_of(principal, town.purposes_for(principal.subject, principal.department)),
            purpose_,
            svc.policy,
            code,
        )
        structlog.contextvars.bind_contextvars(purpose=purpose_.code)
        access.audit = event
        entry.access = access
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
                raise errors.concealed("no such agreement with this town")
            if cached is None:
                _TERMS.put(agreement_id, terms)
            access.agreement = terms
            access.now = int(time.time())
            entry.uow = at_provider
            yield
            if svc.settings.audit:
                await record_both(at_provider, at_recipient, actor, event, _obtained(event, code))
    except Exception as exc:

        async def write_both() -> None:
            async with svc.db.pair(provider, recipient) as (at_provider, at_recipient):
                await record_both(at_provider, at_recipient, actor, event, _obtained(event, code))

        await record_failure(svc, provider, actor, event, exc, write_both)
        if isinstance(exc, errors.NotFound):
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


# --- record-less resources: the town itself, its event feed, its audit log ---------


@dataclass(frozen=True, slots=True)
class Admitted:
    """A caller a town-level decision let in (what :func:`admit_town` hands on)."""

    svc: Services
    names: TenantNames
    actor: AuditActor


async def admit_town(
    connection: ASGIConnection[Any, Any, Any, Any],
    principal: Principal,
    code: str,
    route: Audit,
    decide: tuple[str, str],
    *,
    purpose: str | None,
    outsiders: str,
    refused: Callable[[policy.Decision], errors.DomainError],
) -> Admitted:
    """Decide a town-level action (``decide``: Cedar action and resource kind) and
    record a refusal: the guarded entry of resources that are no record.

    Other towns and operators get the 404 a missing town gets (a denial in the
    log, ``outsiders`` naming the operators' reason); the town's own people
    whom Cedar refuses get ``refused(decision)``. ``purpose`` is what the
    actor is recorded with (these endpoints serve one purpose, or none).
    """
    structlog.contextvars.bind_contextvars(tenant=code)
    svc = services(connection)
    names = await svc.registry.get(code)
    actor = audit_actor(connection, principal, purpose)
    try:
        if names is None:
            raise errors.not_found()
        if not policy.may_enter(principal, code):
            raise errors.concealed(
                outsiders if principal.is_operator else "caller from another town"
            )
        action, kind = decide
        decision = svc.policy.decide(
            policy.actor_of(principal), Query(action, Resource(kind, code))
        )
        if not decision.allowed:
            raise refused(decision)
    except Exception as exc:
        if names is not None:
            event = AuditEvent(action=route.action, resource_type=route.resource_type)
            await record_failure(svc, names, actor, event, exc)
        raise
    return Admitted(svc, names, actor)


# --- refused and failed attempts --------------------------------------------------


def decided_nothing(exc: BaseException) -> bool:
    """The database or the key provider was unavailable: a 503 that decided nothing.

    Nothing is written for it: the audit write would wait for the same pool
    or database again (the caller would see its 503 after twice the
    timeout), and an auditor would count a "denial" that was an outage. A
    warning log line (``audit.unrecorded``) says that it happened.
    """
    if isinstance(exc, errors.DomainError):
        return exc.outcome is None
    if isinstance(exc, KeyProviderError):
        return not isinstance(exc, WrapError)
    return isinstance(exc, UNAVAILABLE_ERRORS)


def failed_attempt(event: AuditEvent, exc: BaseException) -> bool:
    """Turn ``event`` into the record of an attempt that ended with ``exc``.

    A refusal is its type's outcome (:attr:`errors.DomainError.outcome`:
    ``not_found`` for a plain 404, ``denied`` for every other 4xx and for a
    :class:`errors.Concealed` 404) with its reason; anything else that is not
    an outage (a bug, a constraint the database enforced, a statement
    timeout) is ``error`` with the exception's TYPE only — its message may
    quote the values involved. False: write nothing (:func:`decided_nothing`).
    """
    if isinstance(exc, errors.DomainError) and exc.outcome is not None:
        event.outcome = exc.outcome
        event.reason = exc.reason
        event.policy_ids = exc.policies
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
