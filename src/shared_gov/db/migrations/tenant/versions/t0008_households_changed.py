"""A plain flag for rule 1's "ever filed under another household": ``residents.households_changed``.

Rule 1 (docs/support-measures.md) treats a record as linked to a protected
person when it is, or ever was, filed under a household holding one. The
households a record was filed under before are in its history snapshots,
which are encrypted as a whole; reading them on every resident read cost
two round trips and a decryption per snapshot on the service's hottest path.

``households_changed`` says whether a snapshot of the record may name a
household other than its current one. When it is false (nearly everyone:
the household never changed), the current household is the only one and
the read needs no snapshot. When it is true, the service decrypts the
snapshots as before. It is false only when that is certain:

- **Backfill** (plain columns only: snapshots cannot be decrypted in SQL):
  false only for a record whose history holds no entry other than the one
  with the record's own 履歴番号 (a registration or an import, whose one
  snapshot is the record itself). Everyone else — anyone with an earlier
  entry, whatever its 事由 — is marked changed.
- **On write**, by triggers, so that no write path has to remember it:
  a record whose household number changes (世帯分離 or any other UPDATE);
  a record inserted with a 履歴番号 other than 1 (it arrives with a history
  from elsewhere, e.g. a future import of another system's 履歴); a history
  entry inserted with a number other than the record's own and other than 1
  (a snapshot that is not the record as it now stands). The CSV import and
  registrations write 履歴番号 1 for both, so the triggers' ``WHEN`` clauses
  keep them off the bulk path.

Also a partial index on the households of protected people: the read's
"does my household hold a protected person" test probes it (a handful of
rows) instead of every member of the household.

The flag is no personal value: it says that a household number changed,
not which.

Revision ID: t0008
Revises: t0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0008"
down_revision: str | None = "t0007"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

BACKFILL = (
    "UPDATE residents AS r SET households_changed = true WHERE NOT r.households_changed "
    "AND EXISTS (SELECT FROM resident_history AS h WHERE h.resident_id = r.id "
    "AND h.history_no <> r.history_no)"
)
"""Conservative: any record with an entry other than its own current one is marked."""


def upgrade() -> None:
    # asyncpg runs one statement per execute: one op.execute each.
    # A constant default: no table rewrite (PostgreSQL 11+).
    op.execute("ALTER TABLE residents ADD COLUMN households_changed boolean NOT NULL DEFAULT false")
    op.execute(BACKFILL)
    op.execute(
        "CREATE INDEX residents_protected_household ON residents (household_no) "
        "WHERE support_measure"
    )
    # The functions are created in the town's schema and name its tables with
    # it (no reliance on the caller's search_path); format() quotes the name.
    op.execute(
        """
        DO $$
        BEGIN
            EXECUTE format(
                'CREATE FUNCTION %1$I.residents_mark_households_changed() RETURNS trigger '
                'LANGUAGE plpgsql AS $f$ BEGIN NEW.households_changed := true; '
                'RETURN NEW; END $f$',
                current_schema());
            EXECUTE format(
                'CREATE FUNCTION %1$I.history_mark_households_changed() RETURNS trigger '
                'LANGUAGE plpgsql AS $f$ BEGIN UPDATE %1$I.residents '
                'SET households_changed = true WHERE id = NEW.resident_id '
                'AND history_no <> NEW.history_no AND NOT households_changed; '
                'RETURN NEW; END $f$',
                current_schema());
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER residents_household_moved BEFORE UPDATE OF household_no ON residents "
        "FOR EACH ROW WHEN (NEW.household_no IS DISTINCT FROM OLD.household_no) "
        "EXECUTE FUNCTION residents_mark_households_changed()"
    )
    op.execute(
        "CREATE TRIGGER residents_arrive_with_history BEFORE INSERT ON residents "
        "FOR EACH ROW WHEN (NEW.history_no <> 1) "
        "EXECUTE FUNCTION residents_mark_households_changed()"
    )
    op.execute(
        "CREATE TRIGGER history_not_the_record BEFORE INSERT ON resident_history "
        "FOR EACH ROW WHEN (NEW.history_no <> 1) "
        "EXECUTE FUNCTION history_mark_households_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER history_not_the_record ON resident_history")
    op.execute("DROP TRIGGER residents_arrive_with_history ON residents")
    op.execute("DROP TRIGGER residents_household_moved ON residents")
    op.execute("DROP FUNCTION history_mark_households_changed()")
    op.execute("DROP FUNCTION residents_mark_households_changed()")
    op.execute("DROP INDEX residents_protected_household")
    op.execute("ALTER TABLE residents DROP COLUMN households_changed")
