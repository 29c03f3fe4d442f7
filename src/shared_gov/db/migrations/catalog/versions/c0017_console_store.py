"""The web console's shared store: ``catalog.console_store``.

The console's only state — its server-side sessions and the development
issuer's one-time codes — lived in files under the data directory, which
serve one host. Several hosts behind a load balancer share the database,
so the console keeps them here (``shared_gov.web.store``):

- ``namespace``: the store (``console-sessions``, ``console-codes``);
- ``key_digest``: SHA-256 of the key (a session id, a code). The table
  never holds a cookie's value: a copy of the database signs nobody in;
- ``value``: what the store keeps (a session's principal and times, a
  code's grant; never a token, never a name);
- ``expires_at``: when the row stops counting (the database's clock, the
  same for every host); expired rows are deleted when read and swept from
  time to time (the partial index).

Expand-only (a new table): old workers keep their file stores until they
are replaced; a session started on an old worker is not known to a new one
(its person signs in again).

Revision ID: c0017
Revises: c0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0017"
# Another helper may add a c0017 too; the lead re-chains on merge.
down_revision: str | None = "c0016"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE catalog.console_store (
            namespace text NOT NULL,
            key_digest bytea NOT NULL CHECK (octet_length(key_digest) = 32),
            value bytea NOT NULL,
            expires_at timestamptz,
            PRIMARY KEY (namespace, key_digest)
        )
        """
    )
    op.execute(
        "CREATE INDEX console_store_expiry ON catalog.console_store (expires_at) "
        "WHERE expires_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP TABLE catalog.console_store")
