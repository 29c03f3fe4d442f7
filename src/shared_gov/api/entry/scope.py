"""The entry itself: :class:`Entry`, one request's way into a town.

``async with entry:`` (or ``async with entry.changing(...):``) admits the
caller through the route's gate, binds the town (or, under an agreement, the
pair of towns), hands over what the handler works with, and records the
access — or the refusal or failure, after the rollback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import structlog
from litestar.connection import ASGIConnection

from shared_gov import errors, policy
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.audit.recorder import AuditEvent, is_read, record, record_both, submit
from shared_gov.auth.principal import Principal
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.db import TenantUnitOfWork
from shared_gov.db.engine import BindingCheckFailed
from shared_gov.messages import access as m
from shared_gov.policy import Access, Query, Resource, agreements
from shared_gov.policy.purposes import purpose_from_header
from shared_gov.towns.names import TenantNames

from ..pipeline import Services, services
from .actors import audit_actor
from .failures import Change, record_failure
from .gates import Gate
from .routes import Audit, route_audit

_TERMS = agreements.TermsCache()
"""This process's cached agreement terms (verified in every request's binding)."""


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


class Entry:
    """One request's way into a town: what the handler works with.

    Inside ``async with entry:`` — ``entry.town`` is the town's binding,
    ``entry.svc`` the process's services, ``entry.actor`` who acts as the log
    records them, ``entry.audit`` the event that will be recorded (the
    handler and the services fill it); ``entry.uow`` the town's unit of work
    when the gate opens one; ``entry.access`` the town-bound ``Access`` of a
    records gate, ``entry.decision`` the town-level decision of the others.
    ``entry.if_match`` is the If-Match header of a change.
    """

    __slots__ = (
        "_actor",
        "_admitted",
        "_change",
        "_entered",
        "_named",
        "_scope",
        "access",
        "agreement",
        "audit",
        "code",
        "decision",
        "gate",
        "if_match",
        "principal",
        "purpose",
        "request",
        "route",
        "svc",
        "town",
        "uow",
    )

    svc: Services
    town: TenantNames
    _actor: AuditActor
    uow: TenantUnitOfWork
    access: Access
    decision: policy.Decision

    def __init__(
        self,
        request: ASGIConnection[Any, Any, Any, Any],
        principal: Principal,
        code: str,
        purpose: str | None = None,
        agreement: str | None = None,
        if_match: str | None = None,
    ) -> None:
        self.request = request
        self.principal = principal
        self.code = code
        self.purpose = purpose
        self.agreement = agreement
        self.if_match = if_match
        self.route: Audit = route_audit(request.scope).asked(request)
        self.gate: Gate = self.route.gate
        self.audit = AuditEvent(
            action=self.route.action,
            resource_type=self.route.resource_type,
            subjects=self.route.subject(request.scope.get("path_params")),
        )
        self._admitted = False
        self._entered = False
        self._change: Change | None = None
        self._named: tuple[str, ...] = ()

    @property
    def actor(self) -> AuditActor:
        """Who acts, as the log records them: with the ``Access``'s purpose only
        once Cedar has decided on it (:attr:`policy.Access.decided`).

        A route's own refusal before any decision (a purpose the route does not
        serve, a missing If-Match, a body it refuses) is the caller's stated
        purpose, not one the platform decided on: it records none.
        """
        actor = self._actor
        access: Access | None = getattr(self, "access", None)
        if actor.purpose is not None and access is not None and not access.decided:
            return dataclasses.replace(actor, purpose=None)
        return actor

    @actor.setter
    def actor(self, actor: AuditActor) -> None:
        self._actor = actor

    def changing(self, target: str | None = None, requested: object = None) -> Entry:
        """Enter for a change that records itself in its own transaction.

        The entry then records only a refusal or failure; with a ``target``,
        the refusal of a caller the gate let in says what was asked for
        (:class:`.failures.Change`). Whoever the gate refuses gets the plain
        reason: what they asked for is their text, and they have no business
        writing it into the town's log.
        """
        self._change = Change(target, requested)
        return self

    def naming(self, *codes: str) -> Entry:
        """The towns this request names, on a gate in the caller's own town
        (an agreement's parties): where an operator's refusal is recorded."""
        self._named = tuple(dict.fromkeys(codes))
        return self

    async def enter_town(self) -> None:
        """Steps 1 and 2 of :meth:`admit`: the town, and whether the caller is its own.

        A guard calls this before Litestar decodes the body (another town
        gets its 404 before any 422 about what it sent); the handler's entry
        is then the same object, and :meth:`admit` does not do it again.
        """
        if self._entered:
            return
        request, principal, gate = self.request, self.principal, self.gate
        svc = self.svc = services(request)
        # Nothing is decided on a purpose yet: a refusal from here records none.
        self.actor = audit_actor(request, principal, None)
        if gate.town == "caller":
            if principal.is_operator or not principal.tenant:
                await self._refused_where_named(gate.operators)
                raise errors.not_found()
            self.code = principal.tenant
        code = self.code
        structlog.contextvars.bind_contextvars(tenant=code)
        names = await svc.registry.get(code) if is_valid_lgcode(code) else None
        if names is None:
            raise errors.not_found()
        self.town = names
        why = gate.outsider(principal, code)
        if why is not None:
            refusal = errors.concealed(why)
            await self.refused(refusal)
            raise refusal
        self._entered = True

    async def admit(self) -> None:
        """Let the caller in through the gate, or refuse and record the refusal.

        1. the town: not on this deployment → 404 (nothing to record in);
        2. another town's caller or an operator → the same 404
           (:class:`errors.Concealed`: a denial in the log, with the gate's reason);
        3. a records gate: the purpose (X-Purpose; missing or unknown → 400)
           and the caller's permissions → an ``Access`` bound to the town;
           any other gate: Cedar decides its action on the town → the gate's
           refusal (403 with the reason) when denied.

        Only then does the actor carry a purpose (:mod:`.actors`): the
        ``Access``'s, or the one the gate's routes serve. Idempotent: a gate
        decided in a guard is not decided again.
        """
        if self._admitted:
            return
        await self.enter_town()
        request, principal, gate, svc, code = (
            self.request,
            self.principal,
            self.gate,
            self.svc,
            self.code,
        )
        try:
            if gate.members:
                pass  # the town's own principals: step 2 was the decision
            elif gate.decides is None:
                self.access = await self._access()
                self.access.audit = self.audit
            else:
                action, kind = gate.decides
                self.decision = svc.policy.decide(
                    policy.actor_of(principal), Query(action, Resource(kind, code), area=gate.area)
                )
                if not self.decision.allowed:
                    raise gate.refused(self.decision)
        except Exception as exc:
            # A refusal is recorded; a 503 (no connection for the permission
            # lookup) decided nothing, and recording it would wait for the pool again.
            await self.refused(exc)
            raise
        if gate.members:
            self.actor = audit_actor(request, principal, None)
        elif gate.decides is None:
            # The purpose the Access is bound to: every decision of the request is on it.
            purpose = self.access.purpose
            self.actor = audit_actor(request, principal, purpose.code if purpose else None)
        else:
            self.actor = audit_actor(request, principal, gate.serves)
        self._admitted = True

    async def _access(self) -> Access:
        """The ``Access`` of a gate that decides per record: the town's own
        people's for their X-Purpose; on a gate that :attr:`.gates.Gate.admits`
        a role, the purpose the gate serves and no permission of the town
        (the caller belongs to none: Cedar decides on who they are)."""
        svc, principal, gate, code = self.svc, self.principal, self.gate, self.code
        if gate.admits is None:
            return await access_for(svc, principal, code, self.purpose)
        purpose = purpose_from_header(gate.serves)
        structlog.contextvars.bind_contextvars(purpose=purpose.code)
        return Access(principal, policy.actor_of(principal), purpose, svc.policy, code)

    async def refused(self, exc: BaseException) -> None:
        """Record the refusal or failure ``exc`` of this request in the town's log.

        What was asked for (:meth:`changing`) only for a caller the gate let in.
        """
        change = self._change if self._admitted else None
        await record_failure(self.svc, self.town, self.actor, self.audit, exc, change=change)

    async def _refused_where_named(self, why: str) -> None:
        """An operator on a gate in the caller's own town: the refusal in the log of
        each town the request names (:meth:`naming`) that is on this deployment."""
        for code in self._named:
            names = await self.svc.registry.get(code) if is_valid_lgcode(code) else None
            if names is not None:
                event = dataclasses.replace(self.audit, subjects=list(self.audit.subjects))
                await record_failure(self.svc, names, self.actor, event, errors.concealed(why))

    async def __aenter__(self) -> Entry:
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
    """The caller's own town: at most one unit of work, one event."""
    await entry.admit()
    svc, names, gate, event = entry.svc, entry.town, entry.gate, entry.audit
    recorded = svc.settings.audit and gate.records_granted and entry._change is None
    # A read writes nothing: its transaction ends without a WAL flush, and its
    # event is group-committed by the audit writer before the answer leaves
    # (a failed batch fails the read: 503, nothing disclosed). A write's event
    # commits with the write (audit/recorder.py).
    at_commit = gate.unit_of_work and not is_read(event.action)
    try:
        if gate.unit_of_work:
            # A read's transaction is READ ONLY, begun with its first statement
            # (a resident GET needs none: one call of the town's read function).
            async with svc.db.tenant(names, read_only=not at_commit) as uow:
                entry.uow = uow
                yield
                if recorded and at_commit:
                    await record(uow, entry.actor, event)
        else:
            yield
        if recorded and not at_commit and (event.rows or not gate.quiet_when_empty):
            await submit(svc.db, names, entry.actor, event)
    except Exception as exc:
        await entry.refused(exc)
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
    svc = entry.svc = services(request)
    structlog.contextvars.bind_contextvars(tenant=code)
    provider = await svc.registry.get(code)
    recipient = await svc.registry.get(principal.tenant or "")
    agreement_id = agreements.parse_id(agreement_header)
    if provider is None or recipient is None:
        raise errors.not_found()
    entry.town = provider
    # No purpose until the agreement is read and the Access bound to one.
    entry.actor = actor = audit_actor(request, principal, None)
    event = entry.audit
    event.agreement_id = str(agreement_id) if agreement_id else None
    try:
        if agreement_id is None:
            raise errors.bad_request(m.AGREEMENT_ID_REQUIRED)
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
            entry.actor = dataclasses.replace(actor, purpose=purpose_.code)
            yield
            if svc.settings.audit:
                await record_both(
                    at_provider, at_recipient, entry.actor, event, _obtained(event, code)
                )
    except Exception as exc:
        actor = entry.actor

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
