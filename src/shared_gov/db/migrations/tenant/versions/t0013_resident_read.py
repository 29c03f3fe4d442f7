"""The town's read function: a resident GET in one round trip (issue #16).

``resident_read(id uuid) RETURNS SETOF residents`` in the town's schema:

- **owned by the town's role** and ``SECURITY DEFINER``: its query runs with
  the town role's privileges, which reach this schema only, exactly what the
  binding (``set_config('role', …)``) gives a transaction. A faulty query
  in it is refused by PostgreSQL as it would be in a bound transaction;
- ``search_path`` pinned to the schema (and ``pg_temp`` last), and the body
  names its table schema-qualified: the function reads this town's table
  whatever the caller's ``search_path``, and even if its owner (the town
  role, in some bound transaction) changed its settings;
- it refuses to run as anyone but the town's role (``current_user``, the
  name frozen in the body): if its ownership or ``SECURITY DEFINER`` is
  changed (a restore without owners, an ``ALTER FUNCTION … SECURITY
  INVOKER`` by the owner), it fails instead of reading with other rights;
- ``STABLE``: PostgreSQL refuses any change of data inside it; and it makes
  the transaction it runs in read-only (``transaction_read_only``) for
  whatever would follow;
- ``EXECUTE`` for the town's role and the migrating login role (the
  service's), nobody else; the town role never keeps ``CREATE`` on its
  schema (lent for the ``ALTER … OWNER``, which needs it, and taken back in
  the same transaction).

The service calls it outside any transaction: the call is its own implicit,
read-only transaction, and the binding, the ``SELECT`` and the ``COMMIT``
(three round trips) become one (``TenantUnitOfWork.call_read``).

Why here, in the platform chain, and not in a branch of the residents domain:
the residents' tables are the platform chain's own (``t0001`` …), and a
function over a table belongs with the table's migrations, in one linear
order (a later change to the table that needs the function changed comes
after it in the same chain). The function returns the table's row type, so
a new column needs no new function; the service picks its columns.

For a schema with no town role in the catalog (a test building bare
schemas), the function is left to the migrating role and refuses every call.

Revision ID: t0013
Revises: t0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0013"
down_revision: str | None = "t0012"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# One DO block (SQL only: a new town's migrations are rendered offline).
# format(): %1$I the schema, %2$L the town role's name ('' when none: no
# current_user is ever '', so the function then refuses every call).
_CREATE = """
DO $do$
DECLARE
    s text := current_schema();
    town_role text;
    login text := current_user;
BEGIN
    SELECT role_name INTO town_role FROM catalog.tenants WHERE schema_name = s;
    IF town_role IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = town_role)
    THEN
        town_role := NULL;
    END IF;
    EXECUTE format($f$
CREATE FUNCTION %1$I.resident_read(p_id uuid) RETURNS SETOF %1$I.residents
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER
SET search_path = %1$I, pg_temp
AS $body$
BEGIN
    IF current_user <> %2$L THEN
        RAISE EXCEPTION 'resident_read runs as its town''s role only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_catalog.set_config('transaction_read_only', 'on', true);
    RETURN QUERY SELECT * FROM %1$I.residents WHERE id = p_id;
END
$body$$f$, s, coalesce(town_role, ''));
    EXECUTE format('REVOKE ALL ON FUNCTION %I.resident_read(uuid) FROM PUBLIC', s);
    IF town_role IS NULL THEN
        RETURN;
    END IF;
    -- ALTER ... OWNER needs the new owner to have CREATE on the schema: lent
    -- for this statement only (the town role never keeps it).
    EXECUTE format('GRANT CREATE ON SCHEMA %I TO %I', s, town_role);
    EXECUTE format('ALTER FUNCTION %I.resident_read(uuid) OWNER TO %I', s, town_role);
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', s, town_role);
    -- The service's login role calls it. Granted as the owner (the login role
    -- is a member of every town role, it SETs them in the binding), so that
    -- it holds whether or not the login role inherits its towns' privileges.
    EXECUTE format('SET LOCAL ROLE %I', town_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.resident_read(uuid) TO %I', s, login);
    EXECUTE format('SET LOCAL ROLE %I', login);
END
$do$
"""


def upgrade() -> None:
    op.execute(_CREATE)


def downgrade() -> None:
    op.execute("DROP FUNCTION resident_read(uuid)")
