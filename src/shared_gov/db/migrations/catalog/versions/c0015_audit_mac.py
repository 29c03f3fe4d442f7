"""Audit pipeline v2: events MACed by the application and chained per writer.

A database superuser can step around the triggers that keep ``audit.events``
append-only (``session_replication_role = replica``). The Merkle tree and the
signed checkpoints catch every change to a *sealed* event, but not an event
forged or deleted before the sealer reached it (review finding M2). This
revision stores what the application vouches for, so that ``audit verify``
can tell:

- ``mac``: HMAC-SHA256 of the event's content (everything the application
  said, with its id and town), under the town's audit key. The key is a
  per-town data key of kind ``amac`` in ``catalog.data_keys``, stored only
  wrapped by the town's KEK (the key provider, an HSM where configured):
  neither the database nor its superuser can compute a MAC.
- ``writer``, ``wseq``, ``prev_mac``: the chain of the process's audit
  writer that wrote the event (group-committed reads and refusals): per
  writer and town, sequence numbers 0, 1, 2, … and each event's MAC covering
  the previous one's. A forged event has no valid MAC; a dropped one breaks
  its chain. Events written inside a write's own transaction have no chain
  (their transactions commit in any order); ``audit verify`` cross-checks
  them against the town's history rows and outbox events instead.
- ``event_id`` may now come from the caller (the application needs it in
  the MAC); ``gen_random_uuid()`` when absent, as before.
- ``audit.record_many(jsonb)``: the writer's batch, one INSERT for all of a
  town's pending events. Like ``audit.record`` it takes the town from the
  caller's role (the writer binds each town's role in turn within its one
  batch transaction), so no town can write into another town's log.

Revision ID: c0015
Revises: c0014
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0015"
# The lead re-chains this if another catalog revision lands before it.
down_revision: str | None = "c0014"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_COLUMNS = (
    "event_id, tenant, occurred_at, request_id, actor, actor_tenant, department, roles, "
    "auth_strength, client_addr, user_agent, action, resource_type, subjects, fields, "
    "rows_returned, individual_number, purpose, agreement_id, outcome, reason, policy_ids, "
    "client_request_id, incarnation, mac, writer, wseq, prev_mac"
)

_VALUES = """
        COALESCE(r.event_id, gen_random_uuid()), town, clock_timestamp(), r.request_id, r.actor,
        r.actor_tenant, r.department, COALESCE(r.roles, '{}'), r.auth_strength, r.client_addr,
        r.user_agent, r.action, r.resource_type, COALESCE(r.subjects, '{}'),
        COALESCE(r.fields, '{}'), COALESCE((e->>'rows')::int, 0),
        COALESCE(r.individual_number, false), r.purpose, r.agreement_id, r.outcome, r.reason,
        COALESCE(r.policy_ids, '{}'), r.client_request_id, COALESCE(inc, 1), r.mac, r.writer,
        r.wseq, r.prev_mac"""

_RECORD = """
CREATE OR REPLACE FUNCTION audit.record(e jsonb) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    town text := substring(current_setting('role') from '_t_([0-9]{6})$');
    inc integer;
    id uuid;
    -- Every column decoded at once; only the ones named below are used.
    r audit.events := jsonb_populate_record(NULL::audit.events, e);
BEGIN
    IF town IS NULL THEN
        RAISE EXCEPTION 'audit.record is called inside a town''s unit of work'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The town's current incarnation, never the caller's word.
    SELECT t.incarnation INTO inc FROM catalog.tenants AS t WHERE t.code = town::char(6);
    INSERT INTO audit.events (@COLUMNS@)
    VALUES (@VALUES@)
    RETURNING event_id INTO id;
    RETURN id;
END $$
"""

_RECORD_MANY = """
CREATE FUNCTION audit.record_many(es jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    town text := substring(current_setting('role') from '_t_([0-9]{6})$');
    inc integer;
    n integer;
BEGIN
    IF town IS NULL THEN
        RAISE EXCEPTION 'audit.record_many is called under a town''s role'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT t.incarnation INTO inc FROM catalog.tenants AS t WHERE t.code = town::char(6);
    -- In the array's order, so that each row's clock_timestamp() follows
    -- its chain's sequence.
    INSERT INTO audit.events (@COLUMNS@)
    SELECT @VALUES@
    FROM jsonb_array_elements(es) WITH ORDINALITY AS a(e, o),
         LATERAL jsonb_populate_record(NULL::audit.events, a.e) AS r
    ORDER BY a.o;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$
"""

_RECORD = _RECORD.replace("@COLUMNS@", _COLUMNS).replace("@VALUES@", _VALUES)
_RECORD_MANY = _RECORD_MANY.replace("@COLUMNS@", _COLUMNS).replace("@VALUES@", _VALUES)

STATEMENTS: tuple[str, ...] = (
    # Nullable, no default: no table rewrite, no row trigger fires. Events
    # written before this revision (or before the town's key existed) have none.
    "ALTER TABLE audit.events ADD COLUMN mac bytea, ADD COLUMN writer uuid, "
    "ADD COLUMN wseq bigint, ADD COLUMN prev_mac bytea",
    _RECORD,
    _RECORD_MANY,
    "REVOKE ALL ON FUNCTION audit.record_many(jsonb) FROM PUBLIC",
    """
DO $$
DECLARE
    owner text := current_setting('shared_gov.role_prefix') || '_audit';
    r record;
BEGIN
    IF owner !~ '^[a-z][a-z0-9_]{0,30}_audit$' THEN
        RAISE EXCEPTION 'bad role prefix';
    END IF;
    EXECUTE format('ALTER FUNCTION audit.record_many(jsonb) OWNER TO %I', owner);
    -- Existing towns may record batches; new towns get the grant at provisioning.
    FOR r IN SELECT role_name FROM catalog.tenants WHERE status = 'active' LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.role_name) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION audit.record_many(jsonb) TO %I',
                           r.role_name);
        END IF;
    END LOOP;
END $$
""",
    # The town's audit MAC key is a data key of its own kind.
    "ALTER TABLE catalog.data_keys DROP CONSTRAINT data_keys_kind",
    "ALTER TABLE catalog.data_keys ADD CONSTRAINT data_keys_kind "
    "CHECK (kind IN ('dek', 'bidx', 'amac'))",
)


def upgrade() -> None:
    # One statement per call: the asyncpg driver prepares each one.
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the audit log is never narrowed by a migration")
