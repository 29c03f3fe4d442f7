"""``sharing.agreement`` as a volatile PL/pgSQL function, and ``sharing.agreement_is``.

The SQL-language version is SECURITY DEFINER with its own search_path, so
PostgreSQL can neither inline it nor cache its plan: it was planned on every
cross-town request (~0.5 ms of server CPU, measured by bench/sharing.py).
PL/pgSQL caches the plan of its query per session. Volatile on purpose: in
READ COMMITTED each of its statements takes a fresh snapshot, so the lookup
sees a revocation that committed while the request waited for the
agreement's advisory lock.

Revision ID: c0009
Revises: c0008
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0009"
down_revision: str | None = "c0008"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


STATEMENTS: tuple[str, ...] = (
    """
CREATE OR REPLACE FUNCTION sharing.agreement(p_id uuid)
RETURNS TABLE (
    agreement_id uuid, provider text, recipient text, kind text, version integer,
    status text, departments text[], purposes text[], fields text[], actions text[],
    valid_from timestamptz, valid_until timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    town text := substring(current_setting('role') from '_t_([0-9]{6})$');
BEGIN
    IF town IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT a.agreement_id, a.provider::text, a.recipient, a.kind, v.version, v.status,
           v.departments, v.purposes, v.fields, v.actions, v.valid_from, v.valid_until
    FROM catalog.agreements a
    JOIN LATERAL (
        SELECT * FROM catalog.agreement_versions w
        WHERE w.agreement_id = a.agreement_id
        ORDER BY w.version DESC LIMIT 1
    ) v ON true
    WHERE a.agreement_id = p_id
      AND (town = a.provider::text OR town = a.recipient OR a.recipient = '*');
END $$
""",
    # A worker that cached an agreement's terms checks, inside the binding
    # statement of each cross-town request and after taking the agreement's
    # shared lock, that they are still the current version; a stale cache
    # makes the binding fail (SQLSTATE SGA01) and the worker reads afresh.
    """
CREATE FUNCTION sharing.agreement_is(p_id uuid, p_version integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (SELECT max(v.version) FROM catalog.agreement_versions v WHERE v.agreement_id = p_id)
       IS DISTINCT FROM p_version THEN
        RAISE EXCEPTION 'agreement changed' USING ERRCODE = 'SGA01';
    END IF;
    RETURN true;
END $$
""",
    """
GRANT EXECUTE ON FUNCTION sharing.agreement_is(uuid, integer) TO PUBLIC
""",
)


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("agreements are a legal record; a migration never drops them")
