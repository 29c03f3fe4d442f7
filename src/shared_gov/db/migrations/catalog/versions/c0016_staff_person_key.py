"""One staff record per person: ``catalog.staff.person_key``, unique per town.

A review (M-1) found that suspension and "nobody changes their own
permissions" compared staff subjects exactly while four eyes compared them
loosely: a suspended ``e-3`` acting with the subject ``E-3`` was not
suspended, and an admin ``a-0001`` granted itself purposes through
``PUT …/staff/A-0001`` (a second record, read for the token ``a-0001``
nowhere — but one the loose comparison would call the same person). Every
"same person?" decision now uses ``shared_gov.auth.subjects.person_key``, and
this revision makes two records of one person impossible:

- ``person_key`` (text, NOT NULL): the canonical key of ``staff_id``,
  computed by the application (NFKC, case folding, dash look-alikes…; not
  expressible in SQL) and backfilled here for existing rows;
- a unique index on ``(tenant_code, person_key)``: the permission store, the
  administration and four eyes look people up by it.

Rows of one town whose ids fold to one key already (``k-1`` and ``K-1``)
cannot both stay: the upgrade stops and names the town and how many keys
collide (not the ids); a town admin removes the records that should not be
there (``DELETE …/staff/{id}`` while the old version still runs) and the
upgrade is run again. Refusing is safer than merging: a merge would have to
choose between two permissions, and either choice could widen someone's.

Expand-only: old workers keep working, except that their inserts lack the
key — so the column gets no default, and an old worker's ``PUT …/staff``
fails (500) until it is replaced. Deploy this with the code that writes the
key.

Revision ID: c0016
Revises: c0015
Create Date: 2026-12-10
"""

from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared_gov.auth.subjects import person_key

revision: str = "c0016"
# Another helper may add a c0016 too; the lead re-chains on merge.
down_revision: str | None = "c0015"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE catalog.staff ADD COLUMN person_key text")
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT tenant_code, staff_id FROM catalog.staff")).fetchall()
    keys = {(r.tenant_code, r.staff_id): person_key(r.staff_id) for r in rows}
    counts = Counter((town, key) for (town, _), key in keys.items())
    colliding = Counter(town for (town, key), n in counts.items() if n > 1 and key)
    empty = sorted({town for (town, _), key in keys.items() if not key})
    problems = [
        f"town {town}: {n} person key(s) held by more than one staff record"
        for town, n in sorted(colliding.items())
    ] + [f"town {town}: a staff id that names nobody (blank after folding)" for town in empty]
    if problems:
        raise RuntimeError(
            "catalog c0016: staff records of one person must be resolved first "
            "(see the revision's docstring): " + "; ".join(problems)
        )
    for (town, staff_id), key in keys.items():
        bind.execute(
            sa.text(
                "UPDATE catalog.staff SET person_key = :k WHERE tenant_code = :t AND staff_id = :s"
            ),
            {"k": key, "t": town, "s": staff_id},
        )
    op.execute("ALTER TABLE catalog.staff ALTER COLUMN person_key SET NOT NULL")
    op.execute(
        "ALTER TABLE catalog.staff ADD CONSTRAINT staff_person_key_nonempty "
        "CHECK (person_key <> '')"
    )
    op.execute("CREATE UNIQUE INDEX staff_person_key ON catalog.staff (tenant_code, person_key)")


def downgrade() -> None:
    op.execute("DROP INDEX catalog.staff_person_key")
    op.execute("ALTER TABLE catalog.staff DROP COLUMN person_key")
