"""The demo seeder's writes are accounted for in the audit log.

A fresh ``make run`` demo made ``audit verify`` report about a thousand
history and outbox rows without an event: the seeder registered people in
transactions that recorded none. Each of its transactions now records one
``demo.seed`` event, as an import's load does.
"""

from __future__ import annotations

import io

import asyncpg
from rich.console import Console

from shared_gov.audit.verify import verify_tenant
from shared_gov.db import Database
from shared_gov.domains.residents.demo import seed_town
from tests.conftest import KOMATSU


async def test_a_seeded_town_verifies_without_unmatched_history_or_outbox(db: Database) -> None:
    added = await seed_town(db, KOMATSU, 30, seed=4, progress_console=Console(file=io.StringIO()))
    assert added >= 30
    key = (await db.town_keys(KOMATSU)).audit_mac
    assert key is not None
    conn = await asyncpg.connect(db.url)
    try:
        seeded = await conn.fetchval(
            "SELECT count(*) FROM audit.events WHERE tenant = $1 AND action = 'demo.seed'",
            KOMATSU,
        )
        report = await verify_tenant(
            conn,
            KOMATSU,
            public_key=db.keyring.provider.signing_public_key(KOMATSU),
            mac_key=key,
        )
    finally:
        await conn.close()
    assert seeded >= 1
    kinds = {p.kind for p in report.problems}
    assert not kinds & {"history_without_event", "outbox_without_event"}, report.problems
