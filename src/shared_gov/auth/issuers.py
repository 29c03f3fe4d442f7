"""Reading and changing a town's registered issuer in ``catalog.issuers``.

Used by :class:`~shared_gov.api.issuers.IssuerController`. A town's
identity provider decides who is who — whoever changes it can mint the town's
staff — so after enrolment no single admin changes it (four eyes,
docs/separation-of-duties.md): a change (replace or remove; keys, URL,
audience, algorithms, claim mappings alike) is stored as a *proposal* in
``catalog.issuer_proposals`` and takes effect only when a different admin of
the town, authenticated by the issuer in effect, approves it naming the
proposal's id and digest. At most one proposal is pending per town; a new one
replaces it; it expires after :data:`PROPOSAL_TTL`; the proposer withdraws
it or another admin rejects it. Only a town that is not enrolled and has no
issuer (development, where built-in tokens act as its admin) registers one in
a single step — that is the bootstrap, like redeeming an enrolment code.

Every step runs in one catalog transaction that takes the town's
provisioning lock (the one onboarding, enrolment and staff changes take, so
proposals, approvals, suspensions and manifests cannot interleave) and
records its audit event in the town's log in that transaction. An approval
commits ``pg_notify('shared_gov_policy', <town>)`` with the change, so every
worker drops its cached issuers right after the commit; the caller also
invalidates its own process's registry before answering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from shared_gov import errors
from shared_gov.audit.recorder import Actor
from shared_gov.auth.config import IssuerConfig, issuer_summary
from shared_gov.auth.principal import Principal
from shared_gov.auth.registry import fingerprint
from shared_gov.auth.subjects import person_key, same_person
from shared_gov.db.engine import Database
from shared_gov.db.notify import CHANNEL
from shared_gov.towns import changes
from shared_gov.towns.enrolments import mark_enrolled

PROPOSAL_TTL = timedelta(hours=72)
"""How long a proposed issuer change waits for a second admin."""

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.tenant.' || $1::text, 0))"
_ACTIVE = "SELECT 1 FROM catalog.tenants WHERE code = $1 AND status = 'active'"
_NOTIFY = "SELECT pg_notify($1, $2)"
_SELECT_ISSUER = (
    "SELECT issuer, tenant_code, audience, jwks_uri, jwks, algorithms, staff_claim, "
    "department_claim, roles_claim FROM catalog.issuers WHERE tenant_code = $1"
)


async def _require_active(conn: asyncpg.Connection, code: str) -> None:
    if await conn.fetchval(_ACTIVE, code) is None:
        raise errors.not_found("no such tenant")


def _config(row: Any) -> IssuerConfig:
    return IssuerConfig(
        url=row["issuer"],
        audience=row["audience"],
        jwks_uri=row["jwks_uri"],
        jwks=row["jwks"],
        algorithms=list(row["algorithms"]),
        staff_claim=row["staff_claim"],
        department_claim=row["department_claim"],
        roles_claim=row["roles_claim"],
    )


async def _current_row(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_SELECT_ISSUER, code)


async def get_issuer(db: Database, code: str) -> IssuerConfig:
    """The town's issuer; 404 for an unknown town or a town without one."""
    async with db.catalog() as conn:
        await _require_active(conn, code)
        row = await _current_row(conn, code)
    if row is None:
        raise errors.not_found("the town has no issuer of its own")
    return _config(row)


async def replace_issuer(
    conn: asyncpg.Connection, code: str, config: IssuerConfig
) -> IssuerConfig | None:
    """Register ``config`` as the town's issuer in ``conn``'s transaction; the one before.

    409 when another town owns the issuer URL (one issuer, one town). The
    caller holds the town's provisioning lock.
    """
    owner = await conn.fetchval(
        "SELECT tenant_code FROM catalog.issuers WHERE issuer = $1", config.url
    )
    if owner is not None and owner != code:
        raise errors.conflict("this issuer URL cannot be registered for this town")
    old = await conn.fetchrow(
        "DELETE FROM catalog.issuers WHERE tenant_code = $1 RETURNING issuer, audience, "
        "jwks_uri, jwks, algorithms, staff_claim, department_claim, roles_claim",
        code,
    )
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO catalog.issuers (issuer, tenant_code, audience, jwks_uri, jwks, "
                "algorithms, staff_claim, department_claim, roles_claim) "
                "VALUES ($1, $2, $3, $4, $5::jsonb, $6::text[], $7, $8, $9)",
                config.url,
                code,
                config.audience,
                config.jwks_uri,
                config.jwks,
                list(dict.fromkeys(config.algorithms)),
                config.staff_claim,
                config.department_claim,
                config.roles_claim,
            )
    except asyncpg.UniqueViolationError:
        # Another town registered the same URL concurrently.
        raise errors.conflict("this issuer URL cannot be registered for this town") from None
    return None if old is None else _config(old)


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
    await conn.execute(_NOTIFY, CHANNEL, code)


# --- four eyes ----------------------------------------------------------------

Kind = Literal["replace", "delete"]


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposed change of a town's issuer, pending or decided."""

    id: str
    tenant: str
    kind: Kind
    config: IssuerConfig | None
    """The proposed issuer (``replace``); None for ``delete``."""
    base: IssuerConfig | None
    """The issuer in effect when the change was proposed."""
    digest: str
    proposed_by: str
    proposed_at: datetime
    expires_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None


def _required(config: IssuerConfig | None) -> IssuerConfig:
    if config is None:  # pragma: no cover - a replace always carries its issuer
        raise errors.invalid_field("/", "an issuer is required")
    return config


def _canonical(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _as_json(config: IssuerConfig | None) -> dict[str, Any] | None:
    return None if config is None else to_json(config)


def proposal_digest(
    proposal_id: str,
    tenant: str,
    incarnation: int,
    kind: str,
    config: dict[str, Any] | None,
    base: dict[str, Any] | None,
    proposed_by: str,
    expires_at: datetime,
) -> str:
    """SHA-256 (hex) over everything an approver agrees to."""
    document = {
        "id": proposal_id,
        "tenant": tenant,
        "incarnation": incarnation,
        "kind": kind,
        "issuer": config,
        "base": base,
        "proposed_by": proposed_by,
        "expires_at": expires_at.astimezone(UTC).isoformat(),
    }
    return hashlib.sha256(_canonical(document).encode("utf-8")).hexdigest()


# The town's pending proposal of its current incarnation, unless expired.
_PENDING = (
    "SELECT id::text AS id, tenant_code, incarnation, kind, config, base, digest, proposed_by, "
    "proposed_at, expires_at, status, decided_by, decided_at FROM catalog.issuer_proposals "
    "WHERE tenant_code = $1 AND status = 'pending' AND expires_at > now() "
    "AND incarnation = (SELECT incarnation FROM catalog.tenants WHERE code = $1)"
)
_RETURNING_PROPOSAL = (
    " RETURNING id::text AS id, tenant_code, incarnation, kind, config, base, digest, "
    "proposed_by, proposed_at, expires_at, status, decided_by, decided_at"
)
# The proposal, of the town's current incarnation only, locked until commit.
_LOCK_PROPOSAL = (
    "SELECT id::text AS id, tenant_code, incarnation, kind, config, base, digest, proposed_by, "
    "proposed_at, expires_at, status, decided_by, decided_at FROM catalog.issuer_proposals "
    "WHERE id = $1::uuid AND tenant_code = $2 AND incarnation = "
    "(SELECT incarnation FROM catalog.tenants WHERE code = $2) FOR UPDATE"
)
_APPROVED = (
    "UPDATE catalog.issuer_proposals SET status = 'approved', decided_by = $2, "
    "decided_at = now() WHERE id = $1::uuid RETURNING id::text AS id, tenant_code, "
    "incarnation, kind, config, base, digest, proposed_by, proposed_at, expires_at, status, "
    "decided_by, decided_at"
)


def _proposal(row: Any) -> Proposal:
    config = None if row["config"] is None else msgspec.convert(row["config"], IssuerConfig)
    base = None if row["base"] is None else msgspec.convert(row["base"], IssuerConfig)
    status = row["status"]
    if status == "pending" and row["expires_at"] <= datetime.now(UTC):
        status = "expired"
    return Proposal(
        id=row["id"],
        tenant=str(row["tenant_code"]),
        kind=row["kind"],
        config=config,
        base=base,
        digest=row["digest"],
        proposed_by=row["proposed_by"],
        proposed_at=row["proposed_at"],
        expires_at=row["expires_at"],
        status=status,
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
    )


async def _incarnation(conn: asyncpg.Connection, code: str) -> int:
    value = await conn.fetchval("SELECT incarnation FROM catalog.tenants WHERE code = $1", code)
    return int(value or 1)


async def _enrolled(conn: asyncpg.Connection, code: str) -> bool:
    enrolled_at = await conn.fetchval(
        "SELECT enrolled_at FROM catalog.enrolments WHERE tenant_code = $1", code
    )
    return enrolled_at is not None


async def _close_pending(
    conn: asyncpg.Connection, code: str, status: str, by: str | None
) -> list[dict[str, str]]:
    """End the town's pending proposal (expired ones as ``expired``); what was ended."""
    rows = await conn.fetch(
        "UPDATE catalog.issuer_proposals SET "
        "status = CASE WHEN expires_at <= now() THEN 'expired' ELSE $2 END, "
        "decided_by = CASE WHEN expires_at <= now() THEN NULL ELSE $3 END, decided_at = now() "
        "WHERE tenant_code = $1 AND status = 'pending' RETURNING id::text AS id, status",
        code,
        status,
        by,
    )
    return [{"id": r["id"], "status": r["status"]} for r in rows]


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
        await conn.execute(_LOCK, code)
        await _require_active(conn, code)
        row = await _current_row(conn, code)
        current = None if row is None else _config(row)
        if current is None and not await _enrolled(conn, code):
            if kind == "delete":
                raise errors.not_found("the town has no issuer of its own")
            if not bootstrap:
                raise errors.conflict(
                    "the town is not enrolled: its information-policy office redeems "
                    "the enrolment code"
                )
            await _register_at_bootstrap(conn, db, code, _required(config), actor)
            return None
        if kind == "delete" and current is None:
            raise errors.not_found("the town has no issuer of its own")
        if kind == "replace":
            config = _required(config)
            if current is not None and _as_json(current) == _as_json(config):
                raise errors.conflict("the proposed issuer is the one in effect")
            owner = await conn.fetchval(
                "SELECT tenant_code FROM catalog.issuers WHERE issuer = $1", config.url
            )
            if owner is not None and owner != code:
                raise errors.conflict("this issuer URL cannot be registered for this town")
        replaced = await _close_pending(conn, code, "replaced", actor.subject)
        incarnation = await _incarnation(conn, code)
        proposal_id = str(uuid.uuid4())
        expires_at = (datetime.now(UTC) + PROPOSAL_TTL).replace(microsecond=0)
        config_json, base_json = _as_json(config), _as_json(current)
        digest = proposal_digest(
            proposal_id, code, incarnation, kind, config_json, base_json, actor.subject, expires_at
        )
        inserted = await conn.fetchrow(
            "INSERT INTO catalog.issuer_proposals (id, tenant_code, incarnation, kind, config, "
            "base, digest, proposed_by, expires_at) "
            "VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9)" + _RETURNING_PROPOSAL,
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
    return _proposal(inserted)


async def pending(db: Database, code: str) -> Proposal:
    """The town's pending proposal (not expired); 404 when there is none."""
    async with db.catalog() as conn:
        await _require_active(conn, code)
        row = await conn.fetchrow(
            _PENDING,
            code,
        )
    if row is None:
        raise errors.not_found("no issuer change is pending")
    return _proposal(row)


async def _locked_proposal(
    conn: asyncpg.Connection, code: str, proposal_id: str
) -> Proposal | None:
    try:
        uuid.UUID(proposal_id)
    except ValueError:
        return None
    row = await conn.fetchrow(
        _LOCK_PROPOSAL,
        proposal_id,
        code,
    )
    return None if row is None else _proposal(row)


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
        await conn.execute(_LOCK, code)
        await _require_active(conn, code)
        proposal = await _locked_proposal(conn, code, proposal_id)
        if proposal is None:
            raise errors.not_found("no such issuer proposal")
        if proposal.status != "pending":
            raise errors.conflict(f"the proposal is {proposal.status}, not pending")
        if not hmac.compare_digest(proposal.digest, digest):
            raise errors.conflict(
                "the digest is not the proposal's: read the pending proposal again"
            )
        if same_person(proposal.proposed_by, approver.subject):
            raise errors.forbidden(
                "nobody approves their own issuer change; another admin of the town must"
            )
        row = await _current_row(conn, code)
        if approver.issuer_fingerprint is not None and (
            row is None or fingerprint(row) != approver.issuer_fingerprint
        ):
            raise errors.forbidden(
                "the approving token was not verified by the town's issuer in effect"
            )
        if await _suspended(conn, code, approver.subject):
            raise errors.forbidden("a suspended admin approves nothing")
        current = None if row is None else _config(row)
        if await _suspended(conn, code, proposal.proposed_by):
            refusal = errors.conflict("the proposer is suspended: the proposal is void")
        elif _as_json(current) != _as_json(proposal.base):
            refusal = errors.conflict("the town's issuer changed since the proposal: it is void")
        if refusal is not None:
            await _void(conn, db, code, proposal, actor, refusal.detail)
        else:
            if proposal.kind == "replace":
                await replace_issuer(conn, code, _required(proposal.config))
                await mark_enrolled(conn, code)
            else:
                await conn.execute("DELETE FROM catalog.issuers WHERE tenant_code = $1", code)
            decided = await conn.fetchrow(
                _APPROVED,
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
            await conn.execute(_NOTIFY, CHANNEL, code)
            return _proposal(decided)
    # The void is committed; the approval itself is refused.
    raise refusal or errors.conflict("the proposal is void")


async def cancel(
    db: Database, code: str, proposal_id: str, actor: Actor, subject: str
) -> Literal["withdrawn", "rejected"]:
    """End a pending proposal: its proposer withdraws it, another admin rejects it."""
    async with db.catalog() as conn:
        await conn.execute(_LOCK, code)
        await _require_active(conn, code)
        proposal = await _locked_proposal(conn, code, proposal_id)
        if proposal is None:
            raise errors.not_found("no such issuer proposal")
        if proposal.status != "pending":
            raise errors.conflict(f"the proposal is {proposal.status}, not pending")
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


def to_json(config: IssuerConfig) -> dict[str, Any]:
    """The JSON shape of an issuer (the manifest's ``[issuer]`` table)."""
    result: dict[str, Any] = msgspec.to_builtins(config)
    return result
