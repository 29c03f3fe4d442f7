"""The HSM becomes unreachable under a running service (issue #7, "Faults").

The service runs as ``shared-gov serve`` with the PKCS#11 key provider on a
SoftHSM2 token, reached through ``pkcs11_fault.c``: a PKCS#11 module that
forwards to SoftHSM2 and, while a flag file exists, fails as a network HSM's
client library does when the HSM is gone (calls on a session:
CKR_DEVICE_REMOVED; finding the token, opening a session: CKR_DEVICE_ERROR).
SoftHSM2 itself cannot be made to fail from outside: with its token directory
removed, an open session simply finds no objects (``KeyNotFound``, which the
service answers as a town that does not exist).

Kaga lives in a database of its own on the fault tests' cluster, onboarded
with that token. Required while the HSM is away:

- towns whose keys the worker has already unwrapped keep being served (keys
  are cached; an HSM outage must not take them down);
- ``/ready`` answers 503 with ``key_provider: unavailable`` (the load
  balancer stops routing to the host);
- a request that must load a town's keys afresh (the cache dropped by a
  NOTIFY, as after a key rotation) is answered 503 problem+json with
  Retry-After: the key provider is unavailable, not broken — never a 500;
  and nothing is recorded in the audit log for it;

and once it is back: ``/ready`` 200, the town's keys load, reads and
registrations succeed within ``RECOVERY_LIMIT`` seconds, and the service's
sealer (which cannot sign while the HSM is away) signs every event.

A third test takes SoftHSM2's token directory away under a running worker
(what a lost or wrongly restored HSM partition looks like: a token without
the towns' keys): no 500, and a reload serves again once the files are back.
A fourth kills one of two workers while the HSM is away: its replacement
cannot start, so ``serve`` exits non-zero (granian's crash-loop rule) and
the supervisor's restart policy takes over.

Both used to be known gaps (a fresh key load answered 500; a token without
keys read as "no such town", 404, with ``/ready`` still 200): a provider that
is unreachable or lacks a key the catalog lists is now 503, and ``/ready``
asks for a real town's KEK versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shared_gov.auth.issuer import builtin_issuer
from shared_gov.settings import load_settings
from tests.conftest import KAGA, TENANTS_DIR
from tests.crypto.softhsm import SoftHsm, softhsm_fixture, wipe_token
from tests.faults import auditlog
from tests.faults.cluster import (
    CLI,
    ISSUER,
    Cluster,
    Service,
    Town,
    prepare_town,
    start_service,
)
from tests.faults.load import BASE, synthetic_resident

__all__ = ["softhsm_fixture"]  # imported to register the fixture here

pytestmark = pytest.mark.faults

SHIM_SOURCE = Path(__file__).with_name("pkcs11_fault.c")
RECOVERY_LIMIT = 5.0
SEALER_CATCH_UP = 15.0
EXIT_LIMIT = 20.0
CHANNEL = "shared_gov_policy"  # shared_gov.db.notify.CHANNEL


@dataclass
class Hsm:
    """The fault module, and the flag file that makes it fail."""

    module: Path
    flag: Path
    softhsm: SoftHsm

    def down(self) -> None:
        self.flag.touch()

    def up(self) -> None:
        self.flag.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def hsm(softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hsm]:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc) to build the fault-injecting PKCS#11 module")
    folder = tmp_path_factory.mktemp("pkcs11-fault")
    module = folder / "pkcs11_fault.so"
    done = subprocess.run(  # noqa: S603 - the system's C compiler, fixed arguments
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(module), str(SHIM_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"building pkcs11_fault.so:\n{done.stderr}"
    state = Hsm(module, folder / "hsm-down", softhsm)
    try:
        yield state
    finally:
        state.up()


@pytest.fixture(scope="module")
async def hsm_town(fault_cluster: Cluster, fault_root: Path, hsm: Hsm) -> Town:
    """Kaga in a database of its own, its keys on the SoftHSM2 token."""
    wipe_token(hsm.softhsm)
    data_dir = fault_root / "data-hsm"
    data_dir.mkdir()
    return await prepare_town(
        fault_cluster,
        data_dir,
        database="sgfaults_hsm",
        role_prefix="sgh",
        key_provider="pkcs11",
        pkcs11_library=hsm.softhsm.library,
        pkcs11_token=hsm.softhsm.token_label,
        pkcs11_pin=hsm.softhsm.user_pin,
    )


def _faulty_hsm_env(town: Town, hsm: Hsm, **extra: str) -> dict[str, str]:
    """The service's environment with the fault-injecting PKCS#11 module in front of SoftHSM2."""
    return town.env(
        SHARED_GOV_KEY_PROVIDER="pkcs11",
        SHARED_GOV_PKCS11_LIBRARY=str(hsm.module),
        SHARED_GOV_PKCS11_TOKEN=hsm.softhsm.token_label,
        SHARED_GOV_PKCS11_PIN=hsm.softhsm.user_pin,
        SOFTHSM2_CONF=str(hsm.softhsm.conf),
        SG_FAULT_PKCS11_TARGET=hsm.softhsm.library,
        SG_FAULT_PKCS11_FLAG=str(hsm.flag),
        **extra,
    )


@pytest.fixture(scope="module")
async def hsm_service(
    hsm_town: Town, hsm: Hsm, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Service]:
    env = _faulty_hsm_env(hsm_town, hsm, SHARED_GOV_POOL_MIN="2", SHARED_GOV_POOL_MAX="4")
    server = start_service(hsm_town, tmp_path_factory.mktemp("serve-hsm") / "serve.log", env)
    try:
        await server.wait_ready()
        yield server
    finally:
        hsm.up()
        server.stop()


def _headers(town: Town, request_id: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {town.staff_token()}",
        "X-Purpose": "juki.registration",
        "X-Request-ID": request_id,
    }


def _is_unavailable(r: httpx.Response) -> bool:
    return (
        r.status_code == 503
        and r.headers.get("content-type", "").startswith("application/problem+json")
        and r.headers.get("retry-after", "").isdigit()
        and r.json().get("status") == 503
    )


async def _drop_key_cache(town: Town) -> None:
    """What a key rotation does: every worker drops Kaga's unwrapped keys."""
    conn = await asyncpg.connect(town.url, timeout=30)
    try:
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, KAGA)
    finally:
        await conn.close()


async def _until(
    probe: Any, accept: Any, within: float, what: str, *, reloading: bool = False
) -> tuple[httpx.Response, float]:
    """Call ``probe()`` until ``accept(response)``; (response, seconds it took).

    ``reloading``: the server is replacing its workers (SIGHUP), which closes
    kept-alive connections to the old ones; such a transport error is "not
    yet", not a failure.
    """
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < within:
        try:
            last = await probe()
        except httpx.TransportError as exc:
            if not reloading:
                raise
            last = exc
            await asyncio.sleep(0.05)
            continue
        if accept(last):
            return last, time.monotonic() - started
        await asyncio.sleep(0.05)
    text = last.text[:300] if isinstance(last, httpx.Response) else repr(last)
    raise AssertionError(f"{what} not seen in {within:.0f} s (last: {last!r} {text})")


async def _audited(town: Town, request_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(town.url, timeout=30)
    try:
        rows = await conn.fetch(
            "SELECT client_request_id AS request_id, count(*) AS n FROM audit.events "
            "WHERE client_request_id = ANY($1::text[]) GROUP BY client_request_id",
            request_ids,
        )
        return {r["request_id"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def test_hsm_outage_cached_towns_ready_and_recovery(
    hsm_town: Town, hsm: Hsm, hsm_service: Service
) -> None:
    """Cached keys keep serving; /ready says unavailable; all is well once it is back."""
    town, service = hsm_town, hsm_service
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        created = await http.post(
            f"{BASE}/residents", json=synthetic_resident(), headers=_headers(town, "hsm-c-0")
        )
        assert created.status_code == 201, created.text
        rid = created.json()["id"]

        hsm.down()
        try:
            ready, took = await _until(
                lambda: http.get("/ready"), lambda r: r.status_code == 503, 10, "/ready 503"
            )
            assert ready.json()["checks"] == {"database": "ok", "key_provider": "unavailable"}
            assert ready.headers["retry-after"].isdigit()
            # Kaga's keys were unwrapped before the outage: Kaga is still served.
            for i in range(5):
                read = await http.get(
                    f"{BASE}/residents/{rid}", headers=_headers(town, f"hsm-c-r{i}")
                )
                assert read.status_code == 200, read.text
            print(f"HSM down: /ready 503 after {took:.2f} s; cached town served (5 reads 200)")
        finally:
            hsm.up()
        _, back = await _until(
            lambda: http.get("/ready"), lambda r: r.status_code == 200, RECOVERY_LIMIT, "/ready"
        )
        # Keys load afresh from the token once it is back.
        await _drop_key_cache(town)
        await asyncio.sleep(0.5)
        read, took = await _until(
            lambda: http.get(f"{BASE}/residents/{rid}", headers=_headers(town, "hsm-c-back")),
            lambda r: r.status_code == 200,
            RECOVERY_LIMIT,
            "a read after the HSM came back",
        )
        registered = await http.post(
            f"{BASE}/residents", json=synthetic_resident(), headers=_headers(town, "hsm-c-1")
        )
        assert registered.status_code == 201, registered.text
        print(f"HSM back: /ready 200 after {back:.2f} s, fresh key load and read in {took:.2f} s")

    conn = await asyncpg.connect(town.url, timeout=30)
    try:
        signed, took = await auditlog.until_all_signed(conn, within=SEALER_CATCH_UP)
        print(f"sealer: all {signed.events} events signed {took:.2f} s after the HSM was back")
    finally:
        await conn.close()
    service.assert_running()


async def test_hsm_outage_fresh_key_load_answers_503(
    hsm_town: Town, hsm: Hsm, hsm_service: Service
) -> None:
    """A town whose keys must be unwrapped while the HSM is away: 503, not 500.

    (``Database.town_keys`` turns the provider's errors into 503; they were
    500 before.)
    """
    town, service = hsm_town, hsm_service
    answers: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        created = await http.post(
            f"{BASE}/residents", json=synthetic_resident(), headers=_headers(town, "hsm-f-0")
        )
        assert created.status_code == 201, created.text
        rid = created.json()["id"]

        async def read(tag: str) -> httpx.Response:
            return await http.get(f"{BASE}/residents/{rid}", headers=_headers(town, tag))

        hsm.down()
        try:
            await _until(
                lambda: http.get("/ready"), lambda r: r.status_code == 503, 10, "/ready 503"
            )
            await _drop_key_cache(town)
            # Until the worker has heard the NOTIFY and no longer has Kaga's keys.
            tags = (f"hsm-f-probe{i}" for i in range(1000))
            await _until(lambda: read(next(tags)), lambda r: r.status_code != 200, 5, "no keys")
            for i in range(3):
                tag = f"hsm-f-w{i}"
                answers[tag] = await http.post(
                    f"{BASE}/residents", json=synthetic_resident(), headers=_headers(town, tag)
                )
                answers[f"hsm-f-r{i}"] = await read(f"hsm-f-r{i}")
        finally:
            hsm.up()
        _, took = await _until(
            lambda: read("hsm-f-back"),
            lambda r: r.status_code == 200,
            RECOVERY_LIMIT,
            "a read after the HSM came back",
        )
    statuses = sorted({r.status_code for r in answers.values()})
    print(f"fresh key loads while the HSM was down answered {statuses}; read again in {took:.2f} s")
    # No answer without its keys was recorded as an access.
    assert await _audited(town, list(answers)) == {}
    service.assert_running()
    wrong = {tag: r for tag, r in answers.items() if not _is_unavailable(r)}
    for tag, r in wrong.items():
        raise AssertionError(f"{tag}: {r.status_code} {r.text[:300]}")


# --- SoftHSM2's token directory removed ------------------------------------------------


@dataclass
class OwnToken:
    """A SoftHSM2 token of this test alone (its directory is taken away)."""

    conf: Path
    tokens: Path
    parked: Path


@pytest.fixture
def own_token(hsm: Hsm, tmp_path: Path) -> OwnToken:
    util = shutil.which("softhsm2-util")
    assert util is not None  # the softhsm fixture behind ``hsm`` checked it
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    subprocess.run(  # noqa: S603 - the system's softhsm2-util, fixed arguments
        [util, "--init-token", "--free", "--label", "faults", "--pin", "1234", "--so-pin", "5678"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        timeout=60,
        check=True,
    )
    return OwnToken(conf, tokens, tmp_path / "parked")


async def test_softhsm_token_directory_removed(
    fault_cluster: Cluster, fault_root: Path, hsm: Hsm, own_token: OwnToken, tmp_path: Path
) -> None:
    """The token's files vanish under a running worker (a lost or wrongly restored
    HSM partition looks the same: a token without the towns' keys).

    Required: no 500, no hang, the service keeps running, and after the files
    are back a reload (SIGHUP: fresh workers, fresh sessions) serves again.
    An open SoftHSM2 session then finds no keys at all, so a fresh key load
    raises KeyNotFound for a town the catalog has keys for: 503 (it was 404,
    as for a town that does not exist), and ``/ready`` 503 (``keys_missing``:
    its probe asks for the KEK versions of a real town).
    """
    database = "sgfaults_hsm_dir"
    conn = await asyncpg.connect(fault_cluster.admin_url, timeout=30)
    try:
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    data_dir = fault_root / "data-hsm-dir"
    data_dir.mkdir()
    town = Town(
        fault_cluster,
        database,
        dataclasses.replace(
            load_settings(),
            env="test",
            data_dir=data_dir,
            database_url=fault_cluster.url(database),
            role_prefix="sghd",
        ),
        builtin_issuer(data_dir, ISSUER, "shared-gov"),
    )
    env = town.env(
        SHARED_GOV_POOL_MIN="2",
        SHARED_GOV_POOL_MAX="4",
        SHARED_GOV_KEY_PROVIDER="pkcs11",
        SHARED_GOV_PKCS11_LIBRARY=hsm.softhsm.library,
        SHARED_GOV_PKCS11_TOKEN="faults",
        SHARED_GOV_PKCS11_PIN="1234",
        SOFTHSM2_CONF=str(own_token.conf),
    )
    # Migrated and onboarded by the CLI: this process's SoftHSM2 library is
    # initialised with the shared test token's configuration, not this one.
    for args in (["migrate"], ["tenants", "onboard", str(TENANTS_DIR / "kaga.toml")]):
        done = await asyncio.to_thread(
            subprocess.run,  # our own CLI, fixed arguments
            [CLI, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"shared-gov {' '.join(args)}:\n{done.stderr[-3000:]}"
    service = start_service(town, tmp_path / "serve.log", env)
    try:
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            created = await http.post(
                f"{BASE}/residents", json=synthetic_resident(), headers=_headers(town, "hsm-d-0")
            )
            assert created.status_code == 201, created.text
            rid = created.json()["id"]

            async def read(tag: str) -> httpx.Response:
                return await http.get(f"{BASE}/residents/{rid}", headers=_headers(town, tag))

            shutil.move(own_token.tokens, own_token.parked)
            try:
                await _drop_key_cache(town)
                tags = (f"hsm-d-probe{i}" for i in range(1000))
                lost, _ = await _until(
                    lambda: read(next(tags)), lambda r: r.status_code != 200, 5, "no keys"
                )
                ready = await http.get("/ready")
            finally:
                shutil.move(own_token.parked, own_token.tokens)
            print(
                f"token directory removed: fresh key load answered {lost.status_code}, "
                f"/ready {ready.status_code} {ready.json().get('checks')}"
            )
            assert lost.status_code != 500, lost.text
            service.assert_running()
            # Files back: the running worker's session (observed, not required)...
            await _drop_key_cache(town)
            await asyncio.sleep(0.5)
            stale = await read("hsm-d-stale")
            # ... and fresh workers with fresh sessions (required).
            os.kill(service.process.pid, signal.SIGHUP)
            _, took = await _until(
                lambda: read("hsm-d-back"),
                lambda r: r.status_code == 200,
                30,
                "a read",
                reloading=True,
            )
            print(
                f"files back: the running worker answered {stale.status_code}; "
                f"after a reload (SIGHUP) 200 in {took:.2f} s"
            )
    finally:
        service.stop()
    assert _is_unavailable(lost), f"{lost.status_code} {lost.text[:300]}"
    assert ready.status_code == 503


# --- a worker dies while the HSM is away ------------------------------------------------


async def test_worker_lost_during_hsm_outage(hsm_town: Town, hsm: Hsm, tmp_path: Path) -> None:
    """Two workers with respawn on (production), the HSM away, one worker SIGKILLed.

    Its replacement cannot start (the key provider logs in at start-up), so
    granian sees a crash loop and ``serve`` exits non-zero — taking the other
    worker, which was still serving cached towns, down with it. Then the
    supervisor's restart policy (systemd ``Restart=on-failure``, a container
    restart policy) takes over. Required: that exit, within ``EXIT_LIMIT``,
    no 500 before it, and a restarted service that serves once the HSM is back.
    """
    env = _faulty_hsm_env(
        hsm_town,
        hsm,
        SHARED_GOV_POOL_MIN="1",
        SHARED_GOV_POOL_MAX="2",
        SHARED_GOV_RESPAWN_WORKERS="1",
    )
    service = start_service(hsm_town, tmp_path / "serve.log", env, workers=2)
    restarted: Service | None = None
    try:
        await service.wait_ready()
        spawned = _spawned(service)
        deadline = time.monotonic() + 30
        while len(spawned) < 2 or not _all_started(service):
            assert time.monotonic() < deadline, service.logs()[-3000:]
            await asyncio.sleep(0.1)
            spawned = _spawned(service)
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            created = await http.post(
                f"{BASE}/residents",
                json=synthetic_resident(),
                headers=_headers(hsm_town, "hsm-k-0"),
            )
            assert created.status_code in (201, 503), created.text
            hsm.down()
            try:
                os.kill(spawned[1], signal.SIGKILL)
                started = time.monotonic()
                statuses: set[int] = set()
                while service.process.poll() is None and time.monotonic() - started < EXIT_LIMIT:
                    with contextlib.suppress(httpx.TransportError):
                        statuses.add((await http.get("/health")).status_code)
                    await asyncio.sleep(0.1)
                took = time.monotonic() - started
            finally:
                hsm.up()
        code = service.process.poll()
        lines = [str(e.get("event")) for e in service.log_events()]
        print(
            f"worker killed with the HSM away: serve exited {code} after {took:.2f} s "
            f"(answers meanwhile: {sorted(statuses)}); crash loop logged: "
            f"{'Worker crash loop detected, exiting' in lines}"
        )
        assert code is not None, f"serve still running:\n{service.logs()[-3000:]}"
        assert code != 0
        # The replacement died of the key provider (its traceback is on stderr).
        assert "KeyProviderError" in service.logs()
        assert 500 not in statuses
        # The supervisor's restart, with the HSM back.
        restarted = start_service(hsm_town, tmp_path / "restarted.log", env, workers=2)
        await restarted.wait_ready()
    finally:
        hsm.up()
        service.stop()
        if restarted is not None:
            restarted.stop()


def _spawned(service: Service) -> dict[int, int]:
    found: dict[int, int] = {}
    for event in service.log_events():
        parts = str(event.get("event", "")).split()
        if parts[:1] == ["Spawning"] and parts[-2:-1] == ["PID:"]:
            found[int(parts[1].removeprefix("worker-"))] = int(parts[-1])
    return found


def _all_started(service: Service) -> bool:
    lines = {str(e.get("event")) for e in service.log_events()}
    return {"Started worker-1", "Started worker-2"} <= lines
