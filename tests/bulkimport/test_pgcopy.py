"""Binary COPY built column by column (``bulkimport.pgcopy``): PostgreSQL loads exactly
the values the fields encode, NULLs included; the UTF-8 values of a column are the
same on every path."""

from __future__ import annotations

import struct
import uuid
from datetime import date, timedelta

import asyncpg

from shared_gov.bulkimport.pgcopy import (
    BOOL_FIELDS,
    PG_EPOCH,
    copy_data,
    int4_field,
    int8_field,
    text_fields,
    utf8_values,
    uuid_fields,
)
from shared_gov.db import Database
from tests.bulkimport.copyformat import decode_copy

NULL = struct.pack(">i", -1)


async def test_postgresql_loads_what_the_fields_encode(db: Database) -> None:
    rows = 5
    ids = [str(uuid.UUID(int=n * 7919)) for n in range(rows)]
    texts = ["帯広", "", "a,b", 'quote "q"', "line\nbreak"]
    counts = [0, 1, -1, 2**31 - 1, -(2**31)]
    bigs = [0, 2**63 - 1, -(2**63), 42, -42]
    flags = [True, False, True, True, False]
    days = [date(2000, 1, 1), date(1845, 1, 1), date(2026, 12, 31), date(1999, 12, 31), None]
    data = copy_data(
        [
            uuid_fields(ids),
            text_fields(texts),
            [int4_field(n) for n in counts],
            [int8_field(n) for n in bigs],
            [BOOL_FIELDS[f] for f in flags],
            [NULL if d is None else int4_field(d.toordinal() - PG_EPOCH) for d in days],
            [NULL] * rows,
        ],
        rows,
    )
    assert [len(r) for r in decode_copy(data)] == [7] * rows
    conn = await asyncpg.connect(db.url)
    try:
        async with conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE copied (id uuid, t text, n int4, b int8, f bool, d date, "
                "nothing text) ON COMMIT DROP"
            )
            await conn.copy_to_table(
                "copied",
                source=memoryview(data),
                columns=["id", "t", "n", "b", "f", "d", "nothing"],
                format="binary",
            )
            loaded = await conn.fetch("SELECT * FROM copied")
    finally:
        await conn.close()
    assert [tuple(r.values()) for r in loaded] == [
        (uuid.UUID(i), t, n, b, f, d, None)
        for i, t, n, b, f, d in zip(ids, texts, counts, bigs, flags, days, strict=True)
    ]


def test_utf8_values_are_the_same_on_every_path() -> None:
    base = date(1990, 5, 1)
    repeated = [base + timedelta(days=n % 3) for n in range(40)]  # few distinct: cached
    distinct = [base + timedelta(days=n) for n in range(40)]
    with_null = [*distinct[:5], None, *distinct[5:10]]
    for values in (repeated, distinct, with_null, [*repeated[:20], None]):
        expected = [None if v is None else v.isoformat().encode() for v in values]
        assert utf8_values(values, dates=True) == expected
    texts = ["帯広", "", "x"]
    assert utf8_values(texts, dates=False) == [t.encode() for t in texts]
    assert utf8_values([*texts, None], dates=False) == [*(t.encode() for t in texts), None]
