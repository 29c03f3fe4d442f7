"""The town's outbox of domain events (issue #6): ``events``.

Each row says that something happened to a resident — its type
(``resident.moved_within_town`` …), the resident's id, the NAMES of the
fields that changed and a few other ids — and is written in the same
transaction as the change it reports (see
``shared_gov.domains.residents.events``). It never holds a personal value,
so nothing here is encrypted.

Position: ``(xid, seq)``. ``xid`` is the writing transaction's id;
``seq`` orders the rows one transaction wrote. The feed only serves rows whose
``xid`` is below ``pg_snapshot_xmin(pg_current_snapshot())`` — every such
writer has ended — so a transaction that commits late cannot land behind a
cursor a reader already holds (a bare serial would let a reader see 11 before
10 commits and skip 10 for ever). The primary key is that position, so reads
are one index range scan.

The town's role may insert and read, never change or delete: consumers must
be able to trust that what they have read stays as it was.

Revision ID: t0005
Revises: t0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0005"
down_revision: str | None = "t0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # asyncpg runs one statement per execute: one op.execute each.
    op.execute(
        """
        CREATE TABLE events (
            xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            seq bigint GENERATED ALWAYS AS IDENTITY,
            event_id uuid NOT NULL DEFAULT gen_random_uuid(),
            occurred_at timestamptz NOT NULL DEFAULT now(),
            type text NOT NULL,
            resident_id uuid NOT NULL,
            fields text[] NOT NULL DEFAULT '{}',
            ids jsonb NOT NULL DEFAULT '{}',
            PRIMARY KEY (xid, seq),
            -- Defence in depth behind the checks in emit(): a type and field
            -- names are identifiers, so a personal value (kana, an address,
            -- a number) cannot be stored in their place.
            CONSTRAINT events_type CHECK (type ~ '^[a-z]+\\.[a-z_]+$'),
            CONSTRAINT events_fields CHECK (
                array_to_string(fields, ',') ~ '^[a-z_]*(,[a-z_]+)*$'
            ),
            CONSTRAINT events_ids CHECK (jsonb_typeof(ids) = 'object')
        )
        """
    )
    # Append-only for the town: SELECT and INSERT only (default privileges
    # granted DML on the new table). The role is the catalog's record of this
    # schema's town; `_lock_down` in the runner repeats the revoke after
    # every upgrade.
    op.execute(
        """
        DO $$
        DECLARE
            town_role text;
        BEGIN
            SELECT role_name INTO town_role FROM catalog.tenants
            WHERE schema_name = current_schema();
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = town_role) THEN
                EXECUTE format('GRANT SELECT, INSERT ON events TO %I', town_role);
                EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON events FROM %I', town_role);
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE events")
