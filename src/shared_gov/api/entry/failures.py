"""Refused and failed attempts: what the town's log records of them, and how.

One way for every entry, the refusal hook (:mod:`shared_gov.api.refusals`)
and the flows that span two towns: :func:`failed_attempt` turns the event
into the record of the attempt, :func:`record_failure` writes it in a
transaction of its own after the rollback. A refused change of the town's
administration carries what was asked for (:class:`Change`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from shared_gov import errors
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.audit.recorder import AuditEvent, record_apart
from shared_gov.crypto.providers import KeyProviderError, WrapError
from shared_gov.db.engine import UNAVAILABLE_ERRORS
from shared_gov.logs import get_logger
from shared_gov.towns.changes import refusal_reason
from shared_gov.towns.names import TenantNames

from ..pipeline import Services

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """A change the request makes, which records itself in its own transaction.

    With a ``target``, a refusal records what was asked for (docs/audit.md,
    "Reasons": ``{"target", "requested", "refused"}``, the values the
    administration's events may carry); without, the plain reason.
    """

    target: str | None = None
    requested: object = None

    def refusal(self, why: str) -> str:
        if self.target is None:
            return why
        return refusal_reason(self.target, self.requested, why)


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


def failed_attempt(event: AuditEvent, exc: BaseException, change: Change | None = None) -> bool:
    """Turn ``event`` into the record of an attempt that ended with ``exc``.

    A refusal is its type's outcome (:attr:`errors.DomainError.outcome`:
    ``not_found`` for a plain 404, ``denied`` for every other 4xx and for a
    :class:`errors.Concealed` 404) with its reason (of a refused ``change``,
    with what was asked for); anything else that is not an outage (a bug, a
    constraint the database enforced, a statement timeout) is ``error`` with
    the exception's TYPE only — its message may quote the values involved.
    False: write nothing (:func:`decided_nothing`).
    """
    if isinstance(exc, errors.DomainError) and exc.outcome is not None:
        event.outcome = exc.outcome
        event.reason = change.refusal(exc.reason) if change is not None else exc.reason
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
    *,
    change: Change | None = None,
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
    if not failed_attempt(event, exc, change):
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
