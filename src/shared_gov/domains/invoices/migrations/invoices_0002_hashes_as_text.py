"""Hashes and MACs as hex text: in a town's schema ``bytea`` means an envelope.

The platform holds every ``bytea`` column of a town to be a declared
encrypted column (``tests/domains/test_registry.py``; a dump scanned for
plaintext relies on it). The SHA-256s, the ledger's digests and MACs are
not envelopes: they become lowercase hex ``text``.

Revision ID: invoices_0002
Revises: invoices_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "invoices_0002"
down_revision: str | None = "invoices_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_COLUMNS = (
    ("invoice_submissions", "sha256"),
    ("invoices", "sha256"),
    ("invoice_ledger", "digest"),
    ("invoice_ledger", "mac"),
    ("invoice_exports", "sha256"),
)


def upgrade() -> None:
    for table, column in _COLUMNS:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING encode({column}, 'hex')"
        )


def downgrade() -> None:
    for table, column in _COLUMNS:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea USING decode({column}, 'hex')"
        )
