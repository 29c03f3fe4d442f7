"""A move-out names its destination's incarnation, not only its town code.

A pending one-stop move-out named the new town by its code (``to_town``). A
code offboarded and onboarded again is a new town (catalog c0012/c0014): it
must never confirm, nor read under the standing move agreement, a move
registered while its predecessor existed (review finding C1). So the old
town records, with the move-out, the destination's incarnation at that
moment (``sharing.town_incarnation``, NULL when the code is not an active
town here), and a move-out binds only while that is still the destination's
current incarnation (``domains/residents/move_outs.py``). Nothing is written
into other towns' schemas when a town is offboarded, and a registration that
races an offboarding is bound to the incarnation that is ending.

Existing rows are bound to the destination's incarnation when they were
registered: the current one, or the one before it when the move-out is older
than the current incarnation's first audit event.

Revision ID: t0010
Revises: t0009
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0010"
down_revision: str | None = "t0009"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE move_outs ADD COLUMN to_incarnation integer")
    op.execute(
        """
        UPDATE move_outs AS m
        SET to_incarnation = t.incarnation - CASE WHEN m.created_at < COALESCE(
                (SELECT min(e.occurred_at) FROM audit.events AS e
                 WHERE e.tenant = t.code AND e.incarnation = t.incarnation),
                '-infinity'::timestamptz) THEN 1 ELSE 0 END
        FROM catalog.tenants AS t
        WHERE m.to_town IS NOT NULL AND t.code = m.to_town
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE move_outs DROP COLUMN to_incarnation")
