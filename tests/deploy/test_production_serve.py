"""The production way, end to end: ``shared-gov serve --workers 2`` with
``SHARED_GOV_ENV=prod``, the PKCS#11 key provider on a SoftHSM2 token, a
least-privileged database role set up with ``deploy/sql/*.sql``, a town
onboarded by an operator with its own identity provider, and the README's
flows run over real HTTP against the worker processes.

Also checked: ``/health``, ``/ready`` (and ``/ready`` failing while the
database is cut off, through a TCP proxy the test controls), ``/metrics``
summed across workers (multi-process mode, stale files wiped at start),
JSON log lines on stdout without personal values, and the one-town backup
and restore of ``deploy/README.md`` (``pg_dump -n`` / ``pg_restore``, then a
graceful worker reload with SIGHUP).

Skips (fails on CI) without SoftHSM2, like ``tests/crypto``. Every wait is
bounded; the server's process group is stopped at the end whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from shared_gov.db.urls import with_database
from tests.conftest import KAGA, ROOT, TENANTS_DIR
from tests.crypto.softhsm import SoftHsm, softhsm_fixture, wipe_token
from tests.deploy.flows import resident_flows
from tests.deploy.proxy import CuttableProxy
from tests.factories import resident_body

__all__ = ["softhsm_fixture"]  # imported to register the fixture here

SQL_DIR = ROOT / "deploy" / "sql"
CLI = str(Path(sys.executable).with_name("shared-gov"))
ISSUER = "https://gov-cloud.test.example"
IDP = "https://idp.kaga.test.example"
IDP_AUDIENCE = "shared-gov-kaga"
START_TIMEOUT = 120.0
STEP_TIMEOUT = 180.0
RESIDENT_ROUTE = "/api/v1/tenants/{code}/residents/{resident_id}"
CLIENT = "203.0.113.7"  # a documentation address: the staff member behind the proxy


# --- the database, as deploy/README.md sets it up ------------------------------------


def _psql_vars(sql: str, values: dict[str, str]) -> list[str]:
    """The statements of a deploy/sql file with psql's :"name" variables filled in."""
    for name, value in values.items():
        sql = sql.replace(f':"{name}"', '"' + value.replace('"', '""') + '"')
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def _run_sql_file(url: str, name: str, values: dict[str, str]) -> None:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        for statement in _psql_vars((SQL_DIR / name).read_text(), values):
            await conn.execute(statement, timeout=60)
    finally:
        await conn.close()


@dataclass
class Target:
    """Where the test's PostgreSQL is, as the admin sees it and as the proxy reaches it."""

    admin_url: str
    host: str | None
    port: int
    unix: str | None

    def service_url(self, login: str, database: str, *, port: int | None = None) -> str:
        if port is not None:
            return f"postgresql://{login}@127.0.0.1:{port}/{database}"
        if self.unix is not None:
            return f"postgresql://{login}@/{database}?host={Path(self.unix).parent}"
        return f"postgresql://{login}@{self.host}:{self.port}/{database}"


def _target(tmp: Path) -> Target:
    url = os.environ.get("SHARED_GOV_DATABASE_URL")
    if not url:
        import pgserver

        server = pgserver.get_server(str(tmp / "pg"))
        _KEEP.append(server)
        url = f"postgresql://postgres@/postgres?host={tmp / 'pg'}"
    parts = urlsplit(url)
    socket_dir = parse_qs(parts.query).get("host", [None])[0]
    if socket_dir or not parts.hostname:
        folder = socket_dir or "/var/run/postgresql"
        return Target(url, None, parts.port or 5432, f"{folder}/.s.PGSQL.{parts.port or 5432}")
    return Target(url, parts.hostname, parts.port or 5432, None)


_KEEP: list[object] = []


# --- the town's identity provider ---------------------------------------------------------


@dataclass
class KagaIdp:
    """Kaga's IdP: an RSA key whose public half the town's manifest carries inline."""

    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True))
    kid: str = field(default_factory=lambda: "kaga-" + secrets.token_hex(4))

    def jwks(self) -> dict[str, Any]:
        public = dict(self.key.as_dict(private=False))
        public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [public]}

    def token(self, sub: str, dept: str, roles: list[str], *, mfa: bool = True) -> str:
        now = int(time.time())
        claims = {
            "iss": IDP,
            "aud": IDP_AUDIENCE,
            "sub": sub,
            "dept": dept,
            "roles": roles,
            "amr": ["pwd", "mfa"] if mfa else ["pwd"],
            "iat": now,
            "nbf": now,
            "exp": now + 900,
        }
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])


# --- the server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [CLI, *args], env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"shared-gov {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _tool(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run a PostgreSQL client tool (blocking: call it through asyncio.to_thread)."""
    done = subprocess.run(  # noqa: S603 - tools found on PATH, fixed arguments
        args, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{args[0]}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _start(
    args: list[str], env: dict[str, str], stdout: Path, stderr: Path
) -> subprocess.Popen[bytes]:
    with stdout.open("wb") as out, stderr.open("wb") as err:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            args, env=env, stdout=out, stderr=err, start_new_session=True
        )


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    metrics_dir: Path
    env: dict[str, str]

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def assert_running(self) -> None:
        code = self.process.poll()
        assert code is None, f"server exited with {code}:\n{self.logs()[-4000:]}"


async def _wait_until(
    client: httpx.AsyncClient, server: Server, path: str, status: int, within: float
) -> httpx.Response:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        server.assert_running()
        try:
            last = await client.get(path, timeout=5)
            if last.status_code == status:
                return last
        except httpx.TransportError as exc:
            last = exc
        await asyncio.sleep(0.25)
    raise AssertionError(f"{path} never answered {status} in {within:.0f} s (last: {last!r})")


def _stop(server: Server) -> None:
    """SIGTERM (graceful), then SIGKILL to what is left of the process group we started."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
    # Workers of a master that died first would be orphans in our session.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.process.pid, signal.SIGKILL)


@dataclass
class Deployment:
    server: Server
    proxy: CuttableProxy
    target: Target
    names: dict[str, str]
    operator: str
    idp: KagaIdp


@pytest.fixture
async def deployment(
    softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    wipe_token(softhsm)
    tmp = tmp_path_factory.mktemp("deploy")
    target = _target(tmp)
    run = secrets.token_hex(3)
    names = {"login": f"sgdeploy_{run}", "database": f"sgdeploy_{run}", "audit": f"sgd{run}_audit"}
    prefix = f"sgd{run}"
    await _run_sql_file(target.admin_url, "create.sql", names)
    db_admin_url = with_database(target.admin_url, names["database"])
    proxy = CuttableProxy(host=target.host, port=target.port, unix=target.unix)
    await proxy.start()
    server: Server | None = None
    try:
        pin_file = tmp / "pkcs11.pin"
        pin_file.write_text(softhsm.user_pin + "\n")
        pin_file.chmod(0o600)
        metrics_dir = tmp / "metrics"
        metrics_dir.mkdir()
        # A previous run's file: serve must clear it, or its counts would add up.
        (metrics_dir / "counter_999999.db").write_bytes(b"stale")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARED_GOV_")}
        env.update(
            SHARED_GOV_ENV="prod",
            SHARED_GOV_DATABASE_URL=target.service_url(names["login"], names["database"]),
            SHARED_GOV_ROLE_PREFIX=prefix,
            SHARED_GOV_DATA_DIR=str(tmp / "data"),
            SHARED_GOV_ISSUER=ISSUER,
            SHARED_GOV_KEY_PROVIDER="pkcs11",
            SHARED_GOV_PKCS11_LIBRARY=softhsm.library,
            SHARED_GOV_PKCS11_TOKEN=softhsm.token_label,
            SHARED_GOV_PKCS11_PIN_FILE=str(pin_file),
            SHARED_GOV_LOG_LEVEL="info",
            # The test plays the TLS-terminating proxy (deploy/README.md).
            SHARED_GOV_TRUSTED_PROXIES="127.0.0.1",
            SOFTHSM2_CONF=str(softhsm.conf),
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        )
        # deploy/README.md, "Database roles" and "Upgrade": migrate as the
        # service's role, with the audit role lent for the duration.
        await _run_sql_file(db_admin_url, "before-migrate.sql", names)
        _cli(env, "migrate")
        await _run_sql_file(db_admin_url, "after-migrate.sql", names)
        operator = _cli(env, "token", "--operator", "--ttl", "15m").strip()

        port = _free_port()
        serve_env = dict(env)
        # The workers reach the database through the proxy the test can cut.
        serve_env["SHARED_GOV_DATABASE_URL"] = target.service_url(
            names["login"], names["database"], port=proxy.port
        )
        stdout, stderr = tmp / "serve.out", tmp / "serve.err"
        process = _start(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            serve_env,
            stdout,
            stderr,
        )
        server = Server(f"http://127.0.0.1:{port}", process, stdout, stderr, metrics_dir, env)
        yield Deployment(server, proxy, target, names, operator, KagaIdp())
    finally:
        if server is not None:
            _stop(server)
        await proxy.stop()
        await _drop(target.admin_url, names, prefix)


async def _drop(admin_url: str, names: dict[str, str], prefix: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{names["database"]}" WITH (FORCE)')
        roles = await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE $1 OR rolname = $2",
            prefix + "\\_%",
            names["login"],
        )
        for r in roles:
            await conn.execute(f'DROP ROLE IF EXISTS "{r["rolname"]}"')
    finally:
        await conn.close()


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        if metric.split("{")[0] == name and dict(re.findall(r'(\w+)="([^"]*)"', metric)) == labels:
            return float(value)
    return None


def _pg_tools() -> tuple[str, str] | None:
    dump, restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    return (dump, restore) if dump and restore else None


async def test_production_serve(deployment: Deployment) -> None:
    server = deployment.server
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        await _wait_until(http, server, "/health", 200, START_TIMEOUT)
        ready = await _wait_until(http, server, "/ready", 200, START_TIMEOUT)
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "key_provider": "ok"},
        }
        assert not (server.metrics_dir / "counter_999999.db").exists()

        # An operator onboards the town from its manifest; outside development
        # a manifest cannot name the town's IdP (separation of duties).
        idp = deployment.idp
        manifest = tomllib.loads((TENANTS_DIR / "kaga.toml").read_text(encoding="utf-8"))
        manifest.pop("issuer", None)
        issuer = {"url": IDP, "audience": IDP_AUDIENCE, "jwks": idp.jwks(), "algorithms": ["RS256"]}
        op = {"Authorization": f"Bearer {deployment.operator}"}
        refused = await http.post(
            "/api/v1/tenants", json={**manifest, "issuer": issuer}, headers=op
        )
        assert refused.status_code == 409, refused.text
        r = await http.post("/api/v1/tenants", json=manifest, headers=op)
        assert r.status_code == 201, r.text
        assert r.json()["code"] == KAGA
        # The town's information-policy office redeems the one-time code the
        # operator handed over, registering its own IdP and first admin.
        enrolled = await http.post(
            f"/api/v1/tenants/{KAGA}/enrolment",
            json={"code": r.json()["enrolment_code"], "first_admin": "k-0900", "issuer": issuer},
        )
        assert enrolled.status_code == 201, enrolled.text

        # Staff tokens come from the town's IdP; the README's flows follow.
        staff = idp.token("k-0001", "shimin", ["staff"])
        h = {
            "Authorization": f"Bearer {staff}",
            "X-Purpose": "juki.registration",
            "X-Forwarded-For": CLIENT,
        }
        base = f"/api/v1/tenants/{KAGA}"
        flows = await resident_flows(http, KAGA, h)
        rid, body, created, read, moved = (
            flows.resident_id,
            flows.body,
            flows.created,
            flows.read,
            flows.moved,
        )
        assert created.headers["etag"] == '"v1"'
        assert created.headers["location"].endswith(f"/residents/{rid}")
        assert moved.headers["etag"] == '"v2"'
        household = await http.get(f"{base}/households/{moved.json()['household_no']}", headers=h)
        assert household.status_code == 200, household.text
        assert rid in household.text
        # The town's auditor sees the accesses, with the client's address
        # from behind the proxy (X-Forwarded-For from a trusted proxy).
        auditor = idp.token("k-9001", "kansa", ["auditor"])
        events = await http.get(
            f"{base}/audit/events", headers={"Authorization": f"Bearer {auditor}"}
        )
        assert events.status_code == 200, events.text
        assert CLIENT in {e.get("client_addr") for e in events.json()["events"]}
        # Outside development the built-in issuer speaks for operators only:
        # an operator never reads residents.
        assert (await http.get(f"{base}/residents/{rid}", headers={**h, **op})).status_code in (
            403,
            404,
        )

        # Metrics: every worker's counts, by route template only.
        for _ in range(10):
            # A fresh connection each time lets the kernel hand them to either worker.
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as once:
                assert (await once.get("/health")).status_code == 200
        counts = set()
        for _ in range(4):
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as once:
                text = (await once.get("/metrics")).text
            counts.add(
                _sample(
                    text,
                    "shared_gov_http_requests_total",
                    method="GET",
                    route="/health",
                    status="200",
                )
            )
        # Whichever worker answered the scrape, it reported the total of all.
        assert len(counts) == 1
        health_count = counts.pop()
        assert health_count is not None
        assert health_count >= 10
        assert (
            _sample(
                text,
                "shared_gov_http_requests_total",
                method="GET",
                route=RESIDENT_ROUTE,
                status="200",
            )
            == 1
        )
        assert (_sample(text, "shared_gov_policy_decisions_total", outcome="allow") or 0) > 0
        assert (_sample(text, "shared_gov_key_cache_lookups_total", result="hit") or 0) > 0
        assert _sample(text, "shared_gov_audit_sealer_lag_seconds") is not None
        assert rid not in text
        assert KAGA not in " ".join(re.findall(r'="([^"]*)"', text))
        assert list(server.metrics_dir.glob("*.db"))

        # The database goes away: /ready says so (503), /health does not care.
        deployment.proxy.down()
        gone = await _wait_until(http, server, "/ready", 503, 30)
        assert gone.json()["checks"]["database"] == "unavailable"
        assert gone.headers["retry-after"]
        assert (await http.get("/health")).status_code == 200
        deployment.proxy.up()
        await _wait_until(http, server, "/ready", 200, 60)

        # Back up one town, lose it, restore it (deploy/README.md).
        tools = _pg_tools()
        if tools is not None and await _same_major(deployment, tools[0]):
            await _backup_and_restore(deployment, tools, http, h, rid, read.json())

    server.assert_running()
    # JSON lines on stdout, none carrying a personal value or a token.
    lines = [line for line in server.stdout.read_text().splitlines() if line.strip()]
    assert lines
    parsed = [json.loads(line) for line in lines]
    assert any(p.get("event") == "request" and p.get("status") == 201 for p in parsed)
    assert any(p.get("event") == "serve.start" for p in parsed)
    logged = server.stdout.read_text() + server.stderr.read_text()
    for value in (body["family_name"], body["individual_number"], staff, body["address"]):
        assert value not in logged


async def _same_major(deployment: Deployment, pg_dump: str) -> bool:
    """pg_dump refuses servers newer than itself (pgserver's embedded one may be)."""
    conn = await asyncpg.connect(deployment.target.admin_url, timeout=30)
    try:
        server_major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    out = await asyncio.to_thread(_tool, [pg_dump, "--version"])
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return match is not None and int(match.group(1)) >= server_major


async def _resident_read_refuses(conn: asyncpg.Connection, rid: str) -> bool:
    """Whether the town's read function refuses to run (not owned by the town's role)."""
    try:
        await conn.fetch(f"SELECT id FROM t_{KAGA}.resident_read($1::uuid)", rid)
    except asyncpg.InsufficientPrivilegeError:
        return True
    return False


async def _backup_and_restore(
    deployment: Deployment,
    tools: tuple[str, str],
    http: httpx.AsyncClient,
    h: dict[str, str],
    rid: str,
    before: dict[str, Any],
) -> None:
    server = deployment.server
    pg_dump, pg_restore = tools
    url = deployment.target.service_url(deployment.names["login"], deployment.names["database"])
    dump = server.metrics_dir.parent / f"t_{KAGA}.dump"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    # As README's backup section: the town's schema, custom format.
    await asyncio.to_thread(
        _tool,
        [
            pg_dump,
            "--dbname",
            url,
            "--schema",
            f"t_{KAGA}",
            "--format",
            "custom",
            "--file",
            str(dump),
        ],
        env,
    )
    # The town's data is damaged: set it aside (deploy/README.md, step 2).
    conn = await asyncpg.connect(url, timeout=30)
    try:
        await conn.execute(f"ALTER SCHEMA t_{KAGA} RENAME TO t_{KAGA}_damaged", timeout=60)
        lost = await http.get(f"/api/v1/tenants/{KAGA}/residents/{rid}", headers=h)
        assert lost.status_code >= 400
        await asyncio.to_thread(
            _tool,
            [
                pg_restore,
                "--dbname",
                url,
                "--single-transaction",
                "--exit-on-error",
                # The town's read function is owned by the town's role, which
                # the login role cannot make an owner in a schema it may not
                # create in: restored as the login role's, handed back below.
                "--no-owner",
                str(dump),
            ],
            env,
        )
        # deploy/README.md, restore step 4: the read function back to its town.
        role = f"{deployment.names['audit'].removesuffix('_audit')}_t_{KAGA}"
        login = deployment.names["login"]
        assert await _resident_read_refuses(conn, rid)
        async with conn.transaction():
            await conn.execute(
                f'GRANT CREATE ON SCHEMA t_{KAGA} TO "{role}"; '
                f'ALTER FUNCTION t_{KAGA}.resident_read(uuid) OWNER TO "{role}"; '
                f'REVOKE CREATE ON SCHEMA t_{KAGA} FROM "{role}"; '
                f'SET LOCAL ROLE "{role}"; '
                f'GRANT EXECUTE ON FUNCTION t_{KAGA}.resident_read(uuid) TO "{login}"'
            )
        assert not await _resident_read_refuses(conn, rid)
        # Numbers handed out after the dump are never handed out again;
        # the catalog's mirror follows the restored revision.
        for seq in ("atena_seq", "household_seq", "kaigo_insured_seq"):
            await conn.execute(
                f"SELECT setval('t_{KAGA}.{seq}', "
                f"GREATEST((SELECT last_value FROM t_{KAGA}_damaged.{seq}), "
                f"(SELECT last_value FROM t_{KAGA}.{seq})))"
            )
        await conn.execute(
            f"UPDATE catalog.tenants SET schema_revision = "
            # One row per head (the platform's and each domain's), sorted and joined.
            f"(SELECT string_agg(version_num, '+' ORDER BY version_num COLLATE \"C\") "
            f"FROM t_{KAGA}.alembic_version) WHERE code = $1",
            KAGA,
        )
        await conn.execute(f"DROP SCHEMA t_{KAGA}_damaged CASCADE", timeout=60)
    finally:
        await conn.close()
    # Workers hold statements prepared against the dropped tables: reload them.
    os.kill(server.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        server.assert_running()
        r = await http.get(f"/api/v1/tenants/{KAGA}/residents/{rid}", headers=h)
        if r.status_code == 200:
            break
        assert time.monotonic() < deadline, f"restored resident not readable: {r.status_code}"
        await asyncio.sleep(0.5)
    restored = r.json()
    assert restored["family_name"] == before["family_name"]
    assert restored["version"] == 2
    # The restored schema takes new records (privileges and sequences came back).
    again = await http.post(f"/api/v1/tenants/{KAGA}/residents", json=resident_body(), headers=h)
    assert again.status_code == 201, again.text
    assert again.json()["atena_no"] != restored["atena_no"]
