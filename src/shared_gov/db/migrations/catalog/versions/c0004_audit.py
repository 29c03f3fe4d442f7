"""Audit log: append-only, partitioned by month, owned by a role the app cannot become.

- ``audit.events`` is owned by ``<prefix>_audit`` (NOLOGIN). The service's
  login role is not a member, so it cannot become the owner; it may only
  call ``audit.record(jsonb)``, a SECURITY DEFINER function that stamps the
  server time and takes the town from the caller's tenant role (so no town
  can write into another town's log).
- Triggers refuse UPDATE and DELETE (row) and TRUNCATE (statement; row
  triggers do not fire on it), on the parent and on every partition.
- Tenant roles cannot read the log; auditors' queries run as the platform
  role with an explicit town filter.

Revision ID: c0004
Revises: c0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0004"
down_revision: str | None = "c0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


STATEMENTS: tuple[str, ...] = (
    """
DO $$
DECLARE
    owner text := current_setting('shared_gov.role_prefix') || '_audit';
BEGIN
    IF owner !~ '^[a-z][a-z0-9_]{0,30}_audit$' THEN
        RAISE EXCEPTION 'bad role prefix';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = owner) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', owner);
    END IF;
    EXECUTE format('CREATE SCHEMA audit AUTHORIZATION %I', owner);
END $$
""",
    """
CREATE TABLE audit.events (
    event_id uuid NOT NULL,
    tenant char(6) NOT NULL,
    occurred_at timestamptz NOT NULL,
    -- The writing transaction: the sealer only takes events whose transaction
    -- is older than every transaction still running (late commits are not skipped).
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    request_id text,
    actor text,
    actor_tenant text,
    department text,
    roles text[] NOT NULL DEFAULT '{}',
    auth_strength text,
    client_addr text,
    user_agent text,
    action text NOT NULL,
    resource_type text NOT NULL,
    subjects bigint[] NOT NULL DEFAULT '{}',
    fields text[] NOT NULL DEFAULT '{}',
    rows_returned integer NOT NULL DEFAULT 0,
    individual_number boolean NOT NULL DEFAULT false,
    purpose text,
    agreement_id text,
    outcome text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'not_found', 'error')),
    reason text,
    policy_ids text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, occurred_at, event_id)
) PARTITION BY RANGE (occurred_at)
""",
    """
CREATE TABLE audit.events_default PARTITION OF audit.events DEFAULT
""",
    """
CREATE INDEX events_tenant_time ON audit.events (tenant, occurred_at)
""",
    """
CREATE INDEX events_subjects ON audit.events USING gin (subjects)
""",
    """
CREATE FUNCTION audit.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
""",
    """
CREATE FUNCTION audit.protect(target regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER no_update_delete BEFORE UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION audit.refuse()', target);
    EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse()', target);
END $$
""",
    """
-- Monthly partitions, each protected like the parent.
CREATE FUNCTION audit.ensure_month(month date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    name text := format('events_%s', to_char(first, 'YYYY_MM'));
BEGIN
    IF to_regclass('audit.' || name) IS NULL THEN
        EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.events '
                       'FOR VALUES FROM (%L) TO (%L)', name, first,
            (first + interval '1 month')::date);
        EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON audit.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse()', name);
    END IF;
END $$
""",
    """
-- Row triggers on the parent are cloned to partitions; TRUNCATE triggers are not.
CREATE TRIGGER no_update_delete BEFORE UPDATE OR DELETE ON audit.events
    FOR EACH ROW EXECUTE FUNCTION audit.refuse()
""",
    """
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON audit.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse()
""",
    """
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON audit.events_default
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse()
""",
    """
SELECT audit.ensure_month((now() + make_interval(months => m))::date)
FROM generate_series(-1, 12) AS m
""",
    """
CREATE FUNCTION audit.record(e jsonb) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    town text := substring(current_setting('role') from '_t_([0-9]{6})$');
    id uuid := gen_random_uuid();
BEGIN
    IF town IS NULL THEN
        RAISE EXCEPTION 'audit.record is called inside a town''s unit of work'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO audit.events (
        event_id, tenant, occurred_at, request_id, actor, actor_tenant, department, roles,
        auth_strength, client_addr, user_agent, action, resource_type, subjects, fields,
        rows_returned, individual_number, purpose, agreement_id, outcome, reason, policy_ids)
    VALUES (
        id, town, clock_timestamp(), e->>'request_id', e->>'actor', e->>'actor_tenant',
        e->>'department', ARRAY(SELECT jsonb_array_elements_text(COALESCE(e->'roles', '[]'))),
        e->>'auth_strength', e->>'client_addr', e->>'user_agent', e->>'action',
        e->>'resource_type',
        ARRAY(SELECT (jsonb_array_elements_text(COALESCE(e->'subjects', '[]')))::bigint),
        ARRAY(SELECT jsonb_array_elements_text(COALESCE(e->'fields', '[]'))),
        COALESCE((e->>'rows')::int, 0), COALESCE((e->>'individual_number')::boolean, false),
        e->>'purpose', e->>'agreement_id', e->>'outcome', e->>'reason',
        ARRAY(SELECT jsonb_array_elements_text(COALESCE(e->'policy_ids', '[]'))));
    RETURN id;
END $$
""",
    """
REVOKE ALL ON FUNCTION audit.record(jsonb) FROM PUBLIC
""",
    """
REVOKE ALL ON SCHEMA audit FROM PUBLIC
""",
    """
DO $$
DECLARE
    owner text := current_setting('shared_gov.role_prefix') || '_audit';
    r record;
BEGIN
    EXECUTE format('ALTER TABLE audit.events OWNER TO %I', owner);
    EXECUTE format('ALTER FUNCTION audit.record(jsonb) OWNER TO %I', owner);
    -- Existing towns may record; new towns get the grant at provisioning.
    FOR r IN SELECT role_name FROM catalog.tenants WHERE status = 'active' LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.role_name) THEN
            EXECUTE format('GRANT USAGE ON SCHEMA audit TO %I', r.role_name);
            EXECUTE format('GRANT EXECUTE ON FUNCTION audit.record(jsonb) TO %I', r.role_name);
        END IF;
    END LOOP;
END $$
""",
)


def upgrade() -> None:
    # One statement per call: the asyncpg driver prepares each one.
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the audit log is never dropped by a migration")
