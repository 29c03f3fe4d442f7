"""The sample domain's tables: dogs, with the microchip number encrypted and
blind-indexed, and the register's append-only history.

A branch of its own in the tenant tree (``branch_labels``), joined through the
registry (``DomainSpec.migrations``): the platform's migration folder is not
touched. Envelopes are ``bytea``; the blind index has two columns (odd and
even key versions, see ``crypto.keyring.index_column``).

Revision ID: sample_0001
Revises:
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "sample_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("sample",)
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE dogs (
            id uuid PRIMARY KEY,
            breed text NOT NULL,
            microchip bytea NOT NULL,
            bidx_dog_microchip bigint,
            bidx_dog_microchip_alt bigint,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX dogs_bidx_microchip ON dogs (bidx_dog_microchip)")
    op.execute("CREATE INDEX dogs_bidx_microchip_alt ON dogs (bidx_dog_microchip_alt)")
    # The register's entries (登録原簿), one envelope each: append-only (the
    # spec says so; every upgrade takes UPDATE and DELETE from the town's role).
    op.execute(
        """
        CREATE TABLE dog_history (
            dog_id uuid NOT NULL REFERENCES dogs (id),
            entry_no integer NOT NULL,
            entry bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (dog_id, entry_no)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE dog_history")
    op.execute("DROP TABLE dogs")
