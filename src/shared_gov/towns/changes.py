"""Administrative changes in the TOWN's audit log, in the change's own transaction.

Departments, staff permissions, suspensions, issuers, enrolment and tenant
manifests live in the catalog, but who changed a town's permissions is the
town's business: its auditors must find every change in its own log. So each
change records an event in the same catalog transaction as the change (no
record, no change): the transaction switches to the town's role for the one
call of ``audit.record`` — the same SECURITY DEFINER function every access
uses, which takes the town from the role it runs under — and back. A
catalog-side variant taking the town as an argument would let any caller of
the platform role write into any town's log; switching role needs the
membership the platform role has in every town's role anyway, and keeps one
writer and one set of checks.

An event names the change, not a person: ``resource_type`` is ``department``,
``staff``, ``issuer``, ``enrolment`` or ``tenant``; ``reason`` holds compact
JSON ``{"target": …, "before": …, "after": …}`` with the permission as it was
and as it is (purposes, department, active, issuer URL and key ids — never a
resident, never a free-text note). A refused change records ``outcome``
``denied`` with ``{"target": …, "requested": …, "refused": <why>}`` in a
transaction of its own.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from sqlalchemy import Connection, text

from shared_gov.audit.recorder import Actor, AuditEvent, _payload, record_as_town
from shared_gov.crypto.keyring import town_keys
from shared_gov.db.engine import Database
from shared_gov.logs import get_logger
from shared_gov.towns.names import tenant_names

log = get_logger(__name__)


def change_event(
    action: str, resource_type: str, target: str, before: object, after: object, **extra: object
) -> AuditEvent:
    """An accepted change with the permission before and after it.

    ``extra`` adds keys of the change's own (a proposal's id and digest, who
    proposed and who approved a four-eyes change).
    """
    return AuditEvent(
        action=action,
        resource_type=resource_type,
        outcome="allowed",
        reason=_compact({**extra, "target": target, "before": before, "after": after}),
    )


def refusal_event(
    action: str, resource_type: str, target: str, requested: object, why: str, outcome: str
) -> AuditEvent:
    """A refused change: what was asked for and why it was refused."""
    return AuditEvent(
        action=action,
        resource_type=resource_type,
        outcome=outcome,
        reason=refusal_reason(target, requested, why),
    )


def refusal_reason(target: str, requested: object, why: str) -> str:
    """The ``reason`` of a refused change: ``{"target", "requested", "refused"}``."""
    return _compact({"target": target, "requested": requested, "refused": why})


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _no_subjects(_rid: object) -> Any:  # pragma: no cover - admin events name no resident
    raise RuntimeError("administrative events name no resident")


async def record_change(
    conn: asyncpg.Connection, db: Database, tenant: str, actor: Actor, event: AuditEvent
) -> None:
    """Record ``event`` in town ``tenant``'s log, in ``conn``'s open transaction."""
    if not db.settings.audit:
        return
    role = tenant_names(tenant, db.settings.role_prefix).role
    try:
        # For the audit key only (administrative events name no resident);
        # cached after the town's first request, else read on ``conn``: a
        # second pooled connection taken while this one is held would deadlock
        # an exhausted pool (a burst of refused enrolments, say).
        keys = await town_keys(db, tenant, conn)
    except LookupError:
        keys = None  # a town without keys (being onboarded or offboarded): no MAC
    await record_as_town(conn, keys, role, actor, event)


def record_change_sync(
    conn: Connection, role_prefix: str, tenant: str, actor: Actor, event: AuditEvent
) -> None:
    """:func:`record_change` for provisioning (a sync SQLAlchemy connection)."""
    role = tenant_names(tenant, role_prefix).role
    payload = _payload(_no_subjects, actor, event)
    conn.execute(text("SELECT set_config('role', :r, true)"), {"r": role})
    conn.execute(text("SELECT audit.record(CAST(:p AS jsonb))"), {"p": json.dumps(payload)})
    conn.execute(text("SELECT set_config('role', 'none', true)"))


async def record_refusal(db: Database, tenant: str, actor: Actor, event: AuditEvent) -> None:
    """Record a refused change in a transaction of its own (the change's rolled back).

    Only for a town that is active (its role exists); never raises: a refusal
    stays a refusal even if its record cannot be written.
    """
    if not db.settings.audit:
        return
    try:
        async with db.catalog() as conn:
            active = await conn.fetchval(
                "SELECT 1 FROM catalog.tenants WHERE code = $1 AND status = 'active'", tenant
            )
            if active:
                await record_change(conn, db, tenant, actor, event)
    except Exception as exc:
        log.warning("admin.refusal_unrecorded", tenant=tenant, error=type(exc).__name__)
