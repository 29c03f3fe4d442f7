"""Staff permissions (per department and per person) and towns' own issuers.

Revision ID: c0002
Revises: c0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "c0002"
down_revision: str | None = "c0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

SCHEMA = "catalog"


def _now() -> sa.Column[object]:
    return sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    # Purposes a department may use (per organisation, as 標準仕様書 asks).
    op.create_table(
        "department_purposes",
        sa.Column("tenant_code", sa.CHAR(6), primary_key=True),
        sa.Column("department", sa.Text, primary_key=True),
        sa.Column("purpose", sa.Text, primary_key=True),
        sa.ForeignKeyConstraint(
            ["tenant_code", "department"],
            [f"{SCHEMA}.departments.tenant_code", f"{SCHEMA}.departments.code"],
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )
    # Per-person permissions: extra purposes, or a suspension (active = false).
    op.create_table(
        "staff",
        sa.Column(
            "tenant_code", sa.CHAR(6), sa.ForeignKey(f"{SCHEMA}.tenants.code"), primary_key=True
        ),
        sa.Column("staff_id", sa.Text, primary_key=True),
        sa.Column("department", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("purposes", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("note", sa.Text),
        _now(),
        schema=SCHEMA,
    )
    # A town's own OpenID Connect issuer. One issuer belongs to one town.
    op.create_table(
        "issuers",
        sa.Column("issuer", sa.Text, primary_key=True),
        sa.Column(
            "tenant_code",
            sa.CHAR(6),
            sa.ForeignKey(f"{SCHEMA}.tenants.code"),
            nullable=False,
            unique=True,
        ),
        sa.Column("audience", sa.Text, nullable=False),
        sa.Column("jwks_uri", sa.Text),
        sa.Column("jwks", pg.JSONB),
        sa.Column("algorithms", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("staff_claim", sa.Text, nullable=False, server_default="sub"),
        sa.Column("department_claim", sa.Text, nullable=False, server_default="dept"),
        sa.Column("roles_claim", sa.Text, nullable=False, server_default="roles"),
        _now(),
        sa.CheckConstraint("(jwks_uri IS NULL) <> (jwks IS NULL)", name="issuers_one_key_source"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("issuers", schema=SCHEMA)
    op.drop_table("staff", schema=SCHEMA)
    op.drop_table("department_purposes", schema=SCHEMA)
