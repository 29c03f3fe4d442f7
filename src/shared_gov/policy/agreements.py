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

An agreement is made with an *incarnation* of each town (catalog c0014): a
town code offboarded and onboarded again is a new town and inherits nothing.
Offboarding revokes every agreement the town is party to
(:func:`revoke_all`, in the offboarding's transaction, audited in both
towns' logs), and an agreement made with a past incarnation is invisible to
the current one (``sharing.agreement``, :func:`list_for`, :func:`versions`,
:func:`transition`). A re-created town gets a standing move agreement of its
own (a new id).
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
from shared_gov.crypto.keyring import town_keys
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.domains import registry
from shared_gov.errors import FieldError
from shared_gov.policy.requests import AgreementTerms
from shared_gov.policy.purposes import purposes
from shared_gov.towns.names import tenant_names
from shared_gov.validation import instant_in_range

ACTIONS = ("read", "search")
STANDING_KIND = "standing_move"
# The standing move agreement's terms (転出証明書の記載事項, its department and
# purpose) are the residents domain's: declared in its spec, read here through
# the registry (``registry.standing_share()``).
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)


# The current incarnation of a town (NULL for a code that is not a tenant).
_INCARNATION = "(SELECT t.incarnation FROM catalog.tenants AS t WHERE t.code = {})"
# ``a`` is an agreement the town ``$1`` is party to, made with its current
# incarnation (the standing agreements of every town: the provider's current one).
_PARTY_OF_CURRENT = (
    "((a.provider = $1 AND a.provider_incarnation = " + _INCARNATION.format("$1") + ") "
    "OR (a.recipient = $1 AND a.recipient_incarnation = " + _INCARNATION.format("$1") + ") "
    "OR (a.recipient = '*' AND a.provider_incarnation = " + _INCARNATION.format("a.provider") + "))"
)


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
    """The towns of ``codes`` that are active, locked FOR SHARE until commit.

    Offboarding updates the town's row first (status ``inactive``) and then
    revokes its agreements in the same transaction: a proposal or acceptance
    holding this lock commits before that update (and is revoked with the
    rest), or waits for it and finds the town inactive.
    """
    rows = await conn.fetch(
        "SELECT code::text AS code FROM catalog.tenants WHERE code = ANY($1) AND status = 'active' "
        "ORDER BY code FOR SHARE",
        sorted(set(codes)),
    )
    return {r["code"] for r in rows}


async def _validate(conn: asyncpg.Connection, p: Proposal) -> None:
    problems: list[FieldError] = []
    if p.provider not in await _active_towns(conn, [p.provider]):
        raise errors.not_found("no such active tenant")
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
        # Made with the parties' current incarnations (locked by _validate).
        await conn.execute(
            "INSERT INTO catalog.agreements (agreement_id, provider, recipient, kind, "
            "provider_incarnation, recipient_incarnation) "
            "SELECT $1::uuid, $2::text, $3::text, 'bilateral', p.incarnation, r.incarnation "
            "FROM catalog.tenants AS p, catalog.tenants AS r WHERE p.code = $2 AND r.code = $3",
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
        else:
            # Both towns' rows FOR SHARE before the agreement's FOR UPDATE (the
            # order offboarding takes them in): an acceptance commits before a
            # party's offboarding revokes the agreement, or sees it offboarding.
            parties = await conn.fetchrow(
                "SELECT provider::text AS provider, recipient FROM catalog.agreements "
                "WHERE agreement_id = $1",
                agreement_id,
            )
            if parties is not None and town in (parties["provider"], parties["recipient"]):
                both = {parties["provider"], parties["recipient"]} - {"*"}
                if await _active_towns(conn, list(both)) != both:
                    raise errors.conflict("a party to the agreement is being offboarded")
        locked = await conn.fetchrow(
            "SELECT a.provider::text AS provider, a.recipient, a.kind FROM catalog.agreements AS a "  # noqa: S608 - constant fragments
            "WHERE a.agreement_id = $2 AND (a.provider = $1 OR a.recipient = $1) AND "
            + _PARTY_OF_CURRENT
            + " FOR UPDATE OF a",
            town,
            agreement_id,
        )
        if locked is None:
            # Not a party, or a party's past incarnation: nothing to see here.
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
    towns = [t for t in dict.fromkeys((provider, recipient)) if t != "*"]
    # An offboarded town has no role (and no log to add to): its log ended
    # with its own offboarding, which revoked its agreements then.
    alive = {
        r["code"]
        for r in await conn.fetch(
            "SELECT code::text AS code FROM catalog.tenants "
            "WHERE code = ANY($1) AND status <> 'offboarded'",
            towns,
        )
    }
    for town in (t for t in towns if t in alive):
        event = AuditEvent(
            action=f"agreement.{step}",
            resource_type="agreement",
            agreement_id=str(after["agreement_id"]),
            reason=change,
        )
        # No resident is named: the town's keys only for the audit key (MAC).
        try:
            # Read on ``conn`` if not cached: never a second pooled
            # connection while this one is held.
            keys = await town_keys(db, town, conn)
        except LookupError:
            keys = None
        await record_as_town(
            conn, keys, tenant_names(town, db.settings.role_prefix).role, audit, event
        )


async def revoke_all(
    db: Database, conn: asyncpg.Connection, town: str, actor: str, audit: AuditActor
) -> list[str]:
    """Revoke every agreement ``town`` is party to (provider or recipient); their ids.

    For offboarding, in its transaction (``conn``), the town's row already
    updated to ``inactive``: bilateral agreements either way, and the town's
    standing move agreement. Each revocation is a new version and an event in
    both parties' logs (as :func:`transition`), taken under the agreement's
    exclusive advisory lock, so it commits only after every cross-town read
    relying on it has finished. Agreements already revoked are left alone.
    """
    rows = await conn.fetch(
        "SELECT agreement_id FROM catalog.agreements WHERE provider = $1 OR recipient = $1 "
        "ORDER BY agreement_id",
        town,
    )
    revoked: list[str] = []
    for row in rows:
        agreement_id: uuid.UUID = row["agreement_id"]
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", lock_name(agreement_id)
        )
        await conn.execute(
            "SELECT 1 FROM catalog.agreements WHERE agreement_id = $1 FOR UPDATE", agreement_id
        )
        current = await _current(conn, agreement_id)
        if current["status"] == "revoked":
            continue
        await _insert_version(
            conn,
            agreement_id,
            current["version"] + 1,
            "revoked",
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
        if db.settings.audit:
            await _record_step(db, conn, audit, "revoke", current, after)
        revoked.append(str(agreement_id))
    return revoked


async def list_for(db: Database, town: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Every agreement ``town``'s current incarnation is a party to, in its current version."""
    query = _CURRENT + "AND " + _PARTY_OF_CURRENT + " "
    args: list[Any] = [town]
    if kind is not None:
        query += "AND a.kind = $2 "
        args.append(kind)
    async with db.catalog() as conn:
        rows = await conn.fetch(query + "ORDER BY a.created_at, a.agreement_id", *args)
    return [dict(r) for r in rows]


async def versions(db: Database, agreement_id: uuid.UUID, town: str) -> list[dict[str, Any]]:
    """All versions, oldest first; 404 unless ``town``'s current incarnation is a party."""
    async with db.catalog() as conn:
        rows = await conn.fetch(
            _SELECT + "WHERE a.agreement_id = $2 AND " + _PARTY_OF_CURRENT + " ORDER BY v.version",
            town,
            agreement_id,
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
    # One per incarnation of the town: a re-created town gets its own (its
    # predecessor's was revoked when it was offboarded).
    exists = conn.execute(
        text(
            "SELECT 1 FROM catalog.agreements a JOIN catalog.tenants t ON t.code = a.provider "
            "WHERE a.provider = :p AND a.kind = 'standing_move' "
            "AND a.provider_incarnation = t.incarnation"
        ),
        {"p": provider},
    ).scalar()
    if exists:
        return False
    agreement_id = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO catalog.agreements (agreement_id, provider, recipient, kind, "
            "provider_incarnation) SELECT :id, :p, '*', 'standing_move', t.incarnation "
            "FROM catalog.tenants t WHERE t.code = :p"
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
    """The id of the standing move agreement of ``provider``'s current incarnation."""
    async with db.catalog() as conn:
        value = await conn.fetchval(
            "SELECT a.agreement_id FROM catalog.agreements a "
            "JOIN catalog.tenants t ON t.code = a.provider "
            "WHERE a.provider = $1 AND a.kind = 'standing_move' "
            "AND a.provider_incarnation = t.incarnation",
            provider,
        )
    return value if isinstance(value, uuid.UUID) else None
