"""Resident records (住民記録): households, residents, history snapshots.

Runs with ``search_path`` set to the tenant schema, so names are unqualified.

Revision ID: t0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "t0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def upgrade() -> None:
    # Serial numbers for 宛名番号 and 世帯番号; the check digit is added in Python.
    op.execute("CREATE SEQUENCE atena_seq")
    op.execute("CREATE SEQUENCE household_seq")
    op.create_table(
        "households",
        sa.Column("household_no", sa.Text, primary_key=True),
        sa.Column("head_id", pg.UUID),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "residents",
        sa.Column("id", pg.UUID, primary_key=True),
        sa.Column("atena_no", sa.Text, nullable=False, unique=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("resident_type", sa.Text, nullable=False),
        sa.Column(
            "household_no",
            sa.Text,
            sa.ForeignKey("households.household_no"),
            nullable=False,
        ),
        sa.Column("relationship", sa.Text, nullable=False),
        sa.Column("family_name", sa.Text, nullable=False),
        sa.Column("given_name", sa.Text, nullable=False),
        sa.Column("family_name_kana", sa.Text, nullable=False),
        sa.Column("given_name_kana", sa.Text, nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("sex", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("postal_code", sa.Text),
        sa.Column("individual_number", sa.Text),
        sa.Column("juminhyo_code", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("former_surname", sa.Text),
        sa.Column("domicile", sa.Text),
        sa.Column("previous_address", sa.Text),
        sa.Column("forward_address", sa.Text),
        sa.Column("resident_since", sa.Date, nullable=False),
        sa.Column("address_since", sa.Date, nullable=False),
        sa.Column("notified_on", sa.Date, nullable=False),
        sa.Column("removed_on", sa.Date),
        sa.Column("history_no", sa.Integer, nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "state IN ('active', 'moved_out', 'deceased', 'removed')", name="residents_state"
        ),
    )
    op.create_index("residents_individual_number", "residents", ["individual_number"], unique=True)
    op.create_index("residents_juminhyo_code", "residents", ["juminhyo_code"], unique=True)
    op.create_index("residents_kana_birth", "residents", ["family_name_kana", "birth_date"])
    op.create_index("residents_household", "residents", ["household_no"])
    op.create_table(
        "resident_history",
        sa.Column("resident_id", pg.UUID, sa.ForeignKey("residents.id"), primary_key=True),
        sa.Column("history_no", sa.Integer, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("move_date", sa.Date, nullable=False),
        sa.Column("notified_on", sa.Date, nullable=False),
        sa.Column("processed_on", sa.Date, nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("snapshot", pg.JSONB, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("resident_history")
    op.drop_table("residents")
    op.drop_table("households")
    op.execute("DROP SEQUENCE household_seq")
    op.execute("DROP SEQUENCE atena_seq")
