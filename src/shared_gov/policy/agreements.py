"""Sharing agreements between towns: lifecycle, validation, and the terms a request relies on.

An agreement says which town (provider) shares which fields of its residents
with which other town's departments (recipient), for which purposes and
actions, on which legal basis, from when until when. The provider's admin
proposes, the recipient's admin accepts, either side revokes; each step adds
an immutable version (``catalog.agreement_versions``) and the highest version
is the agreement in force. Nothing here decides access: Cedar does, reading
the current version as an ``Agreement`` entity (``policies/agreements.cedar``).

Onboarding gives every town one *standing move agreement* (provider: that
town, recipient: every tenant, 市民課, ``juki.registration``, the fields of a
転出証明書). One per town rather than one per pair of towns: with all 1,741
municipalities on a deployment, pairs would be three million rows that say
the same thing. Policies restrict it to the new town of a resident's pending
move-out (the old town records it with the move-out), for the fields of the
転出証明書, while the move is pending.

Every step (propose, accept, revoke) is an audit event in the log of each
party town (the provider's only, for the standing agreement, whose recipient
is every tenant), written in the step's own transaction, with the
agreement's status and terms before and after (``reason``, as JSON): no
record, no change. Terms name towns, departments, purposes and fields, never
a resident.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import Connection, text

from shared_gov import errors
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.audit.recorder import AuditEvent, record_as_town
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.domains import registry
from shared_gov.errors import FieldError
from shared_gov.policy.engine import AgreementTerms
from shared_gov.policy.purposes import purposes
from shared_gov.tenancy.names import tenant_names
from shared_gov.validation import instant_in_range

ACTIONS = ("read", "search")
STANDING_KIND = "standing_move"
# The standing move agreement's terms (転出証明書の記載事項, its department and
# purpose) are the residents domain's: declared in its spec, read here through
# the registry (``registry.standing_share()``).
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)


def lock_name(agreement_id: uuid.UUID) -> str:
    """The advisory lock a cross-town read holds (shared) and a revocation takes (exclusive)."""
    return f"shared_gov.agreement.{agreement_id}"


def parse_id(value: str | None) -> uuid.UUID | None:
    """The agreement id of an ``X-Agreement`` header or a path; None if malformed."""
    if value is None:
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def terms_from_row(row: Any) -> AgreementTerms:
    return AgreementTerms(
        agreement_id=str(row["agreement_id"]),
        version=row["version"],
        provider=row["provider"].strip(),
        recipient=row["recipient"],
        kind=row["kind"],
        status=row["status"],
        departments=frozenset(row["departments"]),
        purposes=frozenset(row["purposes"]),
        fields=frozenset(row["fields"]),
        actions=frozenset(row["actions"]),
        valid_from=_seconds(row["valid_from"]),
        valid_until=_seconds(row["valid_until"]),
    )


async def terms_in(uow: TenantUnitOfWork, agreement_id: uuid.UUID) -> AgreementTerms | None:
    """The agreement in force right now, read inside the town's own transaction.

    ``sharing.agreement`` answers only for agreements the unit of work's town is
    a party to; it reads what is committed at this statement, so a revocation
    committed a moment ago is seen.
    """
    row = await uow.fetchrow("SELECT * FROM sharing.agreement($1)", agreement_id)
    return terms_from_row(row) if row is not None else None


class TermsCache:
    """Agreements' terms as last read by this process, checked on every use.

    Reading the terms costs a round trip and a function call per cross-town
    request. Instead, a request with cached terms folds
    ``sharing.agreement_is(id, version)`` into its binding statement, after
    the agreement's shared lock: if the version changed (accepted, revoked)
    the binding fails with SQLSTATE SGA01 and the request reads afresh. The
    check runs in the request's own transaction, so a revocation committed
    before it is seen exactly as with a fresh read.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._terms: dict[uuid.UUID, AgreementTerms] = {}
        self._size = size

    def get(self, agreement_id: uuid.UUID) -> AgreementTerms | None:
        return self._terms.get(agreement_id)

    def put(self, agreement_id: uuid.UUID, terms: AgreementTerms) -> None:
        if len(self._terms) >= self._size:
            self._terms.clear()
        self._terms[agreement_id] = terms

    def drop(self, agreement_id: uuid.UUID) -> None:
        self._terms.pop(agreement_id, None)


def check_call(agreement_id: uuid.UUID, terms: AgreementTerms) -> str:
    """The binding-statement call that fails unless ``terms`` are still current."""
    # Both values are validated (a UUID object, an int): safe as literals.
    return f"sharing.agreement_is('{agreement_id}'::uuid, {int(terms.version)})"


# -- lifecycle (catalog) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    provider: str
    recipient: str
    recipient_departments: Sequence[str]
    purposes: Sequence[str]
    fields: Sequence[str]
    actions: Sequence[str]
    legal_basis: str
    valid_from: datetime
    valid_until: datetime


_SELECT = """
SELECT a.agreement_id, a.provider::text AS provider, a.recipient, a.kind, v.version, v.status,
       v.departments, v.purposes, v.fields, v.actions, v.legal_basis, v.valid_from,
       v.valid_until, v.changed_by, v.changed_by_tenant::text AS changed_by_tenant,
       v.changed_at
FROM catalog.agreements a
JOIN catalog.agreement_versions v USING (agreement_id)
"""
_CURRENT = (
    _SELECT + "WHERE v.version = (SELECT max(version) FROM catalog.agreement_versions w "  # noqa: S608
    "WHERE w.agreement_id = a.agreement_id) "
)


async def _active_towns(conn: asyncpg.Connection, codes: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT code::text AS code FROM catalog.tenants WHERE code = ANY($1) AND status = 'active'",
        list(codes),
    )
    return {r["code"] for r in rows}


async def _validate(conn: asyncpg.Connection, p: Proposal) -> None:
    problems: list[FieldError] = []
    if not is_valid_lgcode(p.recipient):
        problems.append(FieldError("/recipient", "not a valid local government code"))
    elif p.recipient == p.provider:
        problems.append(FieldError("/recipient", "a town cannot make an agreement with itself"))
    elif p.recipient not in await _active_towns(conn, [p.recipient]):
        problems.append(FieldError("/recipient", "no such town on this deployment"))
    else:
        known = {
            r["code"]
            for r in await conn.fetch(
                "SELECT code FROM catalog.departments WHERE tenant_code = $1 AND active",
                p.recipient,
            )
        }
        for i, dept in enumerate(p.recipient_departments):
            if dept not in known:
                problems.append(
                    FieldError(f"/recipient_departments/{i}", "no such department in that town")
                )
    known_purposes = purposes()
    for i, code in enumerate(p.purposes):
        if code not in known_purposes:
            problems.append(FieldError(f"/purposes/{i}", "no such purpose"))
    for i, name in enumerate(p.fields):
        if name not in registry.all_policy_fields():
            problems.append(FieldError(f"/fields/{i}", "no such personal field"))
    for i, action in enumerate(p.actions):
        if action not in ACTIONS:
            problems.append(FieldError(f"/actions/{i}", "must be read or search"))
    for pointer, values in (
        ("/recipient_departments", p.recipient_departments),
        ("/purposes", p.purposes),
        ("/fields", p.fields),
        ("/actions", p.actions),
    ):
        if not values:
            problems.append(FieldError(pointer, "must name at least one"))
        elif len(set(values)) != len(values):
            problems.append(FieldError(pointer, "names one twice"))
    for pointer, moment in (("/valid_from", p.valid_from), ("/valid_until", p.valid_until)):
        if moment.tzinfo is None:
            problems.append(FieldError(pointer, "must include a time zone offset"))
        elif not instant_in_range(moment):
            problems.append(FieldError(pointer, "out of range"))
    if not problems and p.valid_until <= p.valid_from:
        problems.append(FieldError("/valid_until", "must be after valid_from"))
    if not p.legal_basis.strip():
        problems.append(FieldError("/legal_basis", "must not be blank"))
    if problems:
        raise errors.invalid(problems)


async def propose(
    db: Database, proposal: Proposal, actor: str, audit: AuditActor | None = None
) -> dict[str, Any]:
    """Version 1, status ``proposed``; the caller is an admin of the provider.

    With ``audit``, the proposal is recorded in both towns' logs in its transaction.
    """
    agreement_id = uuid.uuid4()
    async with db.catalog() as conn:
        await _validate(conn, proposal)
        await conn.execute(
            "INSERT INTO catalog.agreements (agreement_id, provider, recipient, kind) "
            "VALUES ($1, $2, $3, 'bilateral')",
            agreement_id,
            proposal.provider,
            proposal.recipient,
        )
        await _insert_version(
            conn,
            agreement_id,
            1,
            "proposed",
            proposal.recipient_departments,
            proposal.purposes,
            proposal.fields,
            proposal.actions,
            proposal.legal_basis.strip(),
            proposal.valid_from,
            proposal.valid_until,
            actor,
            proposal.provider,
        )
        after = await _current(conn, agreement_id)
        if audit is not None:
            await _record_step(db, conn, audit, "propose", None, after)
        return after


async def _current(conn: asyncpg.Connection, agreement_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(_CURRENT + "AND a.agreement_id = $1", agreement_id)
    if row is None:
        raise errors.not_found("no such agreement")
    return dict(row)


async def _insert_version(conn: asyncpg.Connection, agreement_id: uuid.UUID, *values: Any) -> None:
    await conn.execute(
        "INSERT INTO catalog.agreement_versions (agreement_id, version, status, departments, "
        "purposes, fields, actions, legal_basis, valid_from, valid_until, changed_by, "
        "changed_by_tenant) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        agreement_id,
        *[list(v) if isinstance(v, (list, tuple)) else v for v in values],
    )


async def transition(
    db: Database,
    agreement_id: uuid.UUID,
    town: str,
    step: str,
    actor: str,
    audit: AuditActor | None = None,
) -> dict[str, Any]:
    """``accept`` (the recipient, from proposed) or ``revoke`` (either party).

    A revocation first takes the agreement's advisory lock exclusively, so it
    commits only after every cross-town read relying on the agreement has
    finished; every read after the commit sees it revoked.
    """
    async with db.catalog() as conn:
        if step == "revoke":
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", lock_name(agreement_id)
            )
        locked = await conn.fetchrow(
            "SELECT provider::text AS provider, recipient, kind FROM catalog.agreements "
            "WHERE agreement_id = $1 FOR UPDATE",
            agreement_id,
        )
        if locked is None or town not in (locked["provider"], locked["recipient"]):
            raise errors.not_found("no such agreement")
        current = await _current(conn, agreement_id)
        if step == "accept":
            if town != locked["recipient"]:
                raise errors.forbidden("only the recipient town's admin accepts an agreement")
            if current["status"] != "proposed":
                raise errors.conflict(f"the agreement is {current['status']}, not proposed")
            status = "active"
        else:
            if current["status"] == "revoked":
                raise errors.conflict("the agreement is already revoked")
            status = "revoked"
        await _insert_version(
            conn,
            agreement_id,
            current["version"] + 1,
            status,
            current["departments"],
            current["purposes"],
            current["fields"],
            current["actions"],
            current["legal_basis"],
            current["valid_from"],
            current["valid_until"],
            actor,
            town,
        )
        after = await _current(conn, agreement_id)
        if audit is not None:
            await _record_step(db, conn, audit, step, current, after)
        return after


def _terms_of(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an audit event keeps of one version: status and terms, no personal data."""
    if row is None:
        return None
    return {
        "version": row["version"],
        "status": row["status"],
        "recipient_departments": sorted(row["departments"]),
        "purposes": sorted(row["purposes"]),
        "fields": sorted(row["fields"]),
        "actions": sorted(row["actions"]),
        "legal_basis": row["legal_basis"],
        "valid_from": row["valid_from"].isoformat(),
        "valid_until": row["valid_until"].isoformat(),
    }


async def _record_step(
    db: Database,
    conn: asyncpg.Connection,
    audit: AuditActor,
    step: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> None:
    """One event per party town, in the step's transaction (its role for the call)."""
    provider, recipient = after["provider"].strip(), after["recipient"]
    change = json.dumps(
        {
            "provider": provider,
            "recipient": recipient,
            "kind": after["kind"],
            "before": _terms_of(before),
            "after": _terms_of(after),
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    for town in dict.fromkeys(t for t in (provider, recipient) if t != "*"):
        event = AuditEvent(
            action=f"agreement.{step}",
            resource_type="agreement",
            agreement_id=str(after["agreement_id"]),
            reason=change,
        )
        # No resident is named, so no subject key is needed.
        await record_as_town(
            conn, None, tenant_names(town, db.settings.role_prefix).role, audit, event
        )


async def list_for(db: Database, town: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Every agreement ``town`` is a party to, in its current version."""
    query = _CURRENT + "AND (a.provider = $1 OR a.recipient = $1 OR a.recipient = '*') "
    args: list[Any] = [town]
    if kind is not None:
        query += "AND a.kind = $2 "
        args.append(kind)
    async with db.catalog() as conn:
        rows = await conn.fetch(query + "ORDER BY a.created_at, a.agreement_id", *args)
    return [dict(r) for r in rows]


async def versions(db: Database, agreement_id: uuid.UUID, town: str) -> list[dict[str, Any]]:
    """All versions, oldest first; 404 unless ``town`` is a party."""
    async with db.catalog() as conn:
        rows = await conn.fetch(
            _SELECT + "WHERE a.agreement_id = $1 AND (a.provider = $2 OR a.recipient IN ($2, '*')) "
            "ORDER BY v.version",
            agreement_id,
            town,
        )
    if not rows:
        raise errors.not_found("no such agreement")
    return [dict(r) for r in rows]


def ensure_standing(conn: Connection, provider: str, actor: str = "onboarding") -> bool:
    """Create the town's standing move agreement unless it exists; True if created.

    ``conn`` is the provisioning transaction (sync SQLAlchemy, inside
    ``run_sync``), so a town and its standing agreement appear together.
    Without an installed domain that declares a standing share, none is created.
    """
    share = registry.standing_share()
    if share is None:
        return False
    exists = conn.execute(
        text("SELECT 1 FROM catalog.agreements WHERE provider = :p AND kind = 'standing_move'"),
        {"p": provider},
    ).scalar()
    if exists:
        return False
    agreement_id = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO catalog.agreements (agreement_id, provider, recipient, kind) "
            "VALUES (:id, :p, '*', 'standing_move')"
        ),
        {"id": agreement_id, "p": provider},
    )
    conn.execute(
        text(
            "INSERT INTO catalog.agreement_versions (agreement_id, version, status, departments, "
            "purposes, fields, actions, legal_basis, valid_from, valid_until, changed_by, "
            "changed_by_tenant) VALUES (:id, 1, 'active', CAST(:d AS text[]), "
            "CAST(:pu AS text[]), CAST(:f AS text[]), CAST(:a AS text[]), :lb, now(), :vu, :by, :p)"
        ),
        {
            "id": agreement_id,
            "p": provider,
            "d": [share.department],
            "pu": [share.purpose],
            "f": list(share.fields),
            "a": list(ACTIONS),
            "lb": share.legal_basis,
            "vu": FOREVER,
            "by": actor,
        },
    )
    return True


async def standing_agreement(db: Database, provider: str) -> uuid.UUID | None:
    """The id of ``provider``'s standing move agreement, if the town has one."""
    async with db.catalog() as conn:
        value = await conn.fetchval(
            "SELECT agreement_id FROM catalog.agreements "
            "WHERE provider = $1 AND kind = 'standing_move'",
            provider,
        )
    return value if isinstance(value, uuid.UUID) else None
