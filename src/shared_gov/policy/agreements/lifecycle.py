"""An agreement's lifecycle: propose, accept, revoke (each an immutable version), and reading them.

Every step is audited in each party town's log in the step's own
transaction (:func:`_record_step`); offboarding revokes every agreement of
the town (:func:`revoke_all`). :func:`list_for` and :func:`versions` show a
town its own agreements, never a past incarnation's.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from shared_gov import errors
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.audit.recorder import AuditEvent, record_as_town
from shared_gov.crypto.keyring import town_keys
from shared_gov.db import Database
from shared_gov.messages import access as m
from shared_gov.policy.agreements.proposals import Proposal, _active_towns, _validate
from shared_gov.policy.agreements.terms import _PARTY_OF_CURRENT, lock_name
from shared_gov.towns.names import tenant_names

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
        raise errors.not_found(m.NO_SUCH_AGREEMENT)
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
                    raise errors.conflict(m.PARTY_OFFBOARDING)
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
            raise errors.not_found(m.NO_SUCH_AGREEMENT)
        current = await _current(conn, agreement_id)
        if step == "accept":
            if town != locked["recipient"]:
                raise errors.forbidden(m.ONLY_RECIPIENT_ACCEPTS)
            if current["status"] != "proposed":
                raise errors.conflict(m.AGREEMENT_NOT_PROPOSED(status=current["status"]))
            status = "active"
        else:
            if current["status"] == "revoked":
                raise errors.conflict(m.AGREEMENT_ALREADY_REVOKED)
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


async def parties(db: Database, agreement_id: uuid.UUID) -> list[str]:
    """The towns an agreement names (none for an unknown id; ``*`` left out):
    where a refused attempt on it by someone of no town is recorded."""
    async with db.catalog() as conn:
        row = await conn.fetchrow(
            "SELECT provider::text AS provider, recipient FROM catalog.agreements "
            "WHERE agreement_id = $1",
            agreement_id,
        )
    if row is None:
        return []
    return [t for t in dict.fromkeys((row["provider"].strip(), row["recipient"])) if t != "*"]


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
        raise errors.not_found(m.NO_SUCH_AGREEMENT)
    return [dict(r) for r in rows]
