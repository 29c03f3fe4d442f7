"""Individual number and 住民票コード are unique among ACTIVE records only.

A removed record (除票: moved out, deceased) is kept with its values; when the
same person moves back in, the new record carries the same numbers, which
belong to the person for life.

Revision ID: t0002
Revises: t0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0002"
down_revision: str | None = "t0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("residents_individual_number", table_name="residents")
    op.drop_index("residents_juminhyo_code", table_name="residents")
    op.create_index(
        "residents_individual_number",
        "residents",
        ["individual_number"],
        unique=True,
        postgresql_where="state = 'active'",
    )
    op.create_index(
        "residents_juminhyo_code",
        "residents",
        ["juminhyo_code"],
        unique=True,
        postgresql_where="state = 'active'",
    )


def downgrade() -> None:
    op.drop_index("residents_juminhyo_code", table_name="residents")
    op.drop_index("residents_individual_number", table_name="residents")
    op.create_index("residents_individual_number", "residents", ["individual_number"], unique=True)
    op.create_index("residents_juminhyo_code", "residents", ["juminhyo_code"], unique=True)
