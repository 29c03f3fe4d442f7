"""A second column per resident blind index, for rotating index keys.

A blind-index value does not say which key made it, so while an index key is
rotated the old and the new values must be stored side by side:
``bidx_<name>`` holds the values of odd key versions, ``bidx_<name>_alt``
those of even ones (``shared_gov.crypto.keyring.index_column``). The first
rotation of a town's index (v1 → v2) fills the new columns; the next one
(v2 → v3) fills ``bidx_<name>`` again, and so on. No data moves at the
switch; see ``shared_gov.crypto.index_rotation``.

Outside a rotation one of the two columns is NULL on every row, so the new
indexes are partial (only rows holding a value): small, and still used by
``bidx_<name>_alt = $1`` searches, which imply ``IS NOT NULL``.

Revision ID: t0006
Revises: t0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0006"
down_revision: str | None = "t0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

NAMES = ("individual_number", "kana_birth", "phone", "juminhyo_code")


def upgrade() -> None:
    # asyncpg runs one statement per execute: one op.execute each. Nullable
    # columns without a default are a catalog change only (no table rewrite).
    op.execute(
        "ALTER TABLE residents " + ", ".join(f"ADD COLUMN bidx_{name}_alt bigint" for name in NAMES)
    )
    for name in NAMES:
        op.execute(
            f"CREATE INDEX residents_bidx_{name}_alt ON residents (bidx_{name}_alt) "
            f"WHERE bidx_{name}_alt IS NOT NULL"
        )


def downgrade() -> None:
    # After an even number of rotations a town's only index values live in the
    # _alt columns: dropping them would make its residents unfindable.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM residents WHERE "  # noqa: S608
        + " OR ".join(f"bidx_{name}_alt IS NOT NULL" for name in NAMES)
        + ") THEN RAISE EXCEPTION 'blind index values live in the _alt columns; "
        "rotate the index keys again before downgrading'; END IF; END $$"
    )
    op.execute(
        "ALTER TABLE residents " + ", ".join(f"DROP COLUMN bidx_{name}_alt" for name in NAMES)
    )
