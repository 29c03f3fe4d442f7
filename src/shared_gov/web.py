"""Request plumbing shared by every controller: app services, the principal
dependency, and the tenant scope that opens a unit of work.

Controllers stay thin (DESIGN.md rule 1): they resolve the principal, enter
the tenant scope and call a service. :func:`tenant_scope` refuses a caller
from another town with the same 404 a missing tenant gets, before any
database work, and binds the tenant code to the request's log context.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from shared_gov import errors, policy
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.audit.recorder import AuditEvent, record, record_apart, record_both
from shared_gov.auth.failures import FailedLoginGate, report_failed_login
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.auth.principal import Principal
from shared_gov.auth.verify import TokenRejected, TokenVerifier
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


def services(request: Request[Any, Any, Any]) -> Services:
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
    request: Request[Any, Any, Any], principal: Principal, purpose: str | None
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


_OUTCOMES = {403: "denied", 404: "not_found", 400: "denied"}
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
    # A refusal answered with 404 (under an agreement) is still a denial.
    event.outcome = "denied" if exc.audit.get("reason") else _OUTCOMES.get(exc.status, "error")
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
