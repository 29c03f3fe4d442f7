"""Each town's standing move agreement: created at onboarding, found by provider.

The terms (転出証明書の記載事項, its department and purpose) are the
residents domain's, read through the registry (``registry.standing_share()``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, text

from shared_gov.db import Database
from shared_gov.domains import registry
from shared_gov.policy.agreements.terms import ACTIONS, FOREVER


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
