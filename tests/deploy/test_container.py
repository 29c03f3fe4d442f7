"""The service image (deploy/Dockerfile) run for real, the way compose.yaml runs it.

Opt-in: it runs a container image that was built beforehand (building takes a
minute or more and needs a package index), named in
``SHARED_GOV_CONTAINER_IMAGE`` — an image built with ``WITH_SOFTHSM=1``::

    podman build --format docker -f deploy/Dockerfile --build-arg WITH_SOFTHSM=1 \\
        -t localhost/shared-gov:softhsm .
    SHARED_GOV_CONTAINER_IMAGE=localhost/shared-gov:softhsm \\
        .venv/bin/pytest tests/deploy/test_container.py

``SHARED_GOV_CONTAINER_ENGINE`` is the engine's command (default: ``podman``,
else ``docker``; e.g. ``podman --runtime runc``), ``SHARED_GOV_CONTAINER_RUN_ARGS``
extra ``run`` options (e.g. ``--ulimit nofile=20000:20000``); deploy/README.md
says which this machine needed. Containers share the host's network, so the
PostgreSQL must listen on TCP: ``SHARED_GOV_DATABASE_URL`` when it names a
host, else 127.0.0.1:5432; skipped when neither answers.

What runs, as compose.yaml's services do: ``deploy/sql/create.sql`` and
``before-migrate.sql`` (throw-away login role, database and role prefix),
``softhsm2-util --init-token`` in the image on a token directory of the test's,
``shared-gov migrate``, ``after-migrate.sql``, ``shared-gov token --operator``,
then ``shared-gov serve --workers 2`` detached with its tmpfs for the metrics
files. Checked over HTTP: ``/health``, ``/ready``, a town onboarded by the
operator with its own IdP, the README's registration / read / move / history /
search flow with staff tokens from that IdP, the town's auditor reading the
accesses, ``/metrics`` counting them; then ``stop`` (SIGTERM) ends the service
cleanly (exit 0) and its stdout is JSON lines without personal values. The
container, the database and the roles are removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from shared_gov.db.urls import with_database
from tests.conftest import KAGA, TENANTS_DIR
from tests.deploy.flows import resident_flows
from tests.deploy.test_production_serve import (
    IDP,
    IDP_AUDIENCE,
    ISSUER,
    KagaIdp,
    _drop,
    _run_sql_file,
)

IMAGE_ENV = "SHARED_GOV_CONTAINER_IMAGE"
STEP_TIMEOUT = 180
START_TIMEOUT = 90.0
SOFTHSM_CONF = "/etc/shared-gov/softhsm2.conf"
TOKEN_DIR = "/var/lib/shared-gov/softhsm"
SERVICE_UID = 10001  # deploy/Dockerfile


def _engine() -> list[str] | None:
    configured = os.environ.get("SHARED_GOV_CONTAINER_ENGINE")
    if configured:
        return shlex.split(configured)
    for name in ("podman", "docker"):
        if shutil.which(name):
            return [name]
    return None


def _tcp_admin_url() -> str | None:
    """A superuser URL of a PostgreSQL on TCP, reachable from a host-network container."""
    url = (
        os.environ.get("SHARED_GOV_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parts = urlsplit(url)
    if not parts.hostname or "host=" in parts.query:
        return None
    try:
        with socket.create_connection((parts.hostname, parts.port or 5432), timeout=3):
            return url
    except OSError:
        return None


@dataclass
class Engine:
    command: list[str]
    run_args: list[str]
    image: str

    def run(self, *args: str, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - the container engine, fixed arguments
            [*self.command, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def check(self, *args: str, timeout: float = STEP_TIMEOUT) -> str:
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(args[:3])}…:\n{done.stdout}\n{done.stderr}"
        return done.stdout


@dataclass
class Container:
    engine: Engine
    name: str
    base_url: str
    operator: str

    def logs(self) -> str:
        done = self.engine.run("logs", self.name, timeout=30)
        return done.stdout + done.stderr

    def running(self) -> bool:
        done = self.engine.run("inspect", "--format", "{{.State.Running}}", self.name, timeout=30)
        return done.stdout.strip() == "true"


def _one_shot(engine: Engine, env: list[str], options: list[str], *args: str) -> str:
    """A one-off command in the image (compose's ``run --rm``): ``shared-gov`` unless
    ``options`` names another ``--entrypoint``."""
    return engine.check(
        "run", "--rm", "--network", "host", *engine.run_args, *env, *options, engine.image, *args
    )


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    image = os.environ.get(IMAGE_ENV)
    if not image:
        pytest.skip(f"opt-in: set {IMAGE_ENV} to an image built from deploy/Dockerfile")
    command = _engine()
    if command is None or shutil.which(command[0]) is None:
        pytest.skip("no container engine (podman or docker) on PATH")
    admin_url = _tcp_admin_url()
    if admin_url is None:
        pytest.skip("no PostgreSQL on TCP for a host-network container")
    engine = Engine(
        command, shlex.split(os.environ.get("SHARED_GOV_CONTAINER_RUN_ARGS", "")), image
    )
    if engine.run("image", "inspect", image, timeout=60).returncode != 0:
        pytest.skip(f"image {image} not found by {' '.join(command)}")

    run = secrets.token_hex(3)
    names = {"login": f"sgc_{run}", "database": f"sgc_{run}", "audit": f"sgc{run}_audit"}
    prefix = f"sgc{run}"
    parts = urlsplit(admin_url)
    db_admin_url = with_database(admin_url, names["database"])
    # Token directory, data directory and secrets, owned by the image's user.
    tokens, data, secrets_dir = tmp_path / "softhsm", tmp_path / "data", tmp_path / "secrets"
    for folder in (tokens, data, secrets_dir):
        folder.mkdir()
    pin, so_pin = secrets_dir / "hsm_pin", secrets_dir / "hsm_so_pin"
    pin.write_text(secrets.token_hex(8) + "\n")
    so_pin.write_text(secrets.token_hex(8) + "\n")
    for path in (tmp_path, tokens, data, secrets_dir, pin, so_pin):
        if os.geteuid() == 0:
            os.chown(path, SERVICE_UID, SERVICE_UID)
        else:  # rootless engines map users their own way: let anyone in
            path.chmod(0o777 if path.is_dir() else 0o644)
    env = [
        "-e",
        "SHARED_GOV_DATABASE_URL="
        f"postgresql://{names['login']}@{parts.hostname}:{parts.port or 5432}/{names['database']}",
        "-e",
        f"SHARED_GOV_ROLE_PREFIX={prefix}",
        "-e",
        f"SHARED_GOV_ISSUER={ISSUER}",
        "-e",
        "SHARED_GOV_PKCS11_LIBRARY=/usr/lib/softhsm/libsofthsm2.so",
        "-e",
        "SHARED_GOV_PKCS11_TOKEN=shared-gov",
        "-e",
        "SHARED_GOV_PKCS11_PIN_FILE=/run/secrets/hsm_pin",
        "-e",
        f"SOFTHSM2_CONF={SOFTHSM_CONF}",
    ]
    volumes = [
        "-v",
        f"{tokens}:{TOKEN_DIR}",
        "-v",
        f"{data}:/var/lib/shared-gov/data",
        "-v",
        f"{pin}:/run/secrets/hsm_pin:ro",
    ]
    port = _free_port()
    name = f"sgc-{run}"
    await _run_sql_file(admin_url, "create.sql", names)
    try:
        await _run_sql_file(db_admin_url, "before-migrate.sql", names)
        # compose.yaml's hsm-init, migrate, after-migrate; then an operator token.
        _one_shot(
            engine,
            env,
            [*volumes, "-v", f"{so_pin}:/run/secrets/hsm_so_pin:ro", "--entrypoint", "sh"],
            "-ec",
            "softhsm2-util --init-token --free --label shared-gov"
            ' --pin "$(cat /run/secrets/hsm_pin)" --so-pin "$(cat /run/secrets/hsm_so_pin)"',
        )
        _one_shot(engine, env, volumes, "migrate")
        await _run_sql_file(db_admin_url, "after-migrate.sql", names)
        operator = _one_shot(engine, env, volumes, "token", "--operator", "--ttl", "15m").strip()
        engine.check(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            *engine.run_args,
            *_tmpfs(command),
            "-e",
            "PROMETHEUS_MULTIPROC_DIR=/run/shared-gov",
            "-e",
            f"SHARED_GOV_PORT={port}",
            *env,
            *volumes,
            engine.image,
            "serve",
            "--workers",
            "2",
        )
        yield Container(engine, name, f"http://127.0.0.1:{port}", operator)
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            engine.run("rm", "-f", "-t", "0", name, timeout=60)
        await _drop(admin_url, names, prefix)


def _tmpfs(command: list[str]) -> list[str]:
    """compose.yaml's tmpfs, owned by the image's user (podman spells it ``U``)."""
    if Path(command[0]).name == "podman":
        return ["--tmpfs", "/run/shared-gov:rw,mode=0700,U"]
    return ["--tmpfs", f"/run/shared-gov:uid={SERVICE_UID},gid={SERVICE_UID},mode=0700"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _until(
    http: httpx.AsyncClient, box: Container, path: str, within: float
) -> httpx.Response:
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = await http.get(path, timeout=5)
            if last.status_code == 200:
                return last
        except httpx.TransportError as exc:
            last = exc
        if not box.running():
            raise AssertionError(f"container exited:\n{box.logs()[-4000:]}")
        await asyncio.sleep(0.5)
    raise AssertionError(
        f"{path} not 200 in {within:.0f} s (last: {last!r}):\n{box.logs()[-4000:]}"
    )


async def test_container_serves_the_readme_flows(container: Container) -> None:
    box = container
    operator = box.operator
    async with httpx.AsyncClient(base_url=box.base_url, timeout=30) as http:
        assert (await _until(http, box, "/health", START_TIMEOUT)).json() == {"status": "ok"}
        ready = await _until(http, box, "/ready", START_TIMEOUT)
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "key_provider": "ok"},
        }

        idp = KagaIdp()
        manifest = tomllib.loads((TENANTS_DIR / "kaga.toml").read_text(encoding="utf-8"))
        manifest["issuer"] = {
            "url": IDP,
            "audience": IDP_AUDIENCE,
            "jwks": idp.jwks(),
            "algorithms": ["RS256"],
        }
        op = {"Authorization": f"Bearer {operator}"}
        onboarded = await http.post("/api/v1/tenants", json=manifest, headers=op)
        assert onboarded.status_code == 201, onboarded.text

        h = {
            "Authorization": f"Bearer {idp.token('k-0001', 'shimin', ['staff'])}",
            "X-Purpose": "juki.registration",
        }
        base = f"/api/v1/tenants/{KAGA}"
        body = (await resident_flows(http, KAGA, h)).body
        auditor = {"Authorization": f"Bearer {idp.token('k-9001', 'kansa', ['auditor'])}"}
        events = await http.get(f"{base}/audit/events", headers=auditor)
        assert events.status_code == 200, events.text
        assert len(events.json()["events"]) >= 4
        # Both workers' counts, from the tmpfs the service was given.
        text = (await http.get("/metrics")).text
        assert 'route="/api/v1/tenants/{code}/residents/{resident_id}",status="200"' in text

    # SIGTERM (the image's STOPSIGNAL): the workers finish and the service exits 0.
    started = time.monotonic()
    box.engine.check("stop", "-t", "45", box.name, timeout=90)
    stopped_in = time.monotonic() - started
    code = box.engine.check("inspect", "--format", "{{.State.ExitCode}}", box.name, timeout=30)
    logs = box.logs()
    assert code.strip() == "0", logs[-4000:]
    assert stopped_in < 45, f"stop took {stopped_in:.1f} s (killed, not stopped)"
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(p.get("event") == "serve.start" and p.get("env") == "prod" for p in lines)
    assert any(p.get("event") == "request" and p.get("status") == 201 for p in lines)
    for value in (body["family_name"], body["individual_number"], body["address"]):
        assert value not in logs
    print(f"container stopped (SIGTERM) in {stopped_in:.2f} s, exit 0; {len(lines)} JSON lines")
