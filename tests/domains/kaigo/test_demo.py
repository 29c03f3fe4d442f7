"""``make run``'s 介護保険 demo: a seeded town gets facilities, insured persons made
by confirming the consumer's determinations, and an open backlog; the town's log
still verifies."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from rich.console import Console

from shared_gov.audit.verify import verify_tenant
from shared_gov.db import Database
from shared_gov.domains.kaigo import demo
from shared_gov.domains.kaigo.repository import determinations, facilities, insured
from shared_gov.domains.residents.demo import seed_town as seed_residents
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import tenant_names

WAJIMA = "172049"


@pytest.fixture(scope="module")
async def town(db: Database, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    manifest = parse_manifest(
        {
            "code": WAJIMA,
            "name": "輪島市",
            "name_kana": "わじまし",
            "prefecture": "石川県",
            "population": 23_000,
            "departments": [
                {"code": "shimin", "name": "市民課", "purposes": ["juki.registration"]},
                {"code": "kaigo", "name": "介護保険課", "purposes": ["kaigo.qualification"]},
            ],
        }
    )
    await tenancy.onboard(db, manifest)
    yield WAJIMA
    await tenancy.offboard(db, WAJIMA, Path(tmp_path_factory.mktemp("export")))


async def test_the_demo_seeds_facilities_insured_persons_and_a_backlog(
    db: Database, town: str
) -> None:
    quiet = Console(file=io.StringIO())
    await seed_residents(db, town, 150, seed=7, progress_console=quiet)
    added = await demo.seed_town(db, town, 150, seed=7, progress_console=quiet)
    assert added > 0
    names = tenant_names(town, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        assert await insured.count(uow) == added == await demo.count(uow)
        open_ = await determinations.count(uow, "open")
        places = await facilities.every(uow)
    assert 0 < open_ <= demo.BACKLOG + 5  # gains left open (and the odd other kind)
    assert {f.kind for f in places} >= {"roken", "group_home"}
    conn = await asyncpg.connect(db.url)
    try:
        key = (await db.town_keys(town)).audit_mac  # type: ignore[attr-defined]
        report = await verify_tenant(
            conn,
            town,
            public_key=db.keyring.provider.signing_public_key(town),
            mac_key=key,
        )
    finally:
        await conn.close()
    # Every row the seeders wrote is accounted for by an event (the town is too new
    # for the sealer: its onboarding event, written before its audit key, is unsealed).
    kinds = {p.kind for p in report.problems}
    assert not kinds & {"history_without_event", "outbox_without_event", "mac_invalid"}, kinds
