"""The schema stays ready for Citus schema-based sharding (docs/scale-out.md).

Checked on the real migrated database: no foreign key between two town
schemas, none from a shared schema into a town schema, every town table has a
primary key (online moves replicate by it), no inheritance or foreign tables
in town schemas.
"""

from __future__ import annotations

from shared_gov.db import Database

# Constraint rows: (referencing schema, table, referenced schema, table, name).
_CROSS_SCHEMA_FKS = """
SELECT src.nspname AS src_schema, srel.relname AS src_table,
       dst.nspname AS dst_schema, drel.relname AS dst_table, c.conname
FROM pg_constraint c
JOIN pg_class srel ON srel.oid = c.conrelid
JOIN pg_namespace src ON src.oid = srel.relnamespace
JOIN pg_class drel ON drel.oid = c.confrelid
JOIN pg_namespace dst ON dst.oid = drel.relnamespace
WHERE c.contype = 'f' AND src.oid <> dst.oid
  AND (src.nspname ~ '^t_[0-9]{6}$' OR dst.nspname ~ '^t_[0-9]{6}$')
"""

_TOWN_TABLES_WITHOUT_PK = """
SELECT n.nspname, r.relname
FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE n.nspname ~ '^t_[0-9]{6}$' AND r.relkind IN ('r', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = r.oid AND c.contype = 'p')
"""

_TOWN_INHERITANCE_OR_FOREIGN = """
SELECT n.nspname, r.relname, r.relkind
FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE n.nspname ~ '^t_[0-9]{6}$'
  AND (r.relkind = 'f'
       OR EXISTS (SELECT 1 FROM pg_inherits i
                  JOIN pg_class p ON p.oid = i.inhparent
                  WHERE (i.inhrelid = r.oid OR i.inhparent = r.oid)
                    AND NOT (p.relkind = 'p' AND p.relnamespace = r.relnamespace)))
"""


async def test_no_foreign_key_crosses_into_or_between_town_schemas(db: Database) -> None:
    async with db.catalog() as conn:
        rows = await conn.fetch(_CROSS_SCHEMA_FKS)
    # A town table may reference a shared (future reference) table; nothing
    # may reference a town table from outside its schema.
    bad = [dict(r) for r in rows if r["dst_schema"].startswith("t_")]
    assert bad == []
    towns = await _towns(db)
    assert towns, "the test database has onboarded towns"


async def test_every_town_table_has_a_primary_key(db: Database) -> None:
    async with db.catalog() as conn:
        rows = await conn.fetch(_TOWN_TABLES_WITHOUT_PK)
    assert [tuple(r) for r in rows] == []


async def test_no_inheritance_or_foreign_tables_in_town_schemas(db: Database) -> None:
    async with db.catalog() as conn:
        rows = await conn.fetch(_TOWN_INHERITANCE_OR_FOREIGN)
    assert [tuple(r) for r in rows] == []


async def _towns(db: Database) -> list[str]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9]{6}$' ORDER BY 1"
        )
    return [r["nspname"] for r in rows]
