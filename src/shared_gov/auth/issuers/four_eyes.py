"""The four-eyes steps on a town's issuer: propose (or, for a town without
identity, register at once), show the pending proposal, approve, withdraw or
reject. Each is one catalog transaction under the town's provisioning lock
that records its event in the town's log (package docstring)."""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime
from typing import Literal

import asyncpg

from shared_gov import errors
from shared_gov.audit.recorder import Actor
from shared_gov.auth.config import IssuerConfig, issuer_summary
from shared_gov.auth.principal import Principal
from shared_gov.auth.registry import fingerprint
from shared_gov.auth.subjects import person_key, same_person
from shared_gov.db.engine import Database
from shared_gov.db.notify import CHANNEL
from shared_gov.messages import identity as mi
from shared_gov.towns import changes
from shared_gov.towns.enrolments import mark_enrolled

from .current import LOCK, NOTIFY, as_json, config_of, current_row, replace_issuer, require_active
from .proposals import (
    APPROVED,
    PENDING,
    PROPOSAL_TTL,
    RETURNING_PROPOSAL,
    Kind,
    Proposal,
    close_pending,
    locked_proposal,
    proposal_digest,
    proposal_of,
    required,
)


async def _register_at_bootstrap(
    conn: asyncpg.Connection, db: Database, code: str, config: IssuerConfig, actor: Actor
) -> None:
    """A town without identity registers its first issuer (development only).

    The change, its audit event in the town's log and the end of the town's
    enrolment (no code can be issued for a town that set its own issuer)
    commit together.
    """
    await replace_issuer(conn, code, config)
    await mark_enrolled(conn, code)
    event = changes.change_event(
        "admin.issuer", "issuer", code, None, issuer_summary(config), bootstrap=True
    )
    await changes.record_change(conn, db, code, actor, event)
    await conn.execute(NOTIFY, CHANNEL, code)


async def _incarnation(conn: asyncpg.Connection, code: str) -> int:
    value = await conn.fetchval("SELECT incarnation FROM catalog.tenants WHERE code = $1", code)
    return int(value or 1)


async def _enrolled(conn: asyncpg.Connection, code: str) -> bool:
    enrolled_at = await conn.fetchval(
        "SELECT enrolled_at FROM catalog.enrolments WHERE tenant_code = $1", code
    )
    return enrolled_at is not None


async def propose(
    db: Database,
    code: str,
    kind: Kind,
    config: IssuerConfig | None,
    actor: Actor,
    *,
    bootstrap: bool,
) -> Proposal | None:
    """Propose a change of the town's issuer; None when it was registered at once.

    A town that is not enrolled and has no issuer registers ``config`` in one
    step when ``bootstrap`` is allowed (development); otherwise (production)
    it enrols with its code first (409). Any other change becomes the town's
    pending proposal (replacing the one before, which the event names) with
    before/after in the town's log; nothing takes effect.
    """
    async with db.catalog() as conn:
        await conn.execute(LOCK, code)
        await require_active(conn, code)
        row = await current_row(conn, code)
        current = None if row is None else config_of(row)
        if current is None and not await _enrolled(conn, code):
            if kind == "delete":
                raise errors.not_found(mi.NO_ISSUER)
            if not bootstrap:
                raise errors.conflict(mi.NOT_ENROLLED)
            await _register_at_bootstrap(conn, db, code, required(config), actor)
            return None
        if kind == "delete" and current is None:
            raise errors.not_found(mi.NO_ISSUER)
        if kind == "replace":
            config = required(config)
            if current is not None and as_json(current) == as_json(config):
                raise errors.conflict(mi.PROPOSED_IS_CURRENT)
            owner = await conn.fetchval(
                "SELECT tenant_code FROM catalog.issuers WHERE issuer = $1", config.url
            )
            if owner is not None and owner != code:
                raise errors.conflict(mi.URL_NOT_FOR_TOWN)
        replaced = await close_pending(conn, code, "replaced", actor.subject)
        incarnation = await _incarnation(conn, code)
        proposal_id = str(uuid.uuid4())
        expires_at = (datetime.now(UTC) + PROPOSAL_TTL).replace(microsecond=0)
        config_json, base_json = as_json(config), as_json(current)
        digest = proposal_digest(
            proposal_id, code, incarnation, kind, config_json, base_json, actor.subject, expires_at
        )
        inserted = await conn.fetchrow(
            "INSERT INTO catalog.issuer_proposals (id, tenant_code, incarnation, kind, config, "
            "base, digest, proposed_by, expires_at) "
            "VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9)" + RETURNING_PROPOSAL,
            proposal_id,
            code,
            incarnation,
            kind,
            config_json,
            base_json,
            digest,
            actor.subject,
            expires_at,
        )
        event = changes.change_event(
            "admin.issuer.propose",
            "issuer",
            code,
            issuer_summary(current),
            issuer_summary(config),
            proposal=proposal_id,
            kind=kind,
            digest=digest,
            expires_at=expires_at.isoformat(),
            replaces=replaced or None,
        )
        await changes.record_change(conn, db, code, actor, event)
    return proposal_of(inserted)


async def pending(db: Database, code: str) -> Proposal:
    """The town's pending proposal (not expired); 404 when there is none."""
    async with db.catalog() as conn:
        await require_active(conn, code)
        row = await conn.fetchrow(
            PENDING,
            code,
        )
    if row is None:
        raise errors.not_found(mi.NO_PENDING_CHANGE)
    return proposal_of(row)


async def _suspended(conn: asyncpg.Connection, code: str, subject: str) -> bool:
    """Whether this person's staff record (by :func:`person_key`) is suspended."""
    suspended: bool | None = await conn.fetchval(
        "SELECT NOT active FROM catalog.staff WHERE tenant_code = $1 AND person_key = $2",
        code,
        person_key(subject),
    )
    return bool(suspended)


async def _void(
    conn: asyncpg.Connection, db: Database, code: str, proposal: Proposal, actor: Actor, why: str
) -> None:
    await conn.execute(
        "UPDATE catalog.issuer_proposals SET status = 'void', decided_at = now() "
        "WHERE id = $1::uuid",
        proposal.id,
    )
    event = changes.change_event(
        "admin.issuer.void",
        "issuer",
        code,
        {"proposal": proposal.id, "status": "pending"},
        {"proposal": proposal.id, "status": "void"},
        why=why,
        proposed_by=proposal.proposed_by,
    )
    await changes.record_change(conn, db, code, actor, event)


async def _locked_pending(conn: asyncpg.Connection, code: str, proposal_id: str) -> Proposal:
    """The town's proposal ``proposal_id``, locked with the town until commit:
    404 when there is none, 409 when it is no longer pending."""
    await conn.execute(LOCK, code)
    await require_active(conn, code)
    proposal = await locked_proposal(conn, code, proposal_id)
    if proposal is None:
        raise errors.not_found(mi.NO_SUCH_PROPOSAL)
    if proposal.status != "pending":
        raise errors.conflict(mi.PROPOSAL_NOT_PENDING(status=proposal.status))
    return proposal


async def approve(
    db: Database, code: str, proposal_id: str, digest: str, actor: Actor, approver: Principal
) -> Proposal:
    """Put a pending proposal into effect: the second pair of eyes.

    Refused (nothing changes) when the proposal is unknown (404), no longer
    pending, expired, of another digest (409), the approver is the proposer
    under any spelling (403), the approver's token was verified by an issuer
    configuration other than the one in effect (403), or the approver is
    suspended (403). When the proposer has been suspended since, or the
    issuer changed since the proposal, the proposal is void (recorded) and
    the answer is 409. Otherwise the change, the proposal's end and the
    audit event naming both admins commit together.
    """
    refusal: errors.DomainError | None = None
    async with db.catalog() as conn:
        proposal = await _locked_pending(conn, code, proposal_id)
        if not hmac.compare_digest(proposal.digest, digest):
            raise errors.conflict(mi.DIGEST_MISMATCH)
        if same_person(proposal.proposed_by, approver.subject):
            raise errors.forbidden(mi.OWN_APPROVAL)
        row = await current_row(conn, code)
        if approver.issuer_fingerprint is not None and (
            row is None or fingerprint(row) != approver.issuer_fingerprint
        ):
            raise errors.forbidden(mi.APPROVER_ISSUER)
        if await _suspended(conn, code, approver.subject):
            raise errors.forbidden(mi.SUSPENDED_APPROVER)
        current = None if row is None else config_of(row)
        if await _suspended(conn, code, proposal.proposed_by):
            refusal = errors.conflict(mi.PROPOSER_SUSPENDED)
        elif as_json(current) != as_json(proposal.base):
            refusal = errors.conflict(mi.ISSUER_CHANGED)
        if refusal is not None:
            await _void(conn, db, code, proposal, actor, refusal.detail)
        else:
            if proposal.kind == "replace":
                await replace_issuer(conn, code, required(proposal.config))
                await mark_enrolled(conn, code)
            else:
                await conn.execute("DELETE FROM catalog.issuers WHERE tenant_code = $1", code)
            decided = await conn.fetchrow(
                APPROVED,
                proposal.id,
                approver.subject,
            )
            event = changes.change_event(
                "admin.issuer" if proposal.kind == "replace" else "admin.issuer.delete",
                "issuer",
                code,
                issuer_summary(current),
                issuer_summary(proposal.config),
                proposal=proposal.id,
                digest=proposal.digest,
                proposed_by=proposal.proposed_by,
                approved_by=approver.subject,
            )
            await changes.record_change(conn, db, code, actor, event)
            await conn.execute(NOTIFY, CHANNEL, code)
            return proposal_of(decided)
    # The void is committed; the approval itself is refused.
    raise refusal or errors.conflict(mi.PROPOSAL_VOID)


async def cancel(
    db: Database, code: str, proposal_id: str, actor: Actor, subject: str
) -> Literal["withdrawn", "rejected"]:
    """End a pending proposal: its proposer withdraws it, another admin rejects it."""
    async with db.catalog() as conn:
        proposal = await _locked_pending(conn, code, proposal_id)
        status: Literal["withdrawn", "rejected"] = (
            "withdrawn" if same_person(proposal.proposed_by, subject) else "rejected"
        )
        await conn.execute(
            "UPDATE catalog.issuer_proposals SET status = $2, decided_by = $3, "
            "decided_at = now() WHERE id = $1::uuid",
            proposal.id,
            status,
            subject,
        )
        event = changes.change_event(
            "admin.issuer.withdraw" if status == "withdrawn" else "admin.issuer.reject",
            "issuer",
            code,
            {"proposal": proposal.id, "status": "pending"},
            {"proposal": proposal.id, "status": status},
            proposed_by=proposal.proposed_by,
            digest=proposal.digest,
        )
        await changes.record_change(conn, db, code, actor, event)
    return status
