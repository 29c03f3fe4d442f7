"""Whether a town's issuer is enrolled: the catalog row both the enrolment
(``tenancy.enrolment``) and the issuer catalogue (``auth.issuers``) write."""

from __future__ import annotations

import asyncpg


async def mark_enrolled(conn: asyncpg.Connection, tenant: str) -> None:
    """The town's admins set an issuer themselves: no code may be issued any more."""
    await conn.execute(
        "INSERT INTO catalog.enrolments (tenant_code, enrolled_at) VALUES ($1, now()) "
        "ON CONFLICT (tenant_code) DO UPDATE SET code_hash = NULL, expires_at = NULL, "
        "enrolled_at = COALESCE(catalog.enrolments.enrolled_at, now())",
        tenant,
    )
