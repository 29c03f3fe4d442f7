"""Residents' personal fields encrypted per field, with blind indexes.

Every personal column becomes ``bytea`` holding an AES-256-GCM envelope
(format | key version | nonce | ciphertext+tag, see shared_gov.crypto);
equality search uses truncated HMAC blind indexes. History snapshots are one
encrypted JSON document per entry.

PRE-RELEASE DATA RESET: the plaintext layout of t0001–t0003 never held real
data (synthetic demo towns only), and plaintext cannot be encrypted in SQL,
so this revision drops resident rows instead of converting them. ``make
run`` re-seeds empty demo towns. Real registers arrive through ``shared-gov
residents import`` onto this layout.

Revision ID: t0004
Revises: t0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "t0004"
down_revision: str | None = "t0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

ENCRYPTED = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
    "address",
    "postal_code",
    "individual_number",
    "juminhyo_code",
    "phone",
    "former_surname",
    "domicile",
    "previous_address",
    "forward_address",
    "relationship",
    "resident_type",
    # Record dates are personal too: for a birth they equal the birth date,
    # for a death the removal date is the date of death.
    "resident_since",
    "address_since",
    "notified_on",
    "removed_on",
)
REQUIRED = {
    "resident_since",
    "address_since",
    "notified_on",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
    "address",
    "relationship",
    "resident_type",
}
BLIND = ("bidx_individual_number", "bidx_kana_birth", "bidx_phone", "bidx_juminhyo_code")


def upgrade() -> None:
    op.drop_table("resident_history")
    op.drop_table("residents")
    op.execute("DELETE FROM households")
    op.create_table(
        "residents",
        sa.Column("id", pg.UUID, primary_key=True),
        sa.Column("atena_no", sa.Text, nullable=False, unique=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column(
            "household_no",
            sa.Text,
            sa.ForeignKey("households.household_no"),
            nullable=False,
        ),
        *[sa.Column(name, sa.LargeBinary, nullable=name not in REQUIRED) for name in ENCRYPTED],
        *[sa.Column(name, sa.BigInteger) for name in BLIND],
        sa.Column("history_no", sa.Integer, nullable=False),
        sa.Column("support_measure", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "state IN ('active', 'moved_out', 'deceased', 'removed')", name="residents_state"
        ),
    )
    for name in BLIND:
        op.create_index(f"residents_{name}", "residents", [name])
    op.create_index("residents_household", "residents", ["household_no"])
    op.create_table(
        "resident_history",
        sa.Column("resident_id", pg.UUID, sa.ForeignKey("residents.id"), primary_key=True),
        sa.Column("history_no", sa.Integer, primary_key=True),
        # 異動事由, 異動日 and 届出日 are encrypted (a birth's 異動日 is the birth
        # date); 処理日 and the recording time are the platform's own metadata.
        sa.Column("reason", sa.LargeBinary, nullable=False),
        sa.Column("move_date", sa.LargeBinary, nullable=False),
        sa.Column("notified_on", sa.LargeBinary, nullable=False),
        sa.Column("processed_on", sa.Date, nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("snapshot", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    raise RuntimeError("t0004 encrypts resident storage; there is no way back to plaintext")
