"""Onboarding, migration and offboarding of towns, through the service and the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import text

from shared_gov.crypto.keyring import keyring_from_settings
from shared_gov.db import Database
from shared_gov.db.migrations.runner import head
from shared_gov.errors import DomainError
from shared_gov.settings import Settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import Department, load_manifest
from tests.conftest import KAGA, KOMATSU, TENANTS_DIR, auth
from tests.factories import resident_body


async def _catalog_value(db: Database, sql: str, *args: Any) -> Any:
    async with db.catalog() as conn:
        return await conn.fetchval(sql, *args)


async def test_onboarding_the_same_manifest_again_changes_nothing(db: Database) -> None:
    """Re-onboarding an unchanged manifest is a no-op (and says so)."""
    manifest = load_manifest(TENANTS_DIR / "kaga.toml")
    sql = "SELECT updated_at FROM catalog.tenants WHERE code = $1"
    before = await _catalog_value(db, sql, KAGA)
    result = await tenancy.onboard(db, manifest)
    assert result.outcome == "unchanged"
    after = await _catalog_value(db, sql, KAGA)
    assert before == after


async def test_changed_manifest_updates_platform_settings_but_never_departments(
    db: Database,
) -> None:
    """A changed manifest may change an existing town's platform settings (names,
    population); adding, dropping or re-purposing departments is the town's admins'
    business, so such a manifest is refused with 409 and nothing changes.

    (Until issue #14 this test asserted that a manifest adds and deactivates an
    existing town's departments: the operator changing the town's permissions.)"""
    manifest = load_manifest(TENANTS_DIR / "nomi.toml")
    assert (await tenancy.onboard(db, manifest)).outcome in ("created", "unchanged")
    depts = [d for d in manifest.departments if d.code != "bousai"]
    depts.append(Department(code="kodomo", name="こども課"))
    changed = msgspec.structs.replace(manifest, departments=depts)
    with pytest.raises(DomainError) as refused:
        await tenancy.onboard(db, changed)
    assert refused.value.status == 409
    assert "departments" in refused.value.detail
    active = await _catalog_value(
        db,
        "SELECT active FROM catalog.departments WHERE tenant_code = $1 AND code = 'bousai'",
        manifest.code,
    )
    assert active is True
    kodomo = await _catalog_value(
        db,
        "SELECT count(*) FROM catalog.departments WHERE tenant_code = $1 AND code = 'kodomo'",
        manifest.code,
    )
    assert kodomo == 0
    bigger = msgspec.structs.replace(manifest, population=manifest.population + 1)
    assert (await tenancy.onboard(db, bigger)).outcome == "updated"
    assert (await tenancy.onboard(db, manifest)).outcome == "updated"


async def test_migrate_skips_tenants_at_head_and_upgrades_those_behind(db: Database) -> None:
    """A no-op migrate touches no tenant; a tenant whose mirror is behind is upgraded."""
    report = await tenancy.migrate_all(db)
    assert report.behind == 0
    assert report.upgraded == []
    async with db.catalog() as conn:
        await conn.execute(
            "UPDATE catalog.tenants SET schema_revision = NULL WHERE code = $1", KAGA
        )
    report = await tenancy.migrate_all(db)
    assert report.upgraded == [KAGA]
    assert report.failed == {}
    assert (
        await _catalog_value(
            db, "SELECT schema_revision FROM catalog.tenants WHERE code = $1", KAGA
        )
        == tenancy.tenant_head()
    )  # every head: the platform's and each installed domain's


async def test_migrate_continues_past_a_failing_tenant(db: Database) -> None:
    """One broken town is reported; the others behind it are still upgraded."""
    bogus = "131016"  # 千代田区: a catalog row with no schema behind it
    async with db.catalog() as conn:
        await conn.execute(
            "INSERT INTO catalog.tenants (code, name, name_kana, prefecture, population, status, "
            "schema_name, role_name, manifest) VALUES ($1, '千代田区', 'ちよだく', '東京都', 1, "
            "'active', 't_131016', 'none', '{}') ON CONFLICT DO NOTHING",
            bogus,
        )
        await conn.execute(
            "UPDATE catalog.tenants SET schema_revision = NULL WHERE code = $1", KAGA
        )
    try:
        report = await tenancy.migrate_all(db)
        assert set(report.failed) == {bogus}
        assert KAGA in report.upgraded
    finally:
        async with db.catalog() as conn:
            await conn.execute("DELETE FROM catalog.tenants WHERE code = $1", bogus)


async def test_migrate_in_worker_processes(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """With many tenants behind, worker processes upgrade them and report each one."""
    monkeypatch.setattr(tenancy, "PER_WORKER_MINIMUM", 1)
    async with db.catalog() as conn:
        await conn.execute(
            "UPDATE catalog.tenants SET schema_revision = 'old' WHERE code = ANY($1::text[])",
            [KAGA, KOMATSU],
        )
    done: list[str] = []
    report = await tenancy.migrate_all(db, on_done=lambda code, _f: done.append(code))
    assert sorted(report.upgraded) == sorted(done) == sorted([KAGA, KOMATSU])
    assert report.failed == {}
    for code in (KAGA, KOMATSU):
        revision = await _catalog_value(
            db, "SELECT schema_revision FROM catalog.tenants WHERE code = $1", code
        )
        assert revision == tenancy.tenant_head()


async def test_offboarding_exports_then_drops_schema_and_role(
    db: Database, client: Any, issuer: Any, tmp_path: Path
) -> None:
    """Offboarding writes an export with the town's residents, then removes schema and
    role; the town's staff tokens are refused (401) afterwards; the town can be
    onboarded again. (Until issue #14 the token still authenticated and got 404.)"""
    manifest = load_manifest(TENANTS_DIR / "kiyose.toml")
    await tenancy.onboard(db, manifest)
    code = manifest.code
    token = issuer.mint(subject="c-1", tenant=code, department="shimin", roles=["staff"], mfa=True)
    created = await client.post(
        f"/api/v1/tenants/{code}/residents",
        json=resident_body(address="東京都清瀬市中里1-1"),
        headers=auth(token),
    )
    assert created.status_code == 201
    path = await tenancy.offboard(db, code, tmp_path)
    exported = json.loads(path.read_text(encoding="utf-8"))
    assert [r["id"] for r in exported["residents"]] == [created.json()["id"]]
    assert path.stat().st_mode & 0o777 == 0o600
    async with db.engine().connect() as conn:
        schema = (
            await conn.execute(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": f"t_{code}"}
            )
        ).scalar()
        role = (
            await conn.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                {"r": f"{db.settings.role_prefix}_t_{code}"},
            )
        ).scalar()
    assert schema is None
    assert role is None
    status = await _catalog_value(db, "SELECT status FROM catalog.tenants WHERE code = $1", code)
    assert status == "offboarded"
    gone = await client.get(created.headers["location"], headers=auth(token))
    assert gone.status_code == 401
    again = await tenancy.onboard(db, manifest)
    assert again.outcome == "created"


async def test_operator_api_onboards_and_lists(client: Any, tokens: dict[str, str]) -> None:
    """Operators onboard through the API (201 then 200 unchanged) and list tenants;
    staff cannot; a bad check digit gets 422 pointing at /code."""
    manifest = {
        "code": "132292",
        "name": "西東京市",
        "name_kana": "にしとうきょうし",
        "prefecture": "東京都",
        "population": 206000,
        "departments": [{"code": "shimin", "name": "市民課"}],
    }
    first = await client.post("/api/v1/tenants", json=manifest, headers=auth(tokens["operator"]))
    assert first.status_code in (200, 201), first.text
    second = await client.post("/api/v1/tenants", json=manifest, headers=auth(tokens["operator"]))
    assert second.status_code == 200
    assert second.json()["outcome"] == "unchanged"
    staff = await client.post("/api/v1/tenants", json=manifest, headers=auth(tokens["kaga"]))
    assert staff.status_code == 404
    bad = await client.post(
        "/api/v1/tenants", json={**manifest, "code": "132290"}, headers=auth(tokens["operator"])
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/code"
    listing = await client.get("/api/v1/tenants", headers=auth(tokens["operator"]))
    assert listing.status_code == 200
    assert {KAGA, "132292"} <= {t["code"] for t in listing.json()}
    denied = await client.get("/api/v1/tenants", headers=auth(tokens["kaga"]))
    assert denied.status_code == 404


def test_invalid_manifest_reports_the_field(tmp_path: Path) -> None:
    """A manifest whose code fails its check digit is rejected with a pointer."""
    from shared_gov.errors import DomainError

    bad = (TENANTS_DIR / "kaga.toml").read_text(encoding="utf-8").replace("172065", "172066")
    path = tmp_path / "bad.toml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(DomainError) as info:
        load_manifest(path)
    assert info.value.status == 422
    assert info.value.extra["errors"][0]["pointer"] == "/code"


@pytest.mark.parametrize("path", sorted(TENANTS_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_manifests_are_valid(path: Path) -> None:
    """Every shipped town has the five departments the platform relies on."""
    manifest = load_manifest(path)
    codes = {d.code for d in manifest.departments}
    assert {"shimin", "kaigo", "kaikei", "zeimu", "kansa"} <= codes


async def test_libpq_url_parameters_work_for_migrations_too(settings: Settings) -> None:
    """``?sslmode=…`` (what operators put in a URL for TLS) used to break
    migrations: SQLAlchemy passed it to asyncpg as an unknown keyword."""
    assert settings.database_url
    separator = "&" if "?" in settings.database_url else "?"
    url = settings.database_url + separator + "sslmode=disable"
    database = Database(url, settings, keyring_from_settings(settings))
    await database.open()
    try:
        async with database.engine().connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        await tenancy.migrate_catalog(database)  # at head: a no-op that connects
    finally:
        await database.close()


_SCHEMA_SHAPE = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
    "FROM information_schema.columns WHERE table_schema = :s ORDER BY 1, 2",
    "indexes": "SELECT tablename, indexname, replace(indexdef, :s || '.', '') FROM pg_indexes "
    "WHERE schemaname = :s ORDER BY 1, 2",
    "constraints": "SELECT r.relname, c.conname, "
    "replace(pg_get_constraintdef(c.oid), :s || '.', '') "
    "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
    "JOIN pg_class r ON r.oid = c.conrelid WHERE n.nspname = :s ORDER BY 1, 2",
    "sequences": "SELECT sequence_name, start_value, increment FROM information_schema.sequences "
    "WHERE sequence_schema = :s ORDER BY 1",
    "functions": "SELECT p.proname, pg_get_function_arguments(p.oid) FROM pg_proc p "
    "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :s ORDER BY 1",
    "triggers": "SELECT event_object_table, trigger_name, action_timing, event_manipulation "
    "FROM information_schema.triggers WHERE trigger_schema = :s ORDER BY 1, 2, 4",
}


async def test_a_new_towns_one_script_builds_what_the_migrations_build(db: Database) -> None:
    """Provisioning sends all tenant migrations as one script (Alembic's offline
    rendering); it must build exactly what running them one by one builds."""
    from sqlalchemy.util import await_only

    from shared_gov.db.migrations.runner import _upgrade, fresh_tenant_script

    def build_both(conn: Any) -> dict[str, tuple[list[Any], list[Any]]]:
        conn.execute(text("CREATE SCHEMA zz_stepwise"))
        conn.execute(text("CREATE SCHEMA zz_script"))
        conn.execute(text("SET LOCAL search_path TO zz_stepwise"))
        _upgrade(conn, "tenant", "zz_stepwise")
        conn.execute(text("SET LOCAL search_path TO zz_script"))
        await_only(conn.connection.driver_connection.execute(fresh_tenant_script()))
        conn.execute(text("SET LOCAL search_path TO DEFAULT"))
        shapes = {}
        for name, query in _SCHEMA_SHAPE.items():
            shapes[name] = tuple(
                [tuple(r) for r in conn.execute(text(query), {"s": schema}).all()]
                for schema in ("zz_stepwise", "zz_script")
            )
        shapes["version"] = tuple(
            [tuple(r) for r in conn.execute(text(f"SELECT * FROM {schema}.alembic_version"))]
            for schema in ("zz_stepwise", "zz_script")
        )
        return shapes

    async with db.engine().connect() as conn:
        try:
            shapes = await conn.run_sync(build_both)
        finally:
            await conn.rollback()
    assert shapes["columns"][0], "the stepwise migrations built nothing?"
    for name, (stepwise, script) in shapes.items():
        assert script == stepwise, name
    assert shapes["version"][0] == [(head("tenant"),)]
