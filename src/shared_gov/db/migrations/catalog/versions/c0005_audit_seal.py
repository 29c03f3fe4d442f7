"""Audit log sealing: per-town sequence numbers, Merkle tree nodes, signed checkpoints.

``audit.events`` is append-only (c0004), so what the sealer assigns goes in
three NEW append-only tables, owned like the events by ``<prefix>_audit``:

- ``audit.leaves``: one row per sealed event — the town's sequence number
  (``seq``, the 0-based leaf index of the town's RFC 6962 tree), the event's
  key, its writing transaction (``xid``: the sealer's resume position) and
  the leaf hash.
- ``audit.nodes``: the hash of every complete perfect subtree (level >= 1;
  level 0 is ``leaves.leaf_hash``), so proofs and appends read O(log n) rows
  instead of rehashing the whole tree.
- ``audit.checkpoints``: a signed (Ed25519) tree head per town and size.

The triggers of c0004 (``audit.protect``) refuse UPDATE, DELETE and TRUNCATE
on all three, for everybody. The platform login role writes them only through
three SECURITY DEFINER functions that check what the database can check
(contiguous sequence numbers, leaves naming existing events of their town,
nodes only for complete subtrees, checkpoints only for the current size); it
never owns them. Tenant roles get nothing here.

Revision ID: c0005
Revises: c0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0005"
down_revision: str | None = "c0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


STATEMENTS: tuple[str, ...] = (
    """
CREATE TABLE audit.leaves (
    tenant char(6) NOT NULL,
    seq bigint NOT NULL CHECK (seq >= 0),
    event_id uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    -- The event's writing transaction: the sealer resumes after the greatest
    -- (xid, occurred_at, event_id) it has sealed.
    xid xid8 NOT NULL,
    leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32),
    PRIMARY KEY (tenant, seq),
    -- An event is sealed once; (tenant, event_id) first for proof look-ups.
    UNIQUE (tenant, event_id, occurred_at)
)
""",
    """
CREATE INDEX leaves_position ON audit.leaves (xid, occurred_at, event_id)
""",
    """
CREATE TABLE audit.nodes (
    tenant char(6) NOT NULL,
    level smallint NOT NULL CHECK (level BETWEEN 1 AND 62),
    -- Node (level, idx) is the root of leaves [idx * 2^level, (idx + 1) * 2^level).
    idx bigint NOT NULL CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (tenant, level, idx)
)
""",
    """
CREATE TABLE audit.checkpoints (
    tenant char(6) NOT NULL,
    tree_size bigint NOT NULL CHECK (tree_size > 0),
    root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
    signed_at timestamptz NOT NULL,
    signature bytea NOT NULL CHECK (octet_length(signature) = 64),
    public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
    PRIMARY KEY (tenant, tree_size)
)
""",
    """
SELECT audit.protect('audit.leaves')
""",
    """
SELECT audit.protect('audit.nodes')
""",
    """
SELECT audit.protect('audit.checkpoints')
""",
    """
-- The sealer's scan: events in (xid, occurred_at, event_id) order.
CREATE INDEX events_seal_order ON audit.events (xid, occurred_at, event_id)
""",
    """
CREATE FUNCTION audit.append_leaves(
    towns text[], seqs bigint[], event_ids uuid[], occurred timestamptz[], hashes bytea[]
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint := cardinality(seqs);
    inserted bigint;
BEGIN
    IF cardinality(towns) <> expected OR cardinality(event_ids) <> expected
       OR cardinality(occurred) <> expected OR cardinality(hashes) <> expected THEN
        RAISE EXCEPTION 'audit.append_leaves: arrays of different lengths';
    END IF;
    -- Each town's new leaves continue its sequence without a gap (the primary
    -- key refuses duplicates, so together: contiguous from 0).
    IF EXISTS (
        SELECT 1
        FROM (SELECT u.t, min(u.s) AS lo, max(u.s) AS hi, count(*) AS n
              FROM unnest(towns, seqs) AS u(t, s) GROUP BY u.t) AS g
        WHERE g.hi - g.lo + 1 <> g.n
           OR g.lo <> COALESCE((SELECT l.seq + 1 FROM audit.leaves AS l
                                WHERE l.tenant = g.t::char(6)
                                ORDER BY l.seq DESC LIMIT 1), 0)
    ) THEN
        RAISE EXCEPTION 'audit leaves must continue each town''s sequence without a gap';
    END IF;
    -- The xid comes from the event itself, and a leaf must name an existing
    -- event of its own town.
    INSERT INTO audit.leaves (tenant, seq, event_id, occurred_at, xid, leaf_hash)
    SELECT e.tenant, u.s, e.event_id, e.occurred_at, e.xid, u.h
    FROM unnest(towns, seqs, event_ids, occurred, hashes) AS u(t, s, id, o, h)
    JOIN audit.events AS e
      ON e.tenant = u.t::char(6) AND e.occurred_at = u.o AND e.event_id = u.id;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted <> expected THEN
        RAISE EXCEPTION 'an audit leaf must name an existing event of its town';
    END IF;
    RETURN inserted;
END $$
""",
    """
CREATE FUNCTION audit.append_nodes(
    towns text[], levels smallint[], idxs bigint[], hashes bytea[]
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint := cardinality(levels);
BEGIN
    IF cardinality(towns) <> expected OR cardinality(idxs) <> expected
       OR cardinality(hashes) <> expected THEN
        RAISE EXCEPTION 'audit.append_nodes: arrays of different lengths';
    END IF;
    -- Only complete subtrees are stored: their last leaf must exist.
    IF EXISTS (
        SELECT 1 FROM unnest(towns, levels, idxs) AS u(t, lv, i)
        WHERE NOT EXISTS (
            SELECT 1 FROM audit.leaves AS l
            WHERE l.tenant = u.t::char(6) AND l.seq = ((u.i + 1) << u.lv) - 1)
    ) THEN
        RAISE EXCEPTION 'an audit tree node must cover sealed leaves only';
    END IF;
    INSERT INTO audit.nodes (tenant, level, idx, hash)
    SELECT u.t, u.lv, u.i, u.h FROM unnest(towns, levels, idxs, hashes) AS u(t, lv, i, h);
    RETURN expected;
END $$
""",
    """
CREATE FUNCTION audit.add_checkpoints(
    towns text[], sizes bigint[], roots bytea[], signed timestamptz[], signatures bytea[],
    keys bytea[]
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint := cardinality(sizes);
BEGIN
    IF cardinality(towns) <> expected OR cardinality(roots) <> expected
       OR cardinality(signed) <> expected OR cardinality(signatures) <> expected
       OR cardinality(keys) <> expected THEN
        RAISE EXCEPTION 'audit.add_checkpoints: arrays of different lengths';
    END IF;
    -- A checkpoint describes the town's tree as it is now: never a size that
    -- is not there yet, never an old size after the fact.
    IF EXISTS (
        SELECT 1 FROM unnest(towns, sizes) AS u(t, n)
        WHERE u.n <> COALESCE((SELECT l.seq + 1 FROM audit.leaves AS l
                               WHERE l.tenant = u.t::char(6)
                               ORDER BY l.seq DESC LIMIT 1), 0)
    ) THEN
        RAISE EXCEPTION 'an audit checkpoint must describe the town''s current tree';
    END IF;
    INSERT INTO audit.checkpoints (tenant, tree_size, root_hash, signed_at, signature, public_key)
    SELECT * FROM unnest(towns, sizes, roots, signed, signatures, keys);
    RETURN expected;
END $$
""",
    """
REVOKE ALL ON FUNCTION audit.append_leaves(text[], bigint[], uuid[], timestamptz[], bytea[])
    FROM PUBLIC
""",
    """
REVOKE ALL ON FUNCTION audit.append_nodes(text[], smallint[], bigint[], bytea[]) FROM PUBLIC
""",
    """
REVOKE ALL ON FUNCTION audit.add_checkpoints(
    text[], bigint[], bytea[], timestamptz[], bytea[], bytea[]) FROM PUBLIC
""",
    """
DO $$
DECLARE
    owner text := current_setting('shared_gov.role_prefix') || '_audit';
BEGIN
    IF owner !~ '^[a-z][a-z0-9_]{0,30}_audit$' THEN
        RAISE EXCEPTION 'bad role prefix';
    END IF;
    EXECUTE format('ALTER TABLE audit.leaves OWNER TO %I', owner);
    EXECUTE format('ALTER TABLE audit.nodes OWNER TO %I', owner);
    EXECUTE format('ALTER TABLE audit.checkpoints OWNER TO %I', owner);
    EXECUTE format('ALTER FUNCTION audit.append_leaves(text[], bigint[], uuid[], '
                   'timestamptz[], bytea[]) OWNER TO %I', owner);
    EXECUTE format('ALTER FUNCTION audit.append_nodes(text[], smallint[], bigint[], bytea[]) '
                   'OWNER TO %I', owner);
    EXECUTE format('ALTER FUNCTION audit.add_checkpoints(text[], bigint[], bytea[], '
                   'timestamptz[], bytea[], bytea[]) OWNER TO %I', owner);
END $$
""",
    """
-- The platform login role (the one running migrations and the service) seals
-- and reads; it never owns. A no-op when that role is a superuser.
GRANT USAGE ON SCHEMA audit TO SESSION_USER
""",
    """
GRANT SELECT ON audit.events, audit.leaves, audit.nodes, audit.checkpoints TO SESSION_USER
""",
    """
GRANT EXECUTE ON FUNCTION
    audit.append_leaves(text[], bigint[], uuid[], timestamptz[], bytea[]),
    audit.append_nodes(text[], smallint[], bigint[], bytea[]),
    audit.add_checkpoints(text[], bigint[], bytea[], timestamptz[], bytea[], bytea[])
TO SESSION_USER
""",
)


def upgrade() -> None:
    # One statement per call: the asyncpg driver prepares each one.
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the audit log is never dropped by a migration")
