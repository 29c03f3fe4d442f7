"""支援措置 flag on resident records (DV and similar support measures).

When set (by 市民課 only), the person's whereabouts are withheld from every
department except 市民課 doing resident registration work.

Revision ID: t0003
Revises: t0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0003"
down_revision: str | None = "t0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "residents",
        sa.Column("support_measure", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("residents", "support_measure")
