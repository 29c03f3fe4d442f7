"""Catalog schema: tenants and their departments.

Revision ID: c0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "c0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("code", sa.CHAR(6), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_kana", sa.Text, nullable=False),
        sa.Column("prefecture", sa.Text, nullable=False),
        sa.Column("population", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("schema_name", sa.Text, nullable=False),
        sa.Column("role_name", sa.Text, nullable=False),
        sa.Column("schema_revision", sa.Text),
        sa.Column("manifest", pg.JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("offboarded_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('active', 'inactive', 'offboarded')", name="tenants_status"),
        sa.CheckConstraint("code ~ '^[0-9]{6}$'", name="tenants_code_digits"),
        schema=SCHEMA,
    )
    op.create_table(
        "departments",
        sa.Column(
            "tenant_code",
            sa.CHAR(6),
            sa.ForeignKey(f"{SCHEMA}.tenants.code"),
            primary_key=True,
        ),
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("departments", schema=SCHEMA)
    op.drop_table("tenants", schema=SCHEMA)
