"""Enrolment: the one-time bootstrap that hands a town its identity provider.

An operator creates a town; the town's own information-policy office then
redeems a one-time enrolment code with the town's issuer settings and its
first admin (see docs/separation-of-duties.md). One row per town:

- ``code_hash``: SHA-256 of the outstanding code (the code itself is never
  stored; codes carry 192 random bits, so a fast hash is enough). NULL when
  no code is outstanding (never issued, redeemed, or the town is enrolled).
- ``expires_at``: the outstanding code's expiry.
- ``enrolled_at``: when the town took over its identity; from then on the
  operator can issue no code for it and only the town's admins change its
  issuer and permissions.
- ``first_admin``: the subject named at redemption (who completed the bootstrap).

Towns that exist already: those with an issuer of their own are enrolled
(their identity is theirs already); the others are pending, without a code —
the operator issues one with ``shared-gov tenants enrolment-code CODE``.

Revision ID: c0010
Revises: c0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0010"
down_revision: str | None = "c0009"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.create_table(
        "enrolments",
        sa.Column(
            "tenant_code",
            sa.CHAR(6),
            sa.ForeignKey(f"{SCHEMA}.tenants.code"),
            primary_key=True,
        ),
        sa.Column("code_hash", sa.LargeBinary),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("issued_at", sa.DateTime(timezone=True)),
        sa.Column("enrolled_at", sa.DateTime(timezone=True)),
        sa.Column("first_admin", sa.Text),
        sa.CheckConstraint(
            "(code_hash IS NULL) = (expires_at IS NULL)", name="enrolments_code_has_expiry"
        ),
        sa.CheckConstraint(
            "enrolled_at IS NULL OR code_hash IS NULL", name="enrolments_no_code_once_enrolled"
        ),
        schema=SCHEMA,
    )
    op.execute(
        "INSERT INTO catalog.enrolments (tenant_code, enrolled_at) "
        "SELECT t.code, CASE WHEN EXISTS (SELECT 1 FROM catalog.issuers i "
        "WHERE i.tenant_code = t.code) THEN now() END FROM catalog.tenants t"
    )


def downgrade() -> None:
    op.drop_table("enrolments", schema=SCHEMA)
