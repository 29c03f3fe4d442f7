"""Enrolment: the one-time step in which a town takes over its own identity.

Separation of duties (docs/separation-of-duties.md): the operator creates a
town and runs the platform, but never chooses who the town's staff are. So a
new town starts without an identity provider and with a one-time enrolment
code, created at onboarding (or re-issued by the operator with
``shared-gov tenants enrolment-code CODE`` while the town is not enrolled):
192 random bits, shown once, stored only as its SHA-256, valid for
:data:`CODE_TTL`, single use. The town's information-policy office redeems it
(``POST /api/v1/tenants/{code}/enrolment``) with the town's issuer settings
and the subject of its first admin. From then on the town is enrolled: its
admins alone change its issuer and permissions, and the operator can issue no
code for it any more. A town whose admins register an issuer through the
admin API (development, where built-in tokens may act as a town's admin) is
enrolled by that too.

Every issue, redemption and refusal is an event in the town's audit log (see
:mod:`.changes`). Whoever holds the code is recorded as the fixed actor
:data:`ACTOR` (the caller is nobody the town knows yet). A refused attempt
does not record the first admin it claimed at all: an attacker's chosen text
(a name, someone to frame) has no place in the town's log, as an actor or
as data. An accepted one records the first admin it registered.

The endpoint checks the code first (:func:`code_matches`: SHA-256 of the
code against the stored hash, constant-time) and only a failure counts
against the enrolment limits (:func:`shared_gov.auth.failures.enrolment_gate`):
a flood of wrong codes neither locks the town out of its own enrolment nor
uses up the failed-login budget of its tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import asyncpg
from sqlalchemy import Connection, text

from shared_gov import errors
from shared_gov.audit.recorder import Actor
from shared_gov.auth.config import IssuerConfig, issuer_summary
from shared_gov.auth.issuers import replace_issuer
from shared_gov.auth.subjects import person_key
from shared_gov.db.engine import Database
from shared_gov.db.notify import CHANNEL
from shared_gov.messages import identity as mi
from shared_gov.towns.changes import change_event, record_change, record_refusal, refusal_event
from shared_gov.towns.enrolments import mark_enrolled

__all__ = ["EnrolmentCode", "code_matches", "issue", "issuer_summary", "mark_enrolled", "redeem"]

CODE_TTL = timedelta(hours=72)
ACTOR = "enrolment"
"""The audit actor of every redemption attempt: not the admin the caller claims to be."""
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.tenant.' || $1::text, 0))"


@dataclass(frozen=True, slots=True)
class EnrolmentCode:
    code: str
    expires_at: datetime


def _hash(code: str) -> bytes:
    return hashlib.sha256(code.encode("utf-8")).digest()


def _new_code() -> EnrolmentCode:
    return EnrolmentCode(secrets.token_urlsafe(24), datetime.now(UTC) + CODE_TTL)


def issue_at_creation(conn: Connection, tenant: str) -> EnrolmentCode:
    """A new town's first code (inside the provisioning transaction)."""
    fresh = _new_code()
    conn.execute(
        text(
            "INSERT INTO catalog.enrolments (tenant_code, code_hash, expires_at, issued_at, "
            "enrolled_at, first_admin) VALUES (:t, :h, :e, now(), NULL, NULL) "
            "ON CONFLICT (tenant_code) DO UPDATE SET code_hash = EXCLUDED.code_hash, "
            "expires_at = EXCLUDED.expires_at, issued_at = now(), enrolled_at = NULL, "
            "first_admin = NULL"
        ),
        {"t": tenant, "h": _hash(fresh.code), "e": fresh.expires_at},
    )
    return fresh


def enrolled_at_creation(conn: Connection, tenant: str) -> None:
    """A development town whose manifest named its issuer: enrolled from the start."""
    conn.execute(
        text(
            "INSERT INTO catalog.enrolments (tenant_code, enrolled_at) VALUES (:t, now()) "
            "ON CONFLICT (tenant_code) DO UPDATE SET code_hash = NULL, expires_at = NULL, "
            "enrolled_at = now(), first_admin = NULL"
        ),
        {"t": tenant},
    )


async def _state(conn: asyncpg.Connection, tenant: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT e.code_hash, e.expires_at, e.enrolled_at, "
        "EXISTS (SELECT 1 FROM catalog.issuers i WHERE i.tenant_code = t.code) AS has_issuer "
        "FROM catalog.tenants t LEFT JOIN catalog.enrolments e ON e.tenant_code = t.code "
        "WHERE t.code = $1 AND t.status = 'active' FOR UPDATE OF t",
        tenant,
    )


def _refusal(state: asyncpg.Record | None, code: str) -> tuple[int, str] | None:
    """Why ``code`` cannot enrol the town in ``state`` (None: it can)."""
    if state is None:
        return (404, mi.NO_SUCH_ACTIVE_TENANT)
    if state["enrolled_at"] is not None or state["has_issuer"]:
        return (409, mi.ENROLLED_ALREADY)
    if state["code_hash"] is None:
        return (403, mi.NO_CODE_OUTSTANDING)
    if not hmac.compare_digest(bytes(state["code_hash"]), _hash(code)):
        return (403, mi.WRONG_CODE)
    if state["expires_at"] <= datetime.now(UTC):
        return (403, mi.CODE_EXPIRED)
    return None


async def code_matches(db: Database, tenant: str, code: str) -> bool:
    """Whether ``code`` would enrol the town now (read only; :func:`redeem` checks again)."""
    async with db.catalog() as conn:
        state = await conn.fetchrow(
            "SELECT e.code_hash, e.expires_at, e.enrolled_at, "
            "EXISTS (SELECT 1 FROM catalog.issuers i WHERE i.tenant_code = t.code) AS has_issuer "
            "FROM catalog.tenants t LEFT JOIN catalog.enrolments e ON e.tenant_code = t.code "
            "WHERE t.code = $1 AND t.status = 'active'",
            tenant,
        )
    return _refusal(state, code) is None


async def refuse(db: Database, tenant: str, code: str, actor: Actor) -> NoReturn:
    """Record and raise the refusal of a code :func:`code_matches` did not accept."""
    async with db.catalog() as conn:
        state = await _state(conn, tenant)
    refusal = _refusal(state, code) or (403, mi.WRONG_CODE)
    await _refuse(db, tenant, {"enrolment": "refused"}, refusal, actor)


async def _refuse(
    db: Database, tenant: str, requested: object, refusal: tuple[int, str], actor: Actor
) -> NoReturn:
    status, why = refusal
    await record_refusal(
        db,
        tenant,
        actor,
        refusal_event("tenant.enrol", "enrolment", tenant, requested, why, "denied"),
    )
    if status == 404:
        raise errors.not_found(why)
    if status == 409:
        raise errors.conflict(why)
    raise errors.forbidden(why)


async def issue(db: Database, tenant: str, actor: Actor) -> EnrolmentCode:
    """(Re)issue the code of a town that is not enrolled; 409 once it is."""
    refused: str | None = None
    async with db.catalog() as conn:
        await conn.execute(_LOCK, tenant)
        state = await _state(conn, tenant)
        if state is None:
            raise errors.not_found(mi.NO_SUCH_ACTIVE_TENANT)
        if state["enrolled_at"] is not None or state["has_issuer"]:
            refused = mi.ENROLLED_ADMINS_ONLY
        else:
            fresh = _new_code()
            await conn.execute(
                "INSERT INTO catalog.enrolments (tenant_code, code_hash, expires_at, issued_at) "
                "VALUES ($1, $2, $3, now()) ON CONFLICT (tenant_code) DO UPDATE SET "
                "code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at, "
                "issued_at = now()",
                tenant,
                _hash(fresh.code),
                fresh.expires_at,
            )
            event = change_event(
                "tenant.enrolment_code",
                "enrolment",
                tenant,
                {"code_outstanding": state["code_hash"] is not None},
                {"code_outstanding": True, "expires_at": fresh.expires_at.isoformat()},
            )
            await record_change(conn, db, tenant, actor, event)
            return fresh
    event = refusal_event(
        "tenant.enrolment_code", "enrolment", tenant, {"code": "new"}, refused, "denied"
    )
    await record_refusal(db, tenant, actor, event)
    raise errors.conflict(refused)


async def redeem(
    db: Database,
    tenant: str,
    code: str,
    config: IssuerConfig,
    first_admin: str,
    actor: Actor,
) -> None:
    """Redeem ``code``: register the town's issuer and its first admin, once.

    Wrong, expired or missing codes are 403 and a denied event; an enrolled
    town is 409 (and a denied event: a town that finds its code used should
    ask who used it — the event says when and from where).
    """
    # Not the claimed first admin: see the module docstring.
    requested = {"issuer": issuer_summary(config)}
    async with db.catalog() as conn:
        await conn.execute(_LOCK, tenant)
        state = await _state(conn, tenant)
        if state is None:
            raise errors.not_found(mi.NO_SUCH_ACTIVE_TENANT)
        refusal = _refusal(state, code)
        if refusal is None:
            await replace_issuer(conn, tenant, config)
            await conn.execute(
                "UPDATE catalog.enrolments SET code_hash = NULL, expires_at = NULL, "
                "enrolled_at = now(), first_admin = $2 WHERE tenant_code = $1",
                tenant,
                first_admin,
            )
            # The first admin's record: no purposes (an admin reads nobody by
            # being admin), it names who completed the bootstrap.
            await conn.execute(
                "INSERT INTO catalog.staff (tenant_code, staff_id, person_key, note) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_code, person_key) DO NOTHING",
                tenant,
                first_admin,
                person_key(first_admin),
                "first admin (enrolment)",
            )
            event = change_event(
                "tenant.enrol",
                "enrolment",
                tenant,
                {"issuer": None, "enrolled": False},
                {"issuer": issuer_summary(config), "first_admin": first_admin, "enrolled": True},
            )
            await record_change(conn, db, tenant, actor, event)
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, tenant)
            return
    # Lost a race with another redemption (or the code changed meanwhile).
    await _refuse(db, tenant, requested, refusal, actor)
