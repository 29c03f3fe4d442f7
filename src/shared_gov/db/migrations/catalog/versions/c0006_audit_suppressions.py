"""Audit suppressions: events withheld from residents' access reports until a date.

- ``audit.suppressions`` is append-only like ``audit.events`` (owned by the
  audit role, triggers refuse UPDATE, DELETE and TRUNCATE): a suppression
  can be neither removed nor back-dated; the latest row for an event wins
  (``id`` orders them), so an early release is a new row dated today.
- The platform login role (auditors' queries run as it) may read and insert.
- ``audit.events`` gets an index on ``(tenant, event_id)``: suppressions and
  findings name events by id alone, and the primary key leads with time.
  Building it on a partitioned table builds it on every partition.

Revision ID: c0006
Revises: c0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0006"
down_revision: str | None = "c0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


STATEMENTS: tuple[str, ...] = (
    """
CREATE TABLE audit.suppressions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant char(6) NOT NULL,
    event_id uuid NOT NULL,
    until date NOT NULL,
    reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
""",
    """
CREATE INDEX suppressions_event ON audit.suppressions (tenant, event_id, id DESC)
""",
    """
CREATE INDEX events_tenant_event ON audit.events (tenant, event_id)
""",
    """
SELECT audit.protect('audit.suppressions')
""",
    """
DO $$
DECLARE
    owner text := current_setting('shared_gov.role_prefix') || '_audit';
BEGIN
    IF owner !~ '^[a-z][a-z0-9_]{0,30}_audit$' THEN
        RAISE EXCEPTION 'bad role prefix';
    END IF;
    EXECUTE format('ALTER TABLE audit.suppressions OWNER TO %I', owner);
END $$
""",
    """
-- After the owner change (it would carry the creator's privileges away):
-- the platform login role reads and appends, as c0005 grants for the seal.
-- A no-op when that role is a superuser.
GRANT SELECT, INSERT ON audit.suppressions TO SESSION_USER
""",
)


def upgrade() -> None:
    # One statement per call: the asyncpg driver prepares each one.
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("audit records are never dropped by a migration")
