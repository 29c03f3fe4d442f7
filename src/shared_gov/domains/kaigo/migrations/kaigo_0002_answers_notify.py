"""Determinations: staff's answers to its questions, and the town a confirmation notifies.

- ``answers``: an envelope (what staff answered: personal, like the proposal).
- ``notify_town``: for a 住所地特例 whose facility is in another town of the
  deployment, that town (the one-stop move's destination, which the old town's
  ``move_outs`` and its event already hold in plain). A confirmation sends the
  notice there in one transaction over both towns; knowing the town before
  opening it keeps the other town's transaction out of every other confirmation.
  Never set for a person under 支援措置 or linked to one (rule 1).

Revision ID: kaigo_0002
Revises: kaigo_0001
Create Date: 2026-12-10
"""

from collections.abc import Sequence

from alembic import op

revision: str = "kaigo_0002"
down_revision: str | None = "kaigo_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE kaigo_determinations ADD COLUMN answers bytea, "
        "ADD COLUMN notify_town char(6) "
        "CONSTRAINT kaigo_determination_notify CHECK (notify_town ~ '^[0-9]{6}$')"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE kaigo_determinations DROP COLUMN answers, DROP COLUMN notify_town")
