"""``reseal_envelopes``: the one way a key rotation rewrites an append-only table.

Key jobs reach a town's tables only through the town's unit of work, under
the town's role (DESIGN.md: one way into tenant tables). That role may only
add rows to an append-only table (``resident_history``, and whatever table a
domain declares ``append_only``): it has no UPDATE there. A data-key rotation
must still replace the envelopes such a table holds, so the town's role gets
this one function (SECURITY DEFINER, owned by the role that runs migrations
and owns the town's tables; ``search_path`` pinned; EXECUTE for the town's
role only) and nothing more:

``reseal_envelopes(table, column, rows, envelopes)`` replaces, in the rows
given by ``ctid`` (read by the job in the same transaction: stable while it
lasts, and no knowledge of each table's row id is needed here), one column's
envelopes with new ones. It refuses (raises) unless

- it is called under the town's own role (the town is taken from the role,
  as ``audit.record`` does; a platform connection is refused: the job runs in
  the unit of work);
- ``table.column`` has a data key of this town (it is a declared envelope
  column: never an id, a number, a date or any other plain column) and a
  rotation of that key is in progress (a version in state ``decrypt``);
- the table is one the town's role cannot update itself (append-only);
- every new envelope is well formed (format byte 1, at least header and
  tag) and written with the key's active version;
- the arrays have the same length, no NULLs, at most 10,000 entries;

and it writes only rows whose current envelope is on a version being
drained (other rows are left alone and not counted). It returns the number
of rows written.

Residual (docs/encryption.md): someone able to run SQL as the town's role
can, only while a rotation of that column is draining, replace an entry
still on the old version with bytes of the right header. Without the data
key (which lives in the service's memory, never in the database) that
destroys the entry's content (it no longer decrypts); it cannot forge one
(the envelope's AAD binds town, table, column, row and version), touch any
plain column, delete a row, rewrite a row twice in one rotation, or do
anything outside a rotation. Nor unnoticed: the rotation counts only rows
holding its own envelopes and decrypts every row on the new version before
it retires the old key, naming those that do not decrypt (keys/rotation.py).
A process holding the keys and the login role owns the tables anyway.

Existing towns get the function from ``shared-gov tenants migrate``; a
rotation of an append-only column refuses to start on a town without it.

Revision ID: t0012
Revises: t0011
Create Date: 2026-12-10
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0012"
down_revision: str | None = "t0011"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

SIGNATURE = "reseal_envelopes(text, text, tid[], bytea[])"

# Created in the town's schema (the migration's search_path); the body names
# no schema of its own: the town, its schema and its role come from the
# catalog, looked up by the caller's role. The key version of an envelope is
# bytes 2..5 (crypto/envelope.py), read as keys/ reads it.
_FUNCTION = r"""
CREATE FUNCTION reseal_envelopes(
    p_table text, p_column text, p_rows tid[], p_envelopes bytea[]
) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    town catalog.tenants%ROWTYPE;
    target regclass;
    active integer;
    draining integer[];
    written integer;
BEGIN
    SELECT * INTO town FROM catalog.tenants AS t
    WHERE t.role_name = current_setting('role') AND t.status = 'active';
    IF town.code IS NULL THEN
        RAISE EXCEPTION 'reseal_envelopes is called in a town''s unit of work'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT max(k.version) FILTER (WHERE k.state = 'active'),
           array_agg(k.version) FILTER (WHERE k.state = 'decrypt')
      INTO active, draining
      FROM catalog.data_keys AS k
     WHERE k.tenant_code = town.code AND k.kind = 'dek'
       AND k.name = p_table || '.' || p_column;
    IF active IS NULL THEN
        RAISE EXCEPTION 'not an encrypted column of this town'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF draining IS NULL THEN
        RAISE EXCEPTION 'no rotation of this column is in progress'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    target := to_regclass(format('%I.%I', town.schema_name, p_table));
    IF target IS NULL
       OR (SELECT a.atttypid FROM pg_attribute AS a WHERE a.attrelid = target
           AND a.attname = p_column AND NOT a.attisdropped) IS DISTINCT FROM 'bytea'::regtype THEN
        RAISE EXCEPTION 'not an envelope column' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF has_table_privilege(town.role_name, target, 'UPDATE') THEN
        RAISE EXCEPTION 'the town may update this table itself'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF cardinality(p_rows) IS DISTINCT FROM cardinality(p_envelopes)
       OR cardinality(p_rows) > 10000
       OR array_position(p_rows, NULL) IS NOT NULL
       OR array_position(p_envelopes, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'rows and envelopes do not pair up'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (
        SELECT FROM unnest(p_envelopes) AS e(envelope)
        WHERE CASE WHEN length(e.envelope) < 33 THEN true
                   ELSE get_byte(e.envelope, 0) <> 1
                        OR ('x' || encode(substring(e.envelope from 2 for 4), 'hex'))
                           ::bit(32)::int <> active END
    ) THEN
        RAISE EXCEPTION 'an envelope is not written with the active key'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format(
        'UPDATE %1$I.%2$I AS t SET %3$I = e.envelope '
        'FROM unnest($1, $2) AS e(row_ctid, envelope) '
        'WHERE t.ctid = e.row_ctid AND t.%3$I IS NOT NULL '
        'AND (''x'' || encode(substring(t.%3$I from 2 for 4), ''hex''))::bit(32)::int = ANY($3)',
        town.schema_name, p_table, p_column)
    USING p_rows, p_envelopes, draining;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END $f$
"""


# The town's role, from the catalog (provisioning writes the town's row
# before it migrates a new town's schema).
_GRANT = """
DO $$
DECLARE
    town_role text := (SELECT role_name FROM catalog.tenants
                       WHERE schema_name = current_schema());
BEGIN
    IF town_role IS NOT NULL THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION %I.@SIGNATURE@ TO %I',
                       current_schema(), town_role);
    END IF;
END
$$
""".replace("@SIGNATURE@", SIGNATURE)


def upgrade() -> None:
    op.execute(_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION " + SIGNATURE + " FROM PUBLIC")
    op.execute(_GRANT)


def downgrade() -> None:
    op.execute("DROP FUNCTION " + SIGNATURE)
