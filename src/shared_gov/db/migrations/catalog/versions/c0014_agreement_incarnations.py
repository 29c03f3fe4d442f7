"""Agreements and one-stop moves are made with an incarnation of a town, not its code.

A hostile review (C1) found that a sharing agreement outlived the town that
made it: the operator offboarded a recipient town, onboarded the same code
again, enrolled it with an identity provider of their own, and read the
provider town's residents under the old agreement. Offboarding now revokes
every agreement the town is party to (``tenancy/service.py``); this revision
makes "an agreement belongs to the incarnation that made it" hold in the
database too, so that nothing a past incarnation agreed can apply to a new one:

- ``catalog.agreements`` gains ``provider_incarnation`` and
  ``recipient_incarnation`` (NULL for the standing agreement's ``*``): the
  parties' incarnations when the agreement was proposed.
- ``sharing.agreement(id)`` answers (either party, a cross-town request reads
  it in both towns' units of work) only while both parties are the
  incarnations that made the agreement: a revocation that was somehow missed
  still cannot reach a re-created town, nor let anyone read for it; and
  ``sharing.agreement_is`` (the check of cached terms) fails when either
  party's incarnation changed, as it does for a new version.
- One standing move agreement per provider *incarnation*: a re-created town
  gets a new one (a new id) instead of its predecessor's.
- ``sharing.town_incarnation(code)``: the current incarnation of an active
  town, NULL otherwise, for the towns' roles (which cannot read the catalog).
  A move-out records its destination's incarnation with it (tenant t0010).
- Existing agreements in force with an offboarded party, or made before a
  party's current incarnation began (its first audit event), are revoked by a
  new version (``changed_by`` ``migration c0014``): the state a correct
  offboarding would have left. Not in the towns' logs (a migration has no
  actor and an offboarded town no role); the version rows are the record.

Revision ID: c0014
Revises: c0013
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0014"
# The lead re-chains this if another catalog revision lands before it.
down_revision: str | None = "c0013"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# When the current incarnation of a town began: its first event in its log
# (onboarding records tenant.create in the provisioning transaction).
_STARTED = (
    "(SELECT min(e.occurred_at) FROM audit.events AS e "
    "WHERE e.tenant = {t}.code AND e.incarnation = {t}.incarnation)"
)

STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE catalog.agreements ADD COLUMN provider_incarnation integer",
    "ALTER TABLE catalog.agreements ADD COLUMN recipient_incarnation integer",
    # Revoke first what no longer binds anybody (see the module docstring).
    f"""
INSERT INTO catalog.agreement_versions (agreement_id, version, status, departments, purposes,
    fields, actions, legal_basis, valid_from, valid_until, changed_by, changed_by_tenant)
SELECT v.agreement_id, v.version + 1, 'revoked', v.departments, v.purposes, v.fields, v.actions,
       v.legal_basis, v.valid_from, v.valid_until, 'migration c0014', NULL
FROM catalog.agreements AS a
JOIN LATERAL (
    SELECT * FROM catalog.agreement_versions AS w
    WHERE w.agreement_id = a.agreement_id ORDER BY w.version DESC LIMIT 1
) AS v ON true
JOIN catalog.tenants AS p ON p.code = a.provider
LEFT JOIN catalog.tenants AS r ON a.recipient <> '*' AND r.code = a.recipient::char(6)
WHERE v.status <> 'revoked'
  AND (p.status <> 'active'
       OR (a.recipient <> '*' AND (r.code IS NULL OR r.status <> 'active'))
       OR (a.kind = 'bilateral' AND a.created_at < {_STARTED.format(t="p")})
       OR (a.kind = 'bilateral' AND a.created_at < {_STARTED.format(t="r")}))
""",  # noqa: S608 - constant fragments
    # Every agreement still standing belongs to its parties' current incarnations.
    """
UPDATE catalog.agreements AS a
SET provider_incarnation = (SELECT t.incarnation FROM catalog.tenants AS t
                            WHERE t.code = a.provider),
    recipient_incarnation = (SELECT t.incarnation FROM catalog.tenants AS t
                             WHERE a.recipient <> '*' AND t.code = a.recipient::char(6))
""",
    "ALTER TABLE catalog.agreements ALTER COLUMN provider_incarnation SET NOT NULL",
    """
ALTER TABLE catalog.agreements ADD CONSTRAINT agreements_recipient_incarnation
    CHECK ((recipient = '*') = (recipient_incarnation IS NULL))
""",
    "DROP INDEX catalog.agreements_one_standing",
    """
CREATE UNIQUE INDEX agreements_one_standing
    ON catalog.agreements (provider, provider_incarnation) WHERE kind = 'standing_move'
""",
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
    JOIN catalog.tenants p ON p.code = a.provider AND p.incarnation = a.provider_incarnation
    JOIN LATERAL (
        SELECT * FROM catalog.agreement_versions w
        WHERE w.agreement_id = a.agreement_id
        ORDER BY w.version DESC LIMIT 1
    ) v ON true
    WHERE a.agreement_id = p_id
      AND (town = a.provider::text OR town = a.recipient OR a.recipient = '*')
      -- Whichever party asks: both must be the incarnations that made it.
      AND (a.recipient = '*' OR a.recipient_incarnation = (
               SELECT r.incarnation FROM catalog.tenants r
               WHERE r.code = a.recipient::char(6)));
END $$
""",
    # The cached-terms check of every cross-town request (c0009): a change of
    # either party's incarnation makes cached terms stale as a new version does.
    """
CREATE OR REPLACE FUNCTION sharing.agreement_is(p_id uuid, p_version integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (SELECT max(v.version) FROM catalog.agreement_versions v WHERE v.agreement_id = p_id)
       IS DISTINCT FROM p_version
       OR NOT EXISTS (
           SELECT 1 FROM catalog.agreements a
           JOIN catalog.tenants p ON p.code = a.provider AND p.incarnation = a.provider_incarnation
           WHERE a.agreement_id = p_id
             AND (a.recipient = '*' OR a.recipient_incarnation = (
                      SELECT r.incarnation FROM catalog.tenants r
                      WHERE r.code = a.recipient::char(6))))
    THEN
        RAISE EXCEPTION 'agreement changed' USING ERRCODE = 'SGA01';
    END IF;
    RETURN true;
END $$
""",
    """
CREATE FUNCTION sharing.town_incarnation(p_code text) RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.incarnation FROM catalog.tenants AS t
    WHERE p_code ~ '^[0-9]{6}$' AND t.code = p_code::char(6) AND t.status = 'active'
$$
""",
    "GRANT EXECUTE ON FUNCTION sharing.town_incarnation(text) TO PUBLIC",
)


def upgrade() -> None:
    # One statement per call: the asyncpg driver prepares each one.
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("agreements are a legal record; a migration never drops them")
