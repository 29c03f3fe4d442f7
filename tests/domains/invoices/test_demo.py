"""``make run``'s invoice demo: suppliers, units, invoices in every state, a rejected
one with its report, an export — filed through the same checks and workflow as the API."""

from __future__ import annotations

from collections import Counter

import httpx
import msgspec

from shared_gov.db import Database
from shared_gov.domains.invoices import demo
from shared_gov.domains.invoices import repository as repo
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import load_manifest
from tests.conftest import TENANTS_DIR

from .conftest import bearer, manifest, names_of

DEMO_TOWN = "132306"


async def test_the_demo_shows_every_state_a_rejection_and_an_export(
    api: httpx.AsyncClient, app: object, db: Database, issuer: object
) -> None:
    await tenancy.onboard(db, manifest(DEMO_TOWN))
    await app.state.services.registry.refresh()  # type: ignore[attr-defined]
    filed = await demo.seed_town(db, DEMO_TOWN, 0, 0)
    assert filed == 8
    async with db.catalog() as conn:
        # The purposes came with the manifest: the demo granted nothing (no admin change).
        changes = await conn.fetchval(
            "SELECT count(*) FROM audit.events WHERE tenant = $1 AND action = 'admin.department'",
            DEMO_TOWN,
        )
    assert changes == 0
    assert await demo.seed_town(db, DEMO_TOWN, 0, 0) == 0  # once
    schema = names_of(db, DEMO_TOWN).schema
    async with db.pool.acquire() as conn:
        states = Counter(
            r["state"] for r in await conn.fetch(f'SELECT state FROM "{schema}".invoices')
        )
        rejected = await conn.fetch(
            f'SELECT report FROM "{schema}".invoice_submissions WHERE NOT accepted'
        )
        exports = await conn.fetchval(f'SELECT count(*) FROM "{schema}".invoice_exports')
    assert set(states) == {
        "received",
        "checked",
        "inspected",
        "approved",
        "payment_ordered",
        "paid",
        "returned",
    }
    assert len(rejected) == 2  # tax rounded per line; a non-registered seller to 水道事業
    assert exports == 1
    async with db.tenant(names_of(db, DEMO_TOWN)) as uow:
        assert (await repo.verify(uow)).problems == []
        target, purpose = await demo.sample(uow)
    token = issuer.mint(  # type: ignore[attr-defined]
        subject="staff-kaikei", tenant=DEMO_TOWN, department="kaikei", roles=["staff"]
    )
    r = await api.get(f"/api/v1/tenants/{DEMO_TOWN}/{target}", headers=bearer(token, purpose))
    assert r.status_code == 200, r.text
    assert {u["code"] for u in r.json()} == {"ippan", "suido"}


def test_the_shipped_manifests_grant_what_the_invoice_demo_acts_under() -> None:
    """``make run``'s towns get the invoice purposes from ``tenants/*.toml`` at
    onboarding, as they get the residents' (the demo grants nothing)."""
    paths = sorted(TENANTS_DIR.glob("*.toml"))
    assert paths
    for path in paths:
        granted = {d.code: set(d.purposes) for d in load_manifest(path).departments}
        for department, (_name, wanted) in demo.GRANTS.items():
            assert set(wanted) <= granted.get(department, set()), (path.name, department)


async def test_a_town_without_the_grants_is_told_not_granted(db: Database) -> None:
    """A town onboarded before its manifest granted them: the demo names what is missing."""
    bare = msgspec.structs.replace(
        manifest("132314"),
        departments=[d for d in manifest("132314").departments if d.code != "doboku"],
    )
    await tenancy.onboard(db, bare)
    assert await demo.missing_grants(db, "132314") == [
        "doboku: invoices.inspection",
        "doboku: invoices.approval.1",
    ]
