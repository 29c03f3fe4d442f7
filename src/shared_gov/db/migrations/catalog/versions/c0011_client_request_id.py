"""Audit: ``client_request_id``, the request id a CLIENT chose, kept apart.

``request_id`` was whatever a client sent in ``X-Request-ID``: a caller could
give its requests another request's id, and an auditor correlating an event
with the service's log lines would follow the client's word. The service now
always generates ``request_id`` itself; a client's own id (printable ASCII,
at most 64 characters; anything else is dropped) is stored only in this new
column, which says by its name who chose it.

The leaf of an event covers ``client_request_id`` when it is not null (the
canonical form gains the key only then, see docs/audit.md), so every event
written before this revision keeps its hash.

``CREATE OR REPLACE`` keeps the function's owner and the towns' EXECUTE grants.

Revision ID: c0011
Revises: c0010
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0011"
down_revision: str | None = "c0010"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


_COLUMN = "ALTER TABLE audit.events ADD COLUMN client_request_id text"

_RECORD = """
CREATE OR REPLACE FUNCTION audit.record(e jsonb) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    town text := substring(current_setting('role') from '_t_([0-9]{6})$');
    id uuid := gen_random_uuid();
    -- Every column decoded at once; only the ones named below are used.
    r audit.events := jsonb_populate_record(NULL::audit.events, e);
BEGIN
    IF town IS NULL THEN
        RAISE EXCEPTION 'audit.record is called inside a town''s unit of work'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO audit.events (
        event_id, tenant, occurred_at, request_id, actor, actor_tenant, department, roles,
        auth_strength, client_addr, user_agent, action, resource_type, subjects, fields,
        rows_returned, individual_number, purpose, agreement_id, outcome, reason, policy_ids,
        client_request_id)
    VALUES (
        id, town, clock_timestamp(), r.request_id, r.actor, r.actor_tenant, r.department,
        COALESCE(r.roles, '{}'), r.auth_strength, r.client_addr, r.user_agent, r.action,
        r.resource_type, COALESCE(r.subjects, '{}'), COALESCE(r.fields, '{}'),
        COALESCE((e->>'rows')::int, 0), COALESCE(r.individual_number, false), r.purpose,
        r.agreement_id, r.outcome, r.reason, COALESCE(r.policy_ids, '{}'),
        r.client_request_id);
    RETURN id;
END $$
"""


def upgrade() -> None:
    # One statement per call: the asyncpg driver prepares each one.
    op.execute(_COLUMN)
    op.execute(_RECORD)


def downgrade() -> None:
    raise RuntimeError("the audit log is never narrowed by a migration")
