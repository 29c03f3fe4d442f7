"""Wrapped data keys and blind-index keys of every town.

Only the platform role reads this table; tenant roles have no privilege on
the catalog. Keys are stored wrapped by the town's key-encryption key (KEK),
which lives in the key provider (a local key file or an HSM), never here.

Revision ID: c0003
Revises: c0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0003"
down_revision: str | None = "c0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column(
            "tenant_code", sa.CHAR(6), sa.ForeignKey(f"{SCHEMA}.tenants.code"), primary_key=True
        ),
        # "dek": encrypts one column; "bidx": keys one blind index.
        sa.Column("kind", sa.Text, primary_key=True),
        # "residents.family_name", "resident_history.snapshot", "individual_number", …
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("kek_version", sa.Integer, nullable=False),
        # Blind indexes: how many bits of the HMAC are kept (planned from population).
        sa.Column("bits", sa.Integer),
        # active: used for writes (one per name); decrypt: still read; retired: gone.
        sa.Column("state", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("kind IN ('dek', 'bidx')", name="data_keys_kind"),
        sa.CheckConstraint("state IN ('active', 'decrypt', 'retired')", name="data_keys_state"),
        schema=SCHEMA,
    )
    op.create_index(
        "data_keys_one_active",
        "data_keys",
        ["tenant_code", "kind", "name"],
        unique=True,
        schema=SCHEMA,
        postgresql_where="state = 'active'",
    )


def downgrade() -> None:
    op.drop_table("data_keys", schema=SCHEMA)
