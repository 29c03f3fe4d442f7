"""Shared fixtures: a real PostgreSQL for the whole session.

With ``SHARED_GOV_DATABASE_URL`` set (CI: the server on 127.0.0.1:5432) the
session creates its own database there; otherwise it starts the embedded
server (pgserver) in a temporary directory. Either way it uses a unique role
prefix, because roles are cluster-wide, and drops the database and every
role it created at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar

from shared_gov.app import create_app
from shared_gov.audit.verify import VerifyReport, check_links
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.crypto.keyring import keyring_from_settings
from shared_gov.db import Database
from shared_gov.db.urls import with_database
from shared_gov.logs import configure_logging
from shared_gov.settings import Settings, load_settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import load_manifest

# The 介護保険 consumer's loop stays off in the apps the tests build: its tests
# drive it by hand (tests/domains/kaigo), and it must not write determinations and
# audit events into other tests' towns while they count theirs.
os.environ.setdefault("SHARED_GOV_KAIGO_CONSUMER", "off")

ROOT = Path(__file__).resolve().parents[1]
TENANTS_DIR = ROOT / "tenants"
KAGA = "172065"
KOMATSU = "172031"
SHARED_TOWNS = (KAGA, KOMATSU)
"""Onboarded once for the whole session (``db``); every other town is a module's own."""


def _admin_url(tmp_root: Path) -> str:
    url = os.environ.get("SHARED_GOV_DATABASE_URL")
    if url:
        return url
    import pgserver

    pgdata = tmp_root / "pg"
    server = pgserver.get_server(str(pgdata))
    _KEEP.append(server)
    return f"postgresql://postgres@/postgres?host={pgdata}"


_KEEP: list[object] = []


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_everything(admin_url: str, name: str, role_prefix: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        roles = await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", role_prefix + "\\_%"
        )
        for r in roles:
            await conn.execute(f'DROP ROLE IF EXISTS "{r["rolname"]}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
def _logging_configured_first() -> None:
    """Configure logging before any test does, at the service's level.

    The first ``configure_logging`` of a process wins (loggers are cached on
    first use), and a CLI command invoked in process configures ``warning``:
    without this, whether later tests see ``info`` events depended on the order
    the tests ran in.
    """
    configure_logging("info", force=True)


@pytest.fixture(scope="session")
def run_id() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory, run_id: str) -> Iterator[str]:
    admin = _admin_url(tmp_path_factory.mktemp("db"))
    name = f"sgtest_{run_id}"
    asyncio.run(_create_database(admin, name))
    yield with_database(admin, name)
    asyncio.run(_drop_everything(admin, name, f"sgt{run_id}"))


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, run_id: str, database_url: str) -> Settings:
    base = load_settings()
    return dataclasses.replace(
        base,
        env="test",
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=database_url,
        role_prefix=f"sgt{run_id}",
        issuer="http://testserver.local",
        audience="shared-gov",
        pool_min=1,
        pool_max=10,
        access_log=True,
    )


async def unaudited_writes(database: Database, codes: tuple[str, ...]) -> list[str]:
    """History rows and outbox events of the towns ``codes`` that have no audit
    event of their write (``audit verify``'s link check), described."""
    found: list[str] = []
    async with database.catalog() as conn:
        for code in codes:
            incarnation = await conn.fetchval(
                "SELECT incarnation FROM catalog.tenants WHERE code = $1", code
            )
            report = VerifyReport(code, incarnation=incarnation)
            await check_links(conn, report)
            found += [f"{code}: {p.kind}: {p.detail}" for p in report.problems]
    return found


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The session's database, with the shared towns Kaga and Komatsu.

    Many tests (``audit verify`` among them) take the shared towns' logs as
    intact, whatever ran before them. So at the end of every session that
    used them, their history rows and outbox events must each have the audit
    event of their write: a test that writes through a repository or the
    outbox directly records the event as the real path does, or writes in a
    town of its own (onboarded by its module).
    """
    assert settings.database_url
    database = Database(settings.database_url, settings, keyring_from_settings(settings))
    await database.open()
    await tenancy.migrate_catalog(database)
    for town in ("kaga", "komatsu"):
        await tenancy.onboard(database, load_manifest(TENANTS_DIR / f"{town}.toml"))
    yield database
    try:
        unaudited = await unaudited_writes(database, SHARED_TOWNS)
        assert not unaudited, (
            "some test wrote to a shared town without the write's audit event "
            "(record it as the real path does, or use a town of the module's own):\n"
            + "\n".join(unaudited)
        )
    finally:
        await database.close()


@pytest.fixture(scope="session")
async def app(settings: Settings, db: Database) -> Litestar:
    assert settings.database_url
    return create_app(settings, settings.database_url)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client running the app in the test's own event loop.

    Unlike Litestar's AsyncTestClient (which runs the app in another thread
    and blocks the caller per request), httpx's ASGITransport lets requests
    really run concurrently — needed by the isolation and rotation tests.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # Enter and leave the lifespan in one task (anyio cancel scopes require it).
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    await started.wait()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c
    stop.set()
    await task


@pytest.fixture(scope="session")
def issuer(app: Litestar, client: Any) -> BuiltinIssuer:
    result: BuiltinIssuer = app.state.services.issuer
    return result


@pytest.fixture(scope="session")
def tokens(issuer: BuiltinIssuer) -> dict[str, str]:
    """Ready tokens: staff of Kaga and Komatsu, an auditor, an operator."""
    return {
        # 市民課 staff with two-factor authentication: may use every field for
        # juki.registration, the purpose auth() states by default.
        "kaga": issuer.mint(
            subject="k-0001", tenant=KAGA, department="shimin", roles=["staff"], mfa=True
        ),
        "komatsu": issuer.mint(
            subject="m-0001", tenant=KOMATSU, department="shimin", roles=["staff"], mfa=True
        ),
        "kaga_auditor": issuer.mint(
            subject="k-9001", tenant=KAGA, department="kansa", roles=["auditor"]
        ),
        "operator": issuer.mint(subject="op-1", tenant=None, department=None, roles=["operator"]),
        "kaga_admin": issuer.mint(
            subject="k-admin", tenant=KAGA, department="somu", roles=["admin"]
        ),
        "komatsu_admin": issuer.mint(
            subject="m-admin", tenant=KOMATSU, department="somu", roles=["admin"]
        ),
        # Second admins: an issuer change takes two (four eyes).
        "kaga_admin2": issuer.mint(
            subject="k-admin-2", tenant=KAGA, department="somu", roles=["admin"]
        ),
        "komatsu_admin2": issuer.mint(
            subject="m-admin-2", tenant=KOMATSU, department="somu", roles=["admin"]
        ),
    }


DEFAULT_PURPOSE = "juki.registration"


def auth(token: str, purpose: str | None = DEFAULT_PURPOSE, **extra: str) -> dict[str, str]:
    """Headers for a request: bearer token and (unless None) the X-Purpose."""
    headers = {"Authorization": f"Bearer {token}", **extra}
    if purpose is not None:
        headers["X-Purpose"] = purpose
    return headers
