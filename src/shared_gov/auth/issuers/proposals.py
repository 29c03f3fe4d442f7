"""A proposed change of a town's issuer: what it holds, its digest (what an
approver agrees to), and how it is stored in ``catalog.issuer_proposals``."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from shared_gov import errors
from shared_gov.auth.config import IssuerConfig
from shared_gov.messages import identity as mi

PROPOSAL_TTL = timedelta(hours=72)
"""How long a proposed issuer change waits for a second admin."""

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


def required(config: IssuerConfig | None) -> IssuerConfig:
    if config is None:  # pragma: no cover - a replace always carries its issuer
        raise errors.invalid_field("/", mi.ISSUER_REQUIRED)
    return config


def _canonical(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


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
PENDING = (
    "SELECT id::text AS id, tenant_code, incarnation, kind, config, base, digest, proposed_by, "
    "proposed_at, expires_at, status, decided_by, decided_at FROM catalog.issuer_proposals "
    "WHERE tenant_code = $1 AND status = 'pending' AND expires_at > now() "
    "AND incarnation = (SELECT incarnation FROM catalog.tenants WHERE code = $1)"
)
RETURNING_PROPOSAL = (
    " RETURNING id::text AS id, tenant_code, incarnation, kind, config, base, digest, "
    "proposed_by, proposed_at, expires_at, status, decided_by, decided_at"
)
# The proposal, of the town's current incarnation only, locked until commit.
LOCK_PROPOSAL = (
    "SELECT id::text AS id, tenant_code, incarnation, kind, config, base, digest, proposed_by, "
    "proposed_at, expires_at, status, decided_by, decided_at FROM catalog.issuer_proposals "
    "WHERE id = $1::uuid AND tenant_code = $2 AND incarnation = "
    "(SELECT incarnation FROM catalog.tenants WHERE code = $2) FOR UPDATE"
)
APPROVED = (
    "UPDATE catalog.issuer_proposals SET status = 'approved', decided_by = $2, "
    "decided_at = now() WHERE id = $1::uuid RETURNING id::text AS id, tenant_code, "
    "incarnation, kind, config, base, digest, proposed_by, proposed_at, expires_at, status, "
    "decided_by, decided_at"
)


def proposal_of(row: Any) -> Proposal:
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


async def close_pending(
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


async def locked_proposal(conn: asyncpg.Connection, code: str, proposal_id: str) -> Proposal | None:
    try:
        uuid.UUID(proposal_id)
    except ValueError:
        return None
    row = await conn.fetchrow(
        LOCK_PROPOSAL,
        proposal_id,
        code,
    )
    return None if row is None else proposal_of(row)
