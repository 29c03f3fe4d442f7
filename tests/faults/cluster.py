"""A PostgreSQL cluster of the fault tests' own, and the service run the production way.

The fault tests restart, stop and start PostgreSQL, so they never use the
shared server (``SHARED_GOV_DATABASE_URL``): they start a private cluster
from the binaries the ``pgserver`` wheel ships, in a temporary directory,
and drive it with ``pg_ctl`` (as pgserver's own system user when the tests
run as root, since PostgreSQL refuses to run as root). The service runs as
``shared-gov serve`` (granian) in a subprocess against that cluster. Every
wait is bounded; everything started here is stopped by the fixture that
started it, by process id.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from shared_gov.auth.issuer import BuiltinIssuer, builtin_issuer
from shared_gov.crypto.keyring import keyring_from_settings
from shared_gov.db import Database
from shared_gov.db.urls import with_database
from shared_gov.settings import Settings, load_settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import load_manifest
from tests.conftest import KAGA, TENANTS_DIR

CLI = str(Path(sys.executable).with_name("shared-gov"))
PG_CTL_TIMEOUT = 30.0
START_TIMEOUT = 60.0
ISSUER = "http://faults.test.local"


@dataclass
class Cluster:
    """The private cluster: pgserver's binaries, driven with pg_ctl."""

    pgdata: Path
    socket_dir: Path
    system_user: str | None
    server: Any

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.socket_dir}"

    def url(self, database: str) -> str:
        return with_database(self.admin_url, database)

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on the cluster (blocking; bounded by PG_CTL_TIMEOUT)."""
        from pgserver._commands import POSTGRES_BIN_PATH

        command = [
            str(POSTGRES_BIN_PATH / "pg_ctl"),
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            str(int(PG_CTL_TIMEOUT)),
            # The restarted postmaster logs where pgserver's did; without -l its
            # output would go to pg_ctl's.
            "-l",
            str(self.pgdata / "log"),
            *args,
        ]
        # Files, not pipes: the postmaster pg_ctl starts would inherit a pipe
        # and keep it open, and reading it would never end.
        with tempfile.TemporaryFile() as out:
            done = subprocess.run(  # noqa: S603 - pgserver's pg_ctl, fixed arguments
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=self.system_user,
                timeout=PG_CTL_TIMEOUT + 5,
                check=False,
            )
            out.seek(0)
            output = out.read().decode(errors="replace")
        if done.returncode != 0:
            log = (self.pgdata / "log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed:\n{output}\n--- log:\n{log}")

    async def restart(self) -> None:
        """Fast restart: running transactions are aborted, clients disconnected."""
        await asyncio.to_thread(self.pg_ctl, "-m", "fast", "restart")

    async def crash_a_backend(self, database: str) -> int:
        """SIGKILL one client backend of ``database``, as the OOM killer would.

        The postmaster then ends every session ("terminating connection
        because of crash of another server process") and replays the WAL
        before accepting connections again. Returns once the reset has
        happened (a session of ours was ended by it); :meth:`wait_accepting`
        then waits for the recovery.
        """
        conn = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            pid: int | None = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
                "ORDER BY state = 'active' DESC, pid LIMIT 1",
                database,
            )
            assert pid is not None, "no backend to kill"
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + PG_CTL_TIMEOUT
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                while time.monotonic() < deadline:
                    await conn.fetchval("SELECT 1")
                    await asyncio.sleep(0.01)
            assert time.monotonic() < deadline, "PostgreSQL did not reset its sessions"
        finally:
            conn.terminate()
        return pid

    async def wait_accepting(self, within: float = PG_CTL_TIMEOUT) -> None:
        """Until a new connection gets in and runs a query (after crash recovery)."""
        deadline = time.monotonic() + within
        while True:
            try:
                conn = await asyncpg.connect(self.admin_url, timeout=2)
                try:
                    await conn.fetchval("SELECT 1")
                    return
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)

    def shutdown(self) -> None:
        """Stop the cluster for good (pgserver's own exit hook would miss a restarted
        postmaster: it remembers the first one's pid)."""
        with contextlib.suppress(subprocess.SubprocessError, OSError, RuntimeError):
            self.pg_ctl("-m", "immediate", "stop")


def start_cluster(root: Path) -> Cluster:
    import pgserver

    pgdata = root / "pg"
    server = pgserver.get_server(str(pgdata), cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = info.socket_dir or pgdata
    return Cluster(pgdata, Path(socket_dir), server.system_user, server)


@dataclass
class Town:
    """The database the tests share: migrated, Kaga onboarded, and how to reach it."""

    cluster: Cluster
    database: str
    settings: Settings
    issuer: BuiltinIssuer

    @property
    def url(self) -> str:
        return self.cluster.url(self.database)

    def staff_token(self) -> str:
        # 市民課 staff with two-factor authentication: every field, juki.registration.
        return self.issuer.mint(
            subject="k-0001", tenant=KAGA, department="shimin", roles=["staff"], mfa=True
        )

    def env(self, **overrides: str) -> dict[str, str]:
        """Environment of a service or CLI process on this database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARED_GOV_")}
        env.update(
            SHARED_GOV_ENV="test",
            SHARED_GOV_DATABASE_URL=self.url,
            SHARED_GOV_DATA_DIR=str(self.settings.data_dir),
            SHARED_GOV_ROLE_PREFIX=self.settings.role_prefix,
            SHARED_GOV_ISSUER=ISSUER,
            SHARED_GOV_LOG_LEVEL="info",
        )
        env.update(overrides)
        return env


async def prepare_town(
    cluster: Cluster,
    data_dir: Path,
    *,
    database: str = "sgfaults",
    role_prefix: str = "sgf",
    **settings: Any,
) -> Town:
    """A database on the cluster, its catalog migrated and Kaga onboarded.

    ``settings`` override the :class:`Settings` used to onboard (the key
    provider, say); roles are cluster-wide, so each database needs its own
    ``role_prefix``.
    """
    conn = await asyncpg.connect(cluster.admin_url, timeout=30)
    try:
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    town_settings = dataclasses.replace(
        load_settings(),
        env="test",
        data_dir=data_dir,
        database_url=cluster.url(database),
        role_prefix=role_prefix,
        issuer=ISSUER,
        audience="shared-gov",
        pool_min=1,
        pool_max=4,
        **settings,
    )
    db = Database(cluster.url(database), town_settings, keyring_from_settings(town_settings))
    await db.open()
    try:
        await tenancy.migrate_catalog(db)
        await tenancy.onboard(db, load_manifest(TENANTS_DIR / "kaga.toml"))
    finally:
        await db.close()
    issuer = builtin_issuer(data_dir, ISSUER, "shared-gov")
    return Town(cluster, database, town_settings, issuer)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Service:
    """``shared-gov serve`` in a process group of its own."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        """The service's JSON log lines (granian's supervisor lines included), parsed."""
        events = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
        return events

    def assert_running(self) -> None:
        code = self.process.poll()
        assert code is None, f"server exited with {code}:\n{self.logs()[-4000:]}"

    async def wait_ready(self, within: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + within
        last: Any = None
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            while time.monotonic() < deadline:
                self.assert_running()
                try:
                    last = await client.get("/ready", timeout=5)
                    if last.status_code == 200:
                        return
                except httpx.TransportError as exc:
                    last = exc
                await asyncio.sleep(0.2)
        raise AssertionError(f"service not ready in {within:.0f} s (last: {last!r})")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to what is left of the process group we started."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def start_service(
    town: Town, log: Path, env: Mapping[str, str] | None = None, *, workers: int = 1
) -> Service:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=dict(env) if env is not None else town.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Service(f"http://127.0.0.1:{port}", process, log)
