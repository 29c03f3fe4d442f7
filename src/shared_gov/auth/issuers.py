"""Reading and changing a town's registered issuer in ``catalog.issuers``.

Used by :class:`~shared_gov.auth.controllers.IssuerController`. A change runs
in one catalog transaction that takes the town's provisioning lock (the one
onboarding takes, so a manifest and an API call cannot interleave) and
commits ``pg_notify('shared_gov_policy', <town>)`` with the change, so every
worker drops its cached issuers right after the commit. The caller also
invalidates its own process's registry before answering.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from shared_gov import errors
from shared_gov.audit.recorder import Actor
from shared_gov.db.engine import Database
from shared_gov.db.notify import CHANNEL
from shared_gov.tenancy import changes, enrolment
from shared_gov.tenancy.manifest import IssuerConfig

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.tenant.' || $1::text, 0))"
_ACTIVE = "SELECT 1 FROM catalog.tenants WHERE code = $1 AND status = 'active'"
_NOTIFY = "SELECT pg_notify($1, $2)"


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


async def get_issuer(db: Database, code: str) -> IssuerConfig:
    """The town's issuer; 404 for an unknown town or a town without one."""
    async with db.catalog() as conn:
        await _require_active(conn, code)
        row = await conn.fetchrow(
            "SELECT issuer, audience, jwks_uri, jwks, algorithms, staff_claim, "
            "department_claim, roles_claim FROM catalog.issuers WHERE tenant_code = $1",
            code,
        )
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


async def put_issuer(db: Database, code: str, config: IssuerConfig, actor: Actor) -> bool:
    """Register or replace the town's issuer; True if the town had none before.

    The change, its audit event in the town's log and the end of the town's
    enrolment (no code can be issued for a town that set its own issuer)
    commit together.
    """
    async with db.catalog() as conn:
        await conn.execute(_LOCK, code)
        await _require_active(conn, code)
        before = await replace_issuer(conn, code, config)
        await enrolment.mark_enrolled(conn, code)
        event = changes.change_event(
            "admin.issuer",
            "issuer",
            code,
            enrolment.issuer_summary(before),
            enrolment.issuer_summary(config),
        )
        await changes.record_change(conn, db, code, actor, event)
        await conn.execute(_NOTIFY, CHANNEL, code)
    return before is None


async def delete_issuer(db: Database, code: str, actor: Actor) -> None:
    """Remove the town's issuer: its tokens are refused from the next request on."""
    async with db.catalog() as conn:
        await conn.execute(_LOCK, code)
        await _require_active(conn, code)
        old = await conn.fetchrow(
            "DELETE FROM catalog.issuers WHERE tenant_code = $1 RETURNING issuer, audience, "
            "jwks_uri, jwks, algorithms, staff_claim, department_claim, roles_claim",
            code,
        )
        if old is None:
            raise errors.not_found("the town has no issuer of its own")
        event = changes.change_event(
            "admin.issuer.delete", "issuer", code, enrolment.issuer_summary(_config(old)), None
        )
        await changes.record_change(conn, db, code, actor, event)
        await conn.execute(_NOTIFY, CHANNEL, code)


def to_json(config: IssuerConfig) -> dict[str, Any]:
    """The JSON shape of an issuer (the manifest's ``[issuer]`` table)."""
    result: dict[str, Any] = msgspec.to_builtins(config)
    return result
