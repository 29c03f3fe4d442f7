"""Registered move-outs (転出届) and where they go: ``move_outs``.

A ``move_out_domestic`` registers a planned 転出; when the new town is a town
of this deployment, the old town records it here (``to_town``), so that only
that town may cite the record for a one-stop move-in (転入届 under the
standing move agreement), only once, and only while the move is pending:

- ``pending``: registered, not yet confirmed by the new town. The standing
  move agreement shows the 転出証明書 fields to ``to_town`` only, and only now.
- ``confirmed``: the new town registered the move-in (転入通知); set in the
  same transaction as the new town's record, under ``FOR UPDATE`` on this row,
  so two towns (or two clerks) racing for the same person cannot both win.
- ``cancelled``: the move-out was withdrawn.

``to_town`` is NULL when the person moves to a town that is not a tenant here
(the paper 転出証明書 is used): such a move can never be confirmed one-stop.
At most one pending move-out per resident. No personal value is stored: ids,
a town code, a status and times.

Revision ID: t0007
Revises: t0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0007"
down_revision: str | None = "t0006"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # asyncpg runs one statement per execute: one op.execute each.
    op.execute(
        """
        CREATE TABLE move_outs (
            move_out_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            resident_id uuid NOT NULL REFERENCES residents (id),
            to_town char(6) CHECK (to_town ~ '^[0-9]{6}$'),
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'confirmed', 'cancelled')),
            created_at timestamptz NOT NULL DEFAULT now(),
            confirmed_at timestamptz,
            cancelled_at timestamptz,
            CHECK ((status = 'confirmed') = (confirmed_at IS NOT NULL)),
            CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX move_outs_one_pending ON move_outs (resident_id) "
        "WHERE status = 'pending'"
    )
    op.execute("CREATE INDEX move_outs_resident ON move_outs (resident_id)")
    # The town reads, registers and settles its move-outs; it never erases one.
    op.execute(
        """
        DO $$
        DECLARE
            town_role text;
        BEGIN
            SELECT role_name INTO town_role FROM catalog.tenants
            WHERE schema_name = current_schema();
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = town_role) THEN
                EXECUTE format('GRANT SELECT, INSERT, UPDATE ON move_outs TO %I', town_role);
                EXECUTE format('REVOKE DELETE, TRUNCATE ON move_outs FROM %I', town_role);
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE move_outs")
