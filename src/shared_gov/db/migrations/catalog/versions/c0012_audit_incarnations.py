"""Audit log per incarnation of a town: re-onboarding a code starts a new log.

A town's log survives its offboarding (DESIGN.md, "Audit log"). When the same
code is onboarded again, that is a new town: new keys, new staff, a new log.
Before this revision its events continued the old tree under a new signing
key, so ``audit verify`` failed on every old checkpoint for ever, and the new
town's auditors saw the old town's events.

- ``catalog.tenants.incarnation`` (1 for every existing town) is raised by one
  when an offboarded code is onboarded again.
- ``audit.events``, ``audit.leaves``, ``audit.nodes`` and ``audit.checkpoints``
  gain ``incarnation`` (default 1, so every existing row is incarnation 1 and
  keeps its place); sequence numbers, nodes and checkpoints are keyed by
  ``(tenant, incarnation, …)``: each incarnation is a tree of its own.
- ``audit.record(jsonb)`` reads the town's incarnation itself (a primary-key
  look-up inside the SECURITY DEFINER function; the caller cannot choose it,
  and no request pays a round trip for it). The audit role may read only the
  ``code`` and ``incarnation`` columns of the catalog's tenants.
- The sealing functions take the incarnation of every leaf, node and
  checkpoint (a trailing argument; NULL means each town's current one). A
  checkpoint is refused for any incarnation but the town's current one: a past
  incarnation's signing key is destroyed, and no later key may sign for it.
- ``audit.incarnation_keys``: the public signing key of an incarnation that
  ended, recorded by offboarding before the private key is destroyed, so its
  checkpoints stay verifiable. Append-only like the rest of the log.

Revision ID: c0012
Revises: c0011
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0012"
# The lead re-chains this if another catalog revision lands before it.
down_revision: str | None = "c0011"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


_RECORD = """
CREATE OR REPLACE FUNCTION audit.record(e jsonb) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    town text := substring(current_setting('role') from '_t_([0-9]{6})$');
    id uuid := gen_random_uuid();
    inc integer;
    -- Every column decoded at once; only the ones named below are used.
    r audit.events := jsonb_populate_record(NULL::audit.events, e);
BEGIN
    IF town IS NULL THEN
        RAISE EXCEPTION 'audit.record is called inside a town''s unit of work'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The town's current incarnation, never the caller's word.
    SELECT t.incarnation INTO inc FROM catalog.tenants AS t WHERE t.code = town::char(6);
    INSERT INTO audit.events (
        event_id, tenant, occurred_at, request_id, actor, actor_tenant, department, roles,
        auth_strength, client_addr, user_agent, action, resource_type, subjects, fields,
        rows_returned, individual_number, purpose, agreement_id, outcome, reason, policy_ids,
        client_request_id, incarnation)
    VALUES (
        id, town, clock_timestamp(), r.request_id, r.actor, r.actor_tenant, r.department,
        COALESCE(r.roles, '{}'), r.auth_strength, r.client_addr, r.user_agent, r.action,
        r.resource_type, COALESCE(r.subjects, '{}'), COALESCE(r.fields, '{}'),
        COALESCE((e->>'rows')::int, 0), COALESCE(r.individual_number, false), r.purpose,
        r.agreement_id, r.outcome, r.reason, COALESCE(r.policy_ids, '{}'),
        r.client_request_id, COALESCE(inc, 1));
    RETURN id;
END $$
"""

# Each town's current incarnation, in the order of ``towns`` (1 for a code the
# catalog does not know).
_CURRENT = (
    "ARRAY(SELECT COALESCE(t.incarnation, 1) FROM unnest(towns) WITH ORDINALITY AS u(code, o) "
    "LEFT JOIN catalog.tenants AS t ON t.code = u.code::char(6) ORDER BY u.o)"
)

_APPEND_LEAVES = """
CREATE FUNCTION audit.append_leaves(
    towns text[], seqs bigint[], event_ids uuid[], occurred timestamptz[], hashes bytea[],
    incs integer[] DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint := cardinality(seqs);
    inserted bigint;
BEGIN
    IF incs IS NULL THEN
        incs := @CURRENT@;
    END IF;
    IF cardinality(towns) <> expected OR cardinality(event_ids) <> expected
       OR cardinality(occurred) <> expected OR cardinality(hashes) <> expected
       OR cardinality(incs) <> expected THEN
        RAISE EXCEPTION 'audit.append_leaves: arrays of different lengths';
    END IF;
    -- Each log's (town and incarnation) new leaves continue its sequence
    -- without a gap (the primary key refuses duplicates: contiguous from 0).
    IF EXISTS (
        SELECT 1
        FROM (SELECT u.t, u.i, min(u.s) AS lo, max(u.s) AS hi, count(*) AS n
              FROM unnest(towns, incs, seqs) AS u(t, i, s) GROUP BY u.t, u.i) AS g
        WHERE g.hi - g.lo + 1 <> g.n
           OR g.lo <> COALESCE((SELECT l.seq + 1 FROM audit.leaves AS l
                                WHERE l.tenant = g.t::char(6) AND l.incarnation = g.i
                                ORDER BY l.seq DESC LIMIT 1), 0)
    ) THEN
        RAISE EXCEPTION 'audit leaves must continue each town''s sequence without a gap';
    END IF;
    -- The xid comes from the event itself, and a leaf must name an existing
    -- event of its own town and incarnation.
    INSERT INTO audit.leaves (tenant, incarnation, seq, event_id, occurred_at, xid, leaf_hash)
    SELECT e.tenant, e.incarnation, u.s, e.event_id, e.occurred_at, e.xid, u.h
    FROM unnest(towns, incs, seqs, event_ids, occurred, hashes) AS u(t, i, s, id, o, h)
    JOIN audit.events AS e
      ON e.tenant = u.t::char(6) AND e.occurred_at = u.o AND e.event_id = u.id
     AND e.incarnation = u.i;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted <> expected THEN
        RAISE EXCEPTION 'an audit leaf must name an existing event of its town';
    END IF;
    RETURN inserted;
END $$
"""

_APPEND_NODES = """
CREATE FUNCTION audit.append_nodes(
    towns text[], levels smallint[], idxs bigint[], hashes bytea[], incs integer[] DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint := cardinality(levels);
BEGIN
    IF incs IS NULL THEN
        incs := @CURRENT@;
    END IF;
    IF cardinality(towns) <> expected OR cardinality(idxs) <> expected
       OR cardinality(hashes) <> expected OR cardinality(incs) <> expected THEN
        RAISE EXCEPTION 'audit.append_nodes: arrays of different lengths';
    END IF;
    -- Only complete subtrees are stored: their last leaf must exist.
    IF EXISTS (
        SELECT 1 FROM unnest(towns, incs, levels, idxs) AS u(t, i, lv, x)
        WHERE NOT EXISTS (
            SELECT 1 FROM audit.leaves AS l
            WHERE l.tenant = u.t::char(6) AND l.incarnation = u.i
              AND l.seq = ((u.x + 1) << u.lv) - 1)
    ) THEN
        RAISE EXCEPTION 'an audit tree node must cover sealed leaves only';
    END IF;
    INSERT INTO audit.nodes (tenant, incarnation, level, idx, hash)
    SELECT u.t, u.i, u.lv, u.x, u.h
    FROM unnest(towns, incs, levels, idxs, hashes) AS u(t, i, lv, x, h);
    RETURN expected;
END $$
"""

_ADD_CHECKPOINTS = """
CREATE FUNCTION audit.add_checkpoints(
    towns text[], sizes bigint[], roots bytea[], signed timestamptz[], signatures bytea[],
    keys bytea[], incs integer[] DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint := cardinality(sizes);
BEGIN
    IF incs IS NULL THEN
        incs := @CURRENT@;
    END IF;
    IF cardinality(towns) <> expected OR cardinality(roots) <> expected
       OR cardinality(signed) <> expected OR cardinality(signatures) <> expected
       OR cardinality(keys) <> expected OR cardinality(incs) <> expected THEN
        RAISE EXCEPTION 'audit.add_checkpoints: arrays of different lengths';
    END IF;
    -- Only the town's current incarnation is signed: a past incarnation's key
    -- is destroyed, and the key of a later one must never vouch for it.
    IF EXISTS (
        SELECT 1 FROM unnest(towns, incs) AS u(t, i)
        WHERE u.i IS DISTINCT FROM COALESCE(
            (SELECT c.incarnation FROM catalog.tenants AS c WHERE c.code = u.t::char(6)), 1)
    ) THEN
        RAISE EXCEPTION 'an audit checkpoint is signed for the town''s current incarnation only';
    END IF;
    -- A checkpoint describes the log as it is now: never a size that is not
    -- there yet, never an old size after the fact.
    IF EXISTS (
        SELECT 1 FROM unnest(towns, incs, sizes) AS u(t, i, n)
        WHERE u.n <> COALESCE((SELECT l.seq + 1 FROM audit.leaves AS l
                               WHERE l.tenant = u.t::char(6) AND l.incarnation = u.i
                               ORDER BY l.seq DESC LIMIT 1), 0)
    ) THEN
        RAISE EXCEPTION 'an audit checkpoint must describe the town''s current tree';
    END IF;
    INSERT INTO audit.checkpoints (
        tenant, incarnation, tree_size, root_hash, signed_at, signature, public_key)
    SELECT * FROM unnest(towns, incs, sizes, roots, signed, signatures, keys);
    RETURN expected;
END $$
"""

_APPEND_LEAVES = _APPEND_LEAVES.replace("@CURRENT@", _CURRENT)
_APPEND_NODES = _APPEND_NODES.replace("@CURRENT@", _CURRENT)
_ADD_CHECKPOINTS = _ADD_CHECKPOINTS.replace("@CURRENT@", _CURRENT)

_SIGNATURES = (
    "audit.append_leaves(text[], bigint[], uuid[], timestamptz[], bytea[], integer[])",
    "audit.append_nodes(text[], smallint[], bigint[], bytea[], integer[])",
    "audit.add_checkpoints(text[], bigint[], bytea[], timestamptz[], bytea[], bytea[], integer[])",
)

STATEMENTS: tuple[str, ...] = (
    """
ALTER TABLE catalog.tenants
    ADD COLUMN incarnation integer NOT NULL DEFAULT 1 CHECK (incarnation >= 1)
""",
    # A constant default: no table rewrite, no row trigger fires.
    "ALTER TABLE audit.events ADD COLUMN incarnation integer NOT NULL DEFAULT 1",
    "ALTER TABLE audit.leaves ADD COLUMN incarnation integer NOT NULL DEFAULT 1",
    "ALTER TABLE audit.nodes ADD COLUMN incarnation integer NOT NULL DEFAULT 1",
    "ALTER TABLE audit.checkpoints ADD COLUMN incarnation integer NOT NULL DEFAULT 1",
    """
ALTER TABLE audit.leaves DROP CONSTRAINT leaves_pkey,
    ADD PRIMARY KEY (tenant, incarnation, seq)
""",
    """
ALTER TABLE audit.nodes DROP CONSTRAINT nodes_pkey,
    ADD PRIMARY KEY (tenant, incarnation, level, idx)
""",
    """
ALTER TABLE audit.checkpoints DROP CONSTRAINT checkpoints_pkey,
    ADD PRIMARY KEY (tenant, incarnation, tree_size)
""",
    """
CREATE TABLE audit.incarnation_keys (
    tenant char(6) NOT NULL,
    incarnation integer NOT NULL CHECK (incarnation >= 1),
    public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant, incarnation)
)
""",
    "SELECT audit.protect('audit.incarnation_keys')",
    "DROP FUNCTION audit.append_leaves(text[], bigint[], uuid[], timestamptz[], bytea[])",
    "DROP FUNCTION audit.append_nodes(text[], smallint[], bigint[], bytea[])",
    "DROP FUNCTION audit.add_checkpoints("
    "text[], bigint[], bytea[], timestamptz[], bytea[], bytea[])",
    _APPEND_LEAVES,
    _APPEND_NODES,
    _ADD_CHECKPOINTS,
    *(f"REVOKE ALL ON FUNCTION {s} FROM PUBLIC" for s in _SIGNATURES),
    f"""
DO $$
DECLARE
    owner text := current_setting('shared_gov.role_prefix') || '_audit';
BEGIN
    IF owner !~ '^[a-z][a-z0-9_]{{0,30}}_audit$' THEN
        RAISE EXCEPTION 'bad role prefix';
    END IF;
    EXECUTE format('ALTER TABLE audit.incarnation_keys OWNER TO %I', owner);
    EXECUTE format('ALTER FUNCTION {_SIGNATURES[0]} OWNER TO %I', owner);
    EXECUTE format('ALTER FUNCTION {_SIGNATURES[1]} OWNER TO %I', owner);
    EXECUTE format('ALTER FUNCTION {_SIGNATURES[2]} OWNER TO %I', owner);
    -- The audit role's functions read a town's incarnation, nothing else.
    EXECUTE format('GRANT USAGE ON SCHEMA catalog TO %I', owner);
    EXECUTE format('GRANT SELECT (code, incarnation) ON catalog.tenants TO %I', owner);
END $$
""",
    _RECORD,
    # After the owner changes (as c0005/c0006): the platform login role seals,
    # reads and records an ended incarnation's key. No-ops for a superuser.
    "GRANT SELECT, INSERT ON audit.incarnation_keys TO SESSION_USER",
    f"GRANT EXECUTE ON FUNCTION {', '.join(_SIGNATURES)} TO SESSION_USER",
)


def upgrade() -> None:
    # One statement per call: the asyncpg driver prepares each one.
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the audit log is never narrowed by a migration")
