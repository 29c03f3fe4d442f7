"""Rule 1 as a closure, stored: ``household_memberships`` and ``residents.protection_linked``.

Rule 1 (docs/support-measures.md) withholds the whereabouts of everyone
*linked* to a person under 支援措置. Linked means: in the same connected
component of the graph "person —(ever filed under)— household". The
reviewers showed that looking one step away (the record's current household,
and the households in its own history) is not enough: a protected person who
splits off leaves the household they shared behind (F1); a child who split
off shares their new household with people registered later (F2).

What this revision stores, all plain (ids, household numbers, booleans: no
personal value):

- ``household_memberships(resident_id, household_no)``: households a
  resident was filed under *besides* the one ``residents.household_no``
  names now (that edge is read from the record itself, so registrations and
  the CSV import write nothing here). A trigger adds the old and new
  household whenever ``household_no`` changes (世帯分離 or any other UPDATE).
- ``residents.protection_linked``: the record's component holds a *seed*
  (below). Recomputed by the residents domain under the town's linkage lock
  in the transaction of every write that can change it; the read path only
  reads it (no round trip, no decryption).
- ``residents.protection_carried``: a seed carried by a one-stop move-in
  from another town where the person was linked (F3).
- ``residents.households_unknown``: a seed until ``shared-gov residents
  relink`` has read the record's history. Past households of records that
  changed household before this revision are only in their history
  snapshots, encrypted as a whole: a migration cannot read them. Until the
  relink step decrypts them, such a record counts as linked, and so does its
  component (conservative: over-withholding, never a leak). The same flag is
  set by triggers for a record arriving with a history from elsewhere
  (履歴番号 other than 1) and a history entry that is not the record as it
  stands (the t0008 cases whose household cannot be seen in SQL).

A seed is a record with ``support_measure`` (in any state: a protected
person who moved out still tells where the family lives), or
``protection_carried``, or ``households_unknown``. The heads of households
(``households.head_id``) are edges too (an index serves that direction).

Backfill: memberships cannot be backfilled (see above); every record with
``households_changed`` (t0008) gets ``households_unknown``; then flags are
computed for the whole town from the seeds, in SQL.

Revision ID: t0011
Revises: t0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0011"
down_revision: str | None = "t0010"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# The people of a household (filed now, filed before, or heading it) and the
# households of a person; the same texts as the repository's closure
# (shared_gov.domains.residents.repository.CLOSURE_SQL), frozen here as a
# migration must be.
_PEOPLE_OF = (
    "SELECT r.id AS rid FROM residents AS r WHERE r.household_no = reach.hno "
    "UNION ALL SELECT m.resident_id FROM household_memberships AS m "
    "WHERE m.household_no = reach.hno "
    "UNION ALL SELECT h.head_id FROM households AS h "
    "WHERE h.household_no = reach.hno AND h.head_id IS NOT NULL"
)
_HOUSEHOLDS_OF = (
    "SELECT r.household_no AS hno FROM residents AS r WHERE r.id = person.rid "
    "UNION ALL SELECT m.household_no FROM household_memberships AS m "
    "WHERE m.resident_id = person.rid "
    "UNION ALL SELECT h.household_no FROM households AS h WHERE h.head_id = person.rid"
)
BACKFILL_UNKNOWN = "UPDATE residents SET households_unknown = true WHERE households_changed"
"""Conservative: whoever may have changed household has unknown past households."""
BACKFILL_LINKED = (
    "WITH RECURSIVE reach(hno) AS ("  # noqa: S608 - fixed texts
    "SELECT household_no FROM residents "
    "WHERE support_measure OR protection_carried OR households_unknown "
    f"UNION SELECT nxt.hno FROM reach CROSS JOIN LATERAL ({_PEOPLE_OF}) AS person "
    f"CROSS JOIN LATERAL ({_HOUSEHOLDS_OF}) AS nxt), "
    "people AS (SELECT DISTINCT person.rid FROM reach "
    f"CROSS JOIN LATERAL ({_PEOPLE_OF}) AS person) "
    "UPDATE residents SET protection_linked = (id IN (SELECT rid FROM people)) "
    "WHERE protection_linked IS DISTINCT FROM (id IN (SELECT rid FROM people))"
)
"""Every record whose component holds a seed is linked; every other is not."""


def upgrade() -> None:
    # asyncpg runs one statement per execute: one op.execute each.
    op.execute(
        "CREATE TABLE household_memberships ("
        "resident_id uuid NOT NULL, household_no text NOT NULL, "
        "PRIMARY KEY (resident_id, household_no))"
    )
    op.execute(
        "CREATE INDEX household_memberships_household ON household_memberships (household_no)"
    )
    op.execute("CREATE INDEX households_head ON households (head_id)")
    # Constant defaults: no table rewrite (PostgreSQL 11+).
    op.execute(
        "ALTER TABLE residents ADD COLUMN protection_linked boolean NOT NULL DEFAULT false, "
        "ADD COLUMN protection_carried boolean NOT NULL DEFAULT false, "
        "ADD COLUMN households_unknown boolean NOT NULL DEFAULT false"
    )
    # The functions are created in the town's schema and name its tables with
    # it (no reliance on the caller's search_path); format() quotes the name.
    op.execute(
        """
        DO $$
        BEGIN
            EXECUTE format(
                'CREATE FUNCTION %1$I.residents_record_membership() RETURNS trigger '
                'LANGUAGE plpgsql AS $f$ BEGIN '
                'INSERT INTO %1$I.household_memberships (resident_id, household_no) '
                'VALUES (NEW.id, OLD.household_no), (NEW.id, NEW.household_no) '
                'ON CONFLICT DO NOTHING; RETURN NEW; END $f$',
                current_schema());
            EXECUTE format(
                'CREATE FUNCTION %1$I.residents_mark_households_unknown() RETURNS trigger '
                'LANGUAGE plpgsql AS $f$ BEGIN NEW.households_unknown := true; '
                'NEW.protection_linked := true; RETURN NEW; END $f$',
                current_schema());
            EXECUTE format(
                'CREATE FUNCTION %1$I.history_mark_households_unknown() RETURNS trigger '
                'LANGUAGE plpgsql AS $f$ BEGIN UPDATE %1$I.residents '
                'SET households_unknown = true, protection_linked = true '
                'WHERE id = NEW.resident_id AND history_no <> NEW.history_no '
                'AND NOT households_unknown; RETURN NEW; END $f$',
                current_schema());
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER residents_household_membership AFTER UPDATE OF household_no ON residents "
        "FOR EACH ROW WHEN (NEW.household_no IS DISTINCT FROM OLD.household_no) "
        "EXECUTE FUNCTION residents_record_membership()"
    )
    # A record or entry whose households SQL cannot see (an encrypted history
    # from elsewhere): linked at once, itself; its component at the next
    # recomputation or relink (docs/support-measures.md, "Loading history").
    op.execute(
        "CREATE TRIGGER residents_arrive_unknown BEFORE INSERT ON residents "
        "FOR EACH ROW WHEN (NEW.history_no <> 1) "
        "EXECUTE FUNCTION residents_mark_households_unknown()"
    )
    op.execute(
        "CREATE TRIGGER history_unknown_households BEFORE INSERT ON resident_history "
        "FOR EACH ROW WHEN (NEW.history_no <> 1) "
        "EXECUTE FUNCTION history_mark_households_unknown()"
    )
    op.execute(BACKFILL_UNKNOWN)
    op.execute(BACKFILL_LINKED)


def downgrade() -> None:
    op.execute("DROP TRIGGER history_unknown_households ON resident_history")
    op.execute("DROP TRIGGER residents_arrive_unknown ON residents")
    op.execute("DROP TRIGGER residents_household_membership ON residents")
    op.execute("DROP FUNCTION history_mark_households_unknown()")
    op.execute("DROP FUNCTION residents_mark_households_unknown()")
    op.execute("DROP FUNCTION residents_record_membership()")
    op.execute(
        "ALTER TABLE residents DROP COLUMN households_unknown, "
        "DROP COLUMN protection_carried, DROP COLUMN protection_linked"
    )
    op.execute("DROP INDEX households_head")
    op.execute("DROP TABLE household_memberships")
