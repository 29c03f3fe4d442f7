"""The issuer in effect: reading, registering and replacing a town's row in
``catalog.issuers`` (one issuer, one town), and its JSON shape."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from shared_gov import errors
from shared_gov.auth.config import IssuerConfig
from shared_gov.db.engine import Database
from shared_gov.messages import identity as mi

# The town's provisioning lock (onboarding, enrolment and staff changes take it too).
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.tenant.' || $1::text, 0))"
_ACTIVE = "SELECT 1 FROM catalog.tenants WHERE code = $1 AND status = 'active'"
NOTIFY = "SELECT pg_notify($1, $2)"
_SELECT_ISSUER = (
    "SELECT issuer, tenant_code, audience, jwks_uri, jwks, algorithms, staff_claim, "
    "department_claim, roles_claim FROM catalog.issuers WHERE tenant_code = $1"
)


async def require_active(conn: asyncpg.Connection, code: str) -> None:
    if await conn.fetchval(_ACTIVE, code) is None:
        raise errors.not_found(mi.NO_SUCH_TENANT)


def config_of(row: Any) -> IssuerConfig:
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


async def current_row(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_SELECT_ISSUER, code)


async def get_issuer(db: Database, code: str) -> IssuerConfig:
    """The town's issuer; 404 for an unknown town or a town without one."""
    async with db.catalog() as conn:
        await require_active(conn, code)
        row = await current_row(conn, code)
    if row is None:
        raise errors.not_found(mi.NO_ISSUER)
    return config_of(row)


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
        raise errors.conflict(mi.URL_NOT_FOR_TOWN)
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
        raise errors.conflict(mi.URL_NOT_FOR_TOWN) from None
    return None if old is None else config_of(old)


def as_json(config: IssuerConfig | None) -> dict[str, Any] | None:
    return None if config is None else to_json(config)


def to_json(config: IssuerConfig) -> dict[str, Any]:
    """The JSON shape of an issuer (the manifest's ``[issuer]`` table)."""
    result: dict[str, Any] = msgspec.to_builtins(config)
    return result
