"""Four-eyes on a town's identity provider: ``catalog.issuer_proposals``.

After enrolment a change of a town's issuer (keys, ``jwks``/``jwks_uri``,
URL, audience, algorithms, claim mappings, or its removal) is a proposal by
one admin that takes effect only when a different admin of the town approves
it (docs/separation-of-duties.md, "Four eyes on identity"). One row per
proposal; at most one is ``pending`` per town (a partial unique index), a new
one replaces it. Rows are kept after the decision (who proposed, who decided,
when): they hold issuer settings and public keys only, never a resident.

- ``kind``: ``replace`` (``config`` holds the proposed issuer) or ``delete``.
- ``base``: the issuer in effect when the proposal was made; an approval is
  refused if the issuer changed since.
- ``digest``: SHA-256 over the proposal's content; the approver names it, so
  nobody approves content other than what they read.
- ``incarnation``: the town's incarnation; a proposal never outlives the town
  it was made in (offboarding and re-onboarding).
- ``proposed_by`` is the proposer's subject as the token carried it; the
  approver must be another person (compared after Unicode normalisation,
  see ``shared_gov.auth.issuers.person_key``).

Expand-only (a new table): safe while old workers serve — but an old worker
still applies a single admin's ``PUT …/issuer`` at once, so four eyes hold
only once every worker runs the new code.

Revision ID: c0013
Revises: c0012
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c0013"
# Another helper may add a c0013 too; the lead re-chains on merge.
down_revision: str | None = "c0012"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.create_table(
        "issuer_proposals",
        sa.Column(
            "id",
            postgresql.UUID(as_uuid=False),
            primary_key=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column(
            "tenant_code", sa.CHAR(6), sa.ForeignKey(f"{SCHEMA}.tenants.code"), nullable=False
        ),
        sa.Column("incarnation", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("config", postgresql.JSONB),
        sa.Column("base", postgresql.JSONB),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("proposed_by", sa.Text, nullable=False),
        sa.Column(
            "proposed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("decided_by", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("kind IN ('replace', 'delete')", name="issuer_proposals_kind"),
        sa.CheckConstraint(
            "(kind = 'replace') = (config IS NOT NULL)", name="issuer_proposals_config"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'withdrawn', 'replaced', "
            "'expired', 'void')",
            name="issuer_proposals_status",
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)", name="issuer_proposals_decided"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "issuer_proposals_one_pending",
        "issuer_proposals",
        ["tenant_code"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("issuer_proposals_one_pending", table_name="issuer_proposals", schema=SCHEMA)
    op.drop_table("issuer_proposals", schema=SCHEMA)
