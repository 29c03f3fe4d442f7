"""The sample domain end to end: a domain that exists only in the tests, built from
its own folder and one registration line, goes through every pillar.

Installed (``registry.install``), a town is onboarded and migrated (its table
from its own revision folder), its records are created, read and searched over
HTTP through the guarded entry (real JWTs, real Cedar with its own policy and
purpose, real PostgreSQL), refused by policy (403 with the reason, audited),
audited with its record type and hashed subjects, its data keys (its
append-only history's too) and its blind index key are rotated while it still
reads and searches, and offboarding exports its records. docs/adding-a-domain.md points here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar

from shared_gov import errors, messages
from shared_gov.app import create_app
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.crypto.keyring import index_column
from shared_gov.db import Database
from shared_gov.db.migrations.runner import head
from shared_gov.domains import registry
from shared_gov.keys.index_rotation import rotate_index
from shared_gov.keys.rotation import rotate_dek
from shared_gov.settings import Settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, auth
from tests.domains.sample import repository
from tests.domains.sample.spec import SPEC

KAGOSHIMA = "462012"
"""Onboarded with the domain installed: migrated from nothing."""
KANOYA = "462039"
"""Onboarded before the domain is installed, then upgraded: the domain's branch
joins an existing town's tree."""
PURPOSE = "sample.dogs"
CHIP = "392141000123456"


def _manifest(code: str, *, dogs: bool = True) -> Any:
    departments: list[dict[str, Any]] = [
        {"code": "shimin", "name": "市民課", "purposes": ["juki.registration"]}
    ]
    if dogs:
        # A purpose the domain brought from its own purposes.toml.
        departments.append({"code": "seikatsu", "name": "生活環境課", "purposes": [PURPOSE]})
    return parse_manifest(
        {
            "code": code,
            "name": f"テスト市{code}",
            "name_kana": "てすとし",
            "prefecture": "鹿児島県",
            "population": 5_000,
            "departments": departments,
        }
    )


async def _leave(db: Database, code: str, folder: Path) -> None:
    """Offboard ``code`` unless a test did: no town of this module outlives it
    (a later ``migrate`` would find revisions of a domain no longer installed)."""
    async with db.catalog() as conn:
        status = await conn.fetchval("SELECT status FROM catalog.tenants WHERE code = $1", code)
    if status == "active":
        await tenancy.offboard(db, code, folder)


@pytest.fixture(scope="module")
async def older_town(db: Database, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A town that exists before the domain is installed."""
    await tenancy.onboard(db, _manifest(KANOYA, dogs=False))
    yield KANOYA
    await _leave(db, KANOYA, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def installed(older_town: str) -> Iterator[None]:
    # The one registration line (a real domain's is its line in
    # shared_gov.domains.INSTALLED).
    registry.install(SPEC)
    yield
    registry.uninstall(SPEC)


@pytest.fixture(scope="module")
async def dog_app(settings: Settings, installed: None) -> Litestar:
    """The app as it is built with the domain installed (routes, policies, purposes)."""
    assert settings.database_url
    return create_app(settings, settings.database_url)


@pytest.fixture(scope="module")
async def dog_client(dog_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with dog_app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    await started.wait()
    transport = httpx.ASGITransport(app=dog_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c
    stop.set()
    await task


@pytest.fixture(scope="module")
async def town(
    db: Database,
    dog_app: Litestar,
    dog_client: httpx.AsyncClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    await tenancy.onboard(db, _manifest(KAGOSHIMA))
    await dog_app.state.services.registry.refresh()
    yield KAGOSHIMA
    await _leave(db, KAGOSHIMA, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def staff(dog_app: Litestar, dog_client: httpx.AsyncClient) -> dict[str, str]:
    issuer: BuiltinIssuer = dog_app.state.services.issuer
    return {
        "seikatsu": issuer.mint(
            subject="d-0001", tenant=KAGOSHIMA, department="seikatsu", roles=["staff"]
        ),
        "shimin": issuer.mint(
            subject="d-0002", tenant=KAGOSHIMA, department="shimin", roles=["staff"], mfa=True
        ),
        "kaga": issuer.mint(
            subject="k-0001", tenant=KAGA, department="shimin", roles=["staff"], mfa=True
        ),
    }


@pytest.fixture(scope="module")
async def dog(dog_client: httpx.AsyncClient, town: str, staff: dict[str, str]) -> dict[str, Any]:
    r = await dog_client.post(
        f"/api/v1/tenants/{town}/dogs",
        json={"breed": "柴犬", "microchip": CHIP},
        headers=auth(staff["seikatsu"], PURPOSE),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _events(db: Database, tenant: str, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2 "
            "ORDER BY occurred_at",
            tenant,
            request_id,
        )
    return [dict(r) for r in rows]


async def _subject(db: Database, tenant: str, record_id: str) -> int:
    return (await db.town_keys(tenant)).index("audit_subject", record_id)


async def _fetch(db: Database, query: str, *args: Any) -> list[Any]:
    async with db.pool.acquire() as conn:
        return list(await conn.fetch(query, *args))


# --- onboarded and migrated ---------------------------------------------------------


def _other_heads() -> set[str]:
    """The heads a town has without the sample domain (the platform's, other domains')."""
    return set(tenancy.tenant_head().split("+")) - {"sample_0001"}


async def test_onboarding_migrates_the_domains_table_from_its_own_folder(
    db: Database, town: str
) -> None:
    schema = tenant_names(town, db.settings.role_prefix).schema
    versions = await _fetch(db, f'SELECT version_num FROM "{schema}".alembic_version')
    platform = head("tenant")  # the platform's own head, whatever its latest revision is
    others = _other_heads()  # the platform's and every really installed domain's
    assert platform in others
    assert {r["version_num"] for r in versions} == {"sample_0001", *others}
    (row,) = await _fetch(db, "SELECT schema_revision FROM catalog.tenants WHERE code = $1", town)
    assert row["schema_revision"] == tenancy.tenant_head()
    assert row["schema_revision"] == "+".join(sorted({"sample_0001", *others}))
    columns = await _fetch(
        db,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = 'dogs'",
        schema,
    )
    assert {(c["column_name"], c["data_type"]) for c in columns} >= {
        ("microchip", "bytea"),
        ("bidx_dog_microchip", "bigint"),
        ("bidx_dog_microchip_alt", "bigint"),
    }
    # Keys were provisioned for the declared column and index.
    keys = await _fetch(
        db,
        "SELECT kind, name FROM catalog.data_keys WHERE tenant_code = $1 AND state = 'active'",
        town,
    )
    assert {("dek", "dogs.microchip"), ("bidx", "dog_microchip")} <= {
        (k["kind"], k["name"]) for k in keys
    }


async def test_an_existing_town_is_upgraded_to_the_domains_branch_and_gets_its_keys(
    db: Database, older_town: str, installed: None
) -> None:
    """What ``shared-gov tenants migrate`` does for each town that is behind
    (here for this one town only: the session's other towns stay as they are)."""
    names = tenant_names(older_town, db.settings.role_prefix)
    (before,) = await _fetch(
        db, "SELECT schema_revision FROM catalog.tenants WHERE code = $1", older_town
    )
    others = _other_heads()
    assert before["schema_revision"] == "+".join(sorted(others))  # behind the sample's head
    with pytest.raises(errors.NotFound):  # no key for the domain's column yet: no way in
        async with db.tenant(names):
            pass
    assert await tenancy.upgrade_town(db, older_town) == tenancy.tenant_head()
    assert "sample_0001" in tenancy.tenant_head()
    tables = await _fetch(db, "SELECT tablename FROM pg_tables WHERE schemaname = $1", names.schema)
    assert "dogs" in {t["tablename"] for t in tables}
    async with db.tenant(names) as uow:
        assert await uow.fetchval("SELECT count(*) FROM dogs") == 0
    assert await tenancy.provision_keys(db, older_town) == 0  # idempotent


# --- through the guarded entry -------------------------------------------------------


async def test_created_read_and_searched_over_http(
    dog_client: httpx.AsyncClient, db: Database, town: str, staff: dict[str, str], dog: Any
) -> None:
    assert dog["microchip"] == CHIP
    assert dog["breed"] == "柴犬"
    read = await dog_client.get(
        f"/api/v1/tenants/{town}/dogs/{dog['id']}",
        headers=auth(staff["seikatsu"], PURPOSE, **{"X-Request-ID": "dog-read-1"}),
    )
    assert read.status_code == 200, read.text
    assert read.json()["microchip"] == CHIP
    found = await dog_client.post(
        f"/api/v1/tenants/{town}/dogs/search",
        json={"microchip": CHIP},
        headers=auth(staff["seikatsu"], PURPOSE),
    )
    assert found.status_code == 200, found.text
    assert [d["id"] for d in found.json()["dogs"]] == [dog["id"]]
    # At rest: an envelope and a keyed hash, never the number.
    schema = tenant_names(town, db.settings.role_prefix).schema
    (row,) = await _fetch(db, f'SELECT * FROM "{schema}".dogs WHERE id = $1::uuid', dog["id"])
    assert CHIP.encode() not in bytes(row["microchip"])
    assert row["bidx_dog_microchip"] is not None


async def test_its_own_messages_answer_in_japanese(
    dog_client: httpx.AsyncClient, town: str, staff: dict[str, str]
) -> None:
    """The domain's catalogue, listed in its spec, is read by the pillars: its 404
    says "no such dog" by default and its Japanese sentence under ``ja``."""
    url = f"/api/v1/tenants/{town}/dogs/00000000-0000-4000-8000-000000000000"
    h = auth(staff["seikatsu"], PURPOSE)
    en = await dog_client.get(url, headers=h)
    ja = await dog_client.get(url, headers={**h, "Accept-Language": "ja"})
    assert (en.status_code, en.json()["detail"]) == (404, "no such dog")
    assert (ja.status_code, ja.json()["detail"]) == (404, "該当する犬は登録されていません")
    assert ja.headers["content-language"] == "ja"
    assert messages.lookup("sample.no_dog") is not None
    assert "sample" in [c.name for c in messages.catalogues()]


async def test_the_audit_event_carries_the_record_type_and_a_hashed_subject(
    dog_client: httpx.AsyncClient, db: Database, town: str, staff: dict[str, str], dog: Any
) -> None:
    r = await dog_client.get(
        f"/api/v1/tenants/{town}/dogs/{dog['id']}",
        headers=auth(staff["seikatsu"], PURPOSE, **{"X-Request-ID": "dog-audit-1"}),
    )
    assert r.status_code == 200
    (e,) = await _events(db, town, "dog-audit-1")
    assert e["action"] == "dog.read"
    assert e["resource_type"] == "dog"
    assert e["outcome"] == "allowed"
    assert e["purpose"] == PURPOSE
    assert e["department"] == "seikatsu"
    assert e["fields"] == ["Dog.microchip"]
    assert e["rows_returned"] == 1
    assert e["subjects"] == [await _subject(db, town, dog["id"])]
    flat = repr(e)
    assert CHIP not in flat
    assert dog["id"] not in flat


# --- denied by policy ------------------------------------------------------------------


async def test_a_purpose_not_granted_to_the_department_is_refused_and_audited(
    dog_client: httpx.AsyncClient, db: Database, town: str, staff: dict[str, str]
) -> None:
    """市民課 staff stating the dog purpose: their department has not been granted it."""
    r = await dog_client.post(
        f"/api/v1/tenants/{town}/dogs",
        json={"breed": "秋田犬", "microchip": "392141000999999"},
        headers=auth(staff["shimin"], PURPOSE, **{"X-Request-ID": "dog-deny-1"}),
    )
    assert r.status_code == 403
    reason = "purpose sample.dogs is not granted to this staff member (department shimin)"
    assert r.json()["reason"] == reason
    (e,) = await _events(db, town, "dog-deny-1")
    assert (e["action"], e["resource_type"], e["outcome"]) == ("dog.register", "dog", "denied")
    assert e["reason"] == reason
    assert "392141000999999" not in repr(e)


async def test_a_purpose_that_does_not_cover_the_record_is_refused_and_audited(
    dog_client: httpx.AsyncClient, db: Database, town: str, staff: dict[str, str], dog: Any
) -> None:
    """The residents' registration purpose, granted, names no field of a dog."""
    r = await dog_client.get(
        f"/api/v1/tenants/{town}/dogs/{dog['id']}",
        headers=auth(staff["shimin"], "juki.registration", **{"X-Request-ID": "dog-deny-2"}),
    )
    assert r.status_code == 403
    assert r.json()["reason"] == "purpose juki.registration does not cover Dog.microchip"
    (e,) = await _events(db, town, "dog-deny-2")
    assert (e["action"], e["outcome"]) == ("dog.read", "denied")
    assert e["purpose"] == "juki.registration"
    assert e["subjects"] == [await _subject(db, town, dog["id"])]
    searched = await dog_client.post(
        f"/api/v1/tenants/{town}/dogs/search",
        json={"microchip": CHIP},
        headers=auth(staff["shimin"], "juki.registration", **{"X-Request-ID": "dog-deny-3"}),
    )
    assert searched.status_code == 403
    assert searched.json()["reason"] == "purpose juki.registration does not cover license"
    (e,) = await _events(db, town, "dog-deny-3")
    assert (e["action"], e["outcome"]) == ("dog.search", "denied")


async def test_another_towns_staff_get_404_and_the_attempt_is_in_this_towns_log(
    dog_client: httpx.AsyncClient, db: Database, town: str, staff: dict[str, str], dog: Any
) -> None:
    r = await dog_client.get(
        f"/api/v1/tenants/{town}/dogs/{dog['id']}",
        headers=auth(staff["kaga"], PURPOSE, **{"X-Request-ID": "dog-cross-1"}),
    )
    assert r.status_code == 404
    (e,) = await _events(db, town, "dog-cross-1")
    assert (e["outcome"], e["reason"]) == ("denied", "caller from another town")


# --- rotated ----------------------------------------------------------------------------


async def _until(check: Any, seconds: float = 10.0) -> Any:
    """Poll ``check`` until it answers truthily (workers hear of key changes by NOTIFY)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_its_data_key_and_index_key_rotate_and_it_still_reads_and_searches(
    dog_client: httpx.AsyncClient, db: Database, town: str, staff: dict[str, str], dog: Any
) -> None:
    headers = auth(staff["seikatsu"], PURPOSE)
    dek = await rotate_dek(db, town, "dogs.microchip", grace_seconds=0.2)
    assert dek.retired
    assert dek.reencrypted >= 1
    assert dek.version == 2
    read = await dog_client.get(f"/api/v1/tenants/{town}/dogs/{dog['id']}", headers=headers)
    assert read.status_code == 200
    assert read.json()["microchip"] == CHIP

    # Its append-only history rotates too, through the town's reseal_envelopes.
    history = await rotate_dek(db, town, "dog_history.entry", grace_seconds=0.2)
    assert (history.retired, history.reencrypted, history.version) == (True, 1, 2)
    names = tenant_names(town, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        assert await repository.history(uow, dog["id"]) == [
            {"entry_no": 1, "breed": "柴犬", "microchip": CHIP}
        ]
        entry = await uow.fetchval("SELECT entry FROM dog_history WHERE dog_id = $1", dog["id"])
    assert int.from_bytes(entry[1:5], "big") == 2

    index = await rotate_index(db, town, "dog_microchip", grace_seconds=0.2)
    assert index.retired
    assert index.version == 2
    assert index.filled >= 1
    schema = tenant_names(town, db.settings.role_prefix).schema
    (row,) = await _fetch(db, f'SELECT * FROM "{schema}".dogs WHERE id = $1::uuid', dog["id"])
    # The new key's values are in the even column, the old column is cleared.
    assert row[index_column("dog_microchip", 2)] is not None
    assert row[index_column("dog_microchip", 1)] is None

    async def found() -> bool:
        r = await dog_client.post(
            f"/api/v1/tenants/{town}/dogs/search", json={"microchip": CHIP}, headers=headers
        )
        assert r.status_code == 200
        return [d["id"] for d in r.json()["dogs"]] == [dog["id"]]

    assert await _until(found)


async def test_its_history_is_append_only_for_the_towns_role(
    db: Database, town: str, dog: dict[str, Any]
) -> None:
    """Declared ``append_only`` in its spec: the upgrade took UPDATE and DELETE away."""
    names = tenant_names(town, db.settings.role_prefix)
    for statement in ("UPDATE dog_history SET entry = entry", "DELETE FROM dog_history"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.tenant(names) as uow:
                await uow.execute(statement)
    with pytest.raises(_Rollback):  # it may still add entries (this one rolled back)
        async with db.tenant(names) as uow:
            await uow.execute(
                "INSERT INTO dog_history (dog_id, entry_no, entry) "
                "SELECT dog_id, 2, entry FROM dog_history WHERE dog_id = $1 AND entry_no = 1",
                dog["id"],
            )
            raise _Rollback


class _Rollback(Exception):
    pass


# --- offboarded --------------------------------------------------------------------------


async def test_offboarding_exports_the_domains_records(
    db: Database, town: str, dog: dict[str, Any], tmp_path: Path
) -> None:
    path = await tenancy.offboard(db, town, tmp_path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["dogs"] == [{"id": dog["id"], "breed": "柴犬", "microchip": CHIP}]
    assert document["dog_history"] == [
        {"dog_id": dog["id"], "entry_no": 1, "breed": "柴犬", "microchip": CHIP}
    ]
    assert document["residents"] == []  # every installed domain exports its own
