"""Sharing agreements between towns: immutable versions, read by towns through one function.

- ``catalog.agreements`` names the parties once: the providing town, the
  recipient town (or ``*``: every tenant of the deployment, used only by the
  standing agreement for moving residents that onboarding creates) and the
  kind (``bilateral`` or ``standing_move``).
- ``catalog.agreement_versions`` holds every state the agreement was ever in
  (proposed, active, revoked) with its terms; the highest version is the
  agreement now. Rows are never updated or deleted (triggers refuse it), so
  "what did the agreement say when this was read" always has an answer.
- Tenant roles cannot read the catalog. Inside a town's unit of work,
  ``sharing.agreement(id)`` (SECURITY DEFINER) returns the current version of
  an agreement to which the town of the current role is a party, and nothing
  otherwise; it reads the committed state at the moment it is called, which is
  what makes a revocation take effect on the next request.

Revision ID: c0008
Revises: c0007
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0008"
down_revision: str | None = "c0007"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


STATEMENTS: tuple[str, ...] = (
    """
CREATE TABLE catalog.agreements (
    agreement_id uuid PRIMARY KEY,
    provider char(6) NOT NULL REFERENCES catalog.tenants (code),
    recipient text NOT NULL CHECK (recipient ~ '^([0-9]{6}|\\*)$'),
    kind text NOT NULL CHECK (kind IN ('bilateral', 'standing_move')),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (recipient <> provider),
    CHECK ((kind = 'standing_move') = (recipient = '*'))
)
""",
    """
CREATE UNIQUE INDEX agreements_one_standing ON catalog.agreements (provider)
    WHERE kind = 'standing_move'
""",
    """
CREATE INDEX agreements_recipient ON catalog.agreements (recipient)
""",
    """
CREATE TABLE catalog.agreement_versions (
    agreement_id uuid NOT NULL REFERENCES catalog.agreements (agreement_id),
    version integer NOT NULL CHECK (version >= 1),
    status text NOT NULL CHECK (status IN ('proposed', 'active', 'revoked')),
    departments text[] NOT NULL,
    purposes text[] NOT NULL,
    fields text[] NOT NULL,
    actions text[] NOT NULL,
    legal_basis text NOT NULL CHECK (length(legal_basis) BETWEEN 1 AND 500),
    valid_from timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    changed_by text NOT NULL,
    changed_by_tenant char(6),
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (agreement_id, version),
    CHECK (valid_until > valid_from)
)
""",
    """
CREATE FUNCTION catalog.refuse_agreement_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'agreement versions are immutable; add a new version'
        USING ERRCODE = 'insufficient_privilege';
END $$
""",
    """
CREATE TRIGGER agreement_versions_immutable
    BEFORE UPDATE OR DELETE ON catalog.agreement_versions
    FOR EACH ROW EXECUTE FUNCTION catalog.refuse_agreement_change()
""",
    """
CREATE TRIGGER agreement_versions_no_truncate
    BEFORE TRUNCATE ON catalog.agreement_versions
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.refuse_agreement_change()
""",
    """
CREATE SCHEMA sharing
""",
    """
GRANT USAGE ON SCHEMA sharing TO PUBLIC
""",
    """
CREATE FUNCTION sharing.agreement(p_id uuid)
RETURNS TABLE (
    agreement_id uuid, provider text, recipient text, kind text, version integer,
    status text, departments text[], purposes text[], fields text[], actions text[],
    valid_from timestamptz, valid_until timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH caller AS (
        SELECT substring(current_setting('role') from '_t_([0-9]{6})$') AS town
    )
    SELECT a.agreement_id, a.provider::text, a.recipient, a.kind, v.version, v.status,
           v.departments, v.purposes, v.fields, v.actions, v.valid_from, v.valid_until
    FROM caller, catalog.agreements a
    JOIN LATERAL (
        SELECT * FROM catalog.agreement_versions w
        WHERE w.agreement_id = a.agreement_id
        ORDER BY w.version DESC LIMIT 1
    ) v ON true
    WHERE a.agreement_id = p_id
      AND caller.town IS NOT NULL
      AND (caller.town = a.provider::text OR caller.town = a.recipient OR a.recipient = '*')
$$
""",
    """
GRANT EXECUTE ON FUNCTION sharing.agreement(uuid) TO PUBLIC
""",
)


def upgrade() -> None:
    # One statement per call: the asyncpg driver prepares each one.
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("agreements are a legal record; a migration never drops them")
