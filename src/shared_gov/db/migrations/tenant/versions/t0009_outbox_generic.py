"""The outbox carries any domain's events: ``events.(record_type, record_id)``.

``events`` was written for residents only (``resident_id uuid NOT NULL``).
Each event now names the record it is about by its record type, as the
domain registry names it (``Resident``), and its id. Existing rows are
residents' and are migrated in place; the residents feed reads its own
record type's events and still calls the id ``resident_id``.

The check keeps a record type an identifier (CamelCase), so no personal
value can be stored in its place either. The town's role still may only
insert and read (t0005); nothing here changes privileges.

Revision ID: t0009
Revises: t0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0009"
down_revision: str | None = "t0008"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # asyncpg runs one statement per execute: one op.execute each.
    op.execute("ALTER TABLE events ADD COLUMN record_type text, ADD COLUMN record_id uuid")
    op.execute("UPDATE events SET record_type = 'Resident', record_id = resident_id")
    op.execute(
        "ALTER TABLE events ALTER COLUMN record_type SET NOT NULL, "
        "ALTER COLUMN record_id SET NOT NULL, DROP COLUMN resident_id"
    )
    op.execute(
        "ALTER TABLE events ADD CONSTRAINT events_record_type "
        "CHECK (record_type ~ '^[A-Z][A-Za-z0-9]*$')"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE events ADD COLUMN resident_id uuid")
    op.execute("UPDATE events SET resident_id = record_id WHERE record_type = 'Resident'")
    op.execute("DELETE FROM events WHERE resident_id IS NULL")
    op.execute(
        "ALTER TABLE events ALTER COLUMN resident_id SET NOT NULL, "
        "DROP CONSTRAINT events_record_type, DROP COLUMN record_type, DROP COLUMN record_id"
    )
