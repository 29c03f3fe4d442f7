"""Operations endpoints in-process: ``/health``, ``/ready``, ``/metrics``; the
production settings' refusals; the metrics directory and JSON log formats.

The same endpoints served by real granian workers on the PKCS#11 provider
are exercised in ``tests/deploy/test_production_serve.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from shared_gov import metrics, serving
from shared_gov.logs import JsonLogFormatter
from shared_gov.settings import Settings, SettingsError, load_settings
from tests.conftest import KAGA, auth
from tests.factories import resident_body

RESIDENT_ROUTE = "/api/v1/tenants/{code}/residents/{resident_id}"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in an exposition, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        metric, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', metric))
        if metric.split("{")[0] == name and found == labels:
            return float(value)
    return None


async def test_health_and_ready_answer_without_a_token(client: Any) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    r = await client.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "key_provider": "ok"}}


async def test_ready_fails_when_the_key_provider_fails(
    client: Any, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_tenant: str) -> list[int]:
        raise OSError("token removed")

    monkeypatch.setattr(app.state.services.db.keyring.provider, "kek_versions", broken)
    r = await client.get("/ready")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert r.json()["checks"] == {"database": "ok", "key_provider": "unavailable"}
    monkeypatch.undo()
    assert (await client.get("/ready")).status_code == 200


async def test_keys_missing_from_the_provider_are_503_and_not_ready(
    client: Any, app: Litestar, tokens: dict[str, str]
) -> None:
    """A key provider that answers but lacks the towns' keys (a wrongly restored
    HSM partition, the wrong token or key directory configured): the towns are
    not "not found" (404) — the platform is unavailable (503), and /ready says so."""
    created = await client.post(
        f"/api/v1/tenants/{KAGA}/residents", json=resident_body(), headers=auth(tokens["kaga"])
    )
    assert created.status_code == 201, created.text
    path = f"/api/v1/tenants/{KAGA}/residents/{created.json()['id']}"
    keyring = app.state.services.db.keyring
    if not hasattr(keyring.provider, "directory"):
        pytest.skip("the local key provider's directory is what this test takes away")
    keys_dir: Path = keyring.provider.directory
    parked = keys_dir.with_name(keys_dir.name + ".parked")
    await asyncio.to_thread(keys_dir.rename, parked)
    try:
        keyring.invalidate()  # as after a rotation's NOTIFY: keys must load afresh
        r = await client.get(path, headers=auth(tokens["kaga"]))
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers.get("retry-after")
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["key_provider"] == "keys_missing"
    finally:
        await asyncio.to_thread(parked.rename, keys_dir)
    keyring.invalidate()
    assert (await client.get(path, headers=auth(tokens["kaga"]))).status_code == 200
    assert (await client.get("/ready")).status_code == 200


async def test_ready_fails_when_the_database_fails(
    client: Any, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Unreachable:
        def acquire(self, timeout: float | None = None) -> Any:
            raise ConnectionRefusedError("no route")

    monkeypatch.setattr(app.state.services.db, "_pool", Unreachable())
    r = await client.get("/ready")
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": "unavailable", "key_provider": "ok"}


async def test_metrics_count_by_route_template_never_by_path(
    client: Any, tokens: dict[str, str]
) -> None:
    created = await client.post(
        f"/api/v1/tenants/{KAGA}/residents", json=resident_body(), headers=auth(tokens["kaga"])
    )
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    before = (await client.get("/metrics")).text
    read_before = sample(
        before,
        "shared_gov_http_requests_total",
        method="GET",
        route=RESIDENT_ROUTE,
        status="200",
    )
    assert (await client.get(created.headers["location"], headers=auth(tokens["kaga"]))).is_success
    probe = await client.request("BREW", f"/no/such/{uuid.uuid4()}")
    assert probe.status_code in (404, 405)

    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        sample(
            text, "shared_gov_http_requests_total", method="GET", route=RESIDENT_ROUTE, status="200"
        )
        == (read_before or 0) + 1
    )
    assert (
        sample(
            text,
            "shared_gov_http_request_duration_seconds_count",
            method="GET",
            route=RESIDENT_ROUTE,
            status="200",
        )
        or 0
    ) >= 1
    # Unrouted probes and unknown methods cannot mint label values.
    assert (
        sample(
            text,
            "shared_gov_http_requests_total",
            method="OTHER",
            route="unmatched",
            status=str(probe.status_code),
        )
        or 0
    ) >= 1
    assert (sample(text, "shared_gov_policy_decisions_total", outcome="allow") or 0) > 0
    assert (sample(text, "shared_gov_key_cache_lookups_total", result="hit") or 0) > 0
    lag = sample(text, "shared_gov_audit_sealer_lag_seconds")
    assert lag is not None
    assert lag >= 0
    # No resident id, town code or name in any label.
    assert rid not in text
    values = {value for _name, value in re.findall(r'(\w+)="([^"]*)"', text)}
    assert not [v for v in values if UUID.search(v) or KAGA in v or "山田" in v]
    assert "/api/v1/tenants/{code}/residents" in values


async def test_decision_counter_counts_denials(client: Any, tokens: dict[str, str]) -> None:
    before = sample(
        (await client.get("/metrics")).text, "shared_gov_policy_decisions_total", outcome="deny"
    )
    # 税務課's purpose does not cover registration: a record-level denial.
    r = await client.post(
        f"/api/v1/tenants/{KAGA}/residents",
        json=resident_body(),
        headers=auth(tokens["kaga"], "zeimu.assessment"),
    )
    assert r.status_code == 403, r.text
    after = sample(
        (await client.get("/metrics")).text, "shared_gov_policy_decisions_total", outcome="deny"
    )
    assert (after or 0) > (before or 0)


# --- production settings ----------------------------------------------------------------


def prod(settings: Settings, **changes: Any) -> Settings:
    base = dataclasses.replace(
        settings,
        env="prod",
        issuer="https://gov-cloud.example",
        key_provider="pkcs11",
        pkcs11_library="/usr/lib/softhsm/libsofthsm2.so",
        pkcs11_token="shared-gov",
        pkcs11_pin="1234",
    )
    return dataclasses.replace(base, **changes)


def test_production_settings_accept_a_complete_configuration(settings: Settings) -> None:
    prod(settings).check_safe()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"database_url": None}, "SHARED_GOV_DATABASE_URL is required"),
        ({"issuer": "http://127.0.0.1:8000"}, "loopback"),
        ({"issuer": "http://0.0.0.0:8000"}, "public https:// URL"),
        ({"issuer": "http://gov-cloud.example"}, "public https:// URL"),
        ({"key_provider": "local"}, "SHARED_GOV_KEY_PROVIDER=pkcs11 is required"),
        ({"pkcs11_pin": None}, "SHARED_GOV_PKCS11_PIN"),
        ({"audit": False}, "SHARED_GOV_AUDIT=0"),
        ({"pool_min": 5, "pool_max": 2}, "SHARED_GOV_POOL_MIN"),
    ],
)
def test_production_settings_refuse_laptop_defaults(
    settings: Settings, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        prod(settings, **changes).check_safe()


def test_pin_comes_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("s3cret-pin\n")
    monkeypatch.setenv("SHARED_GOV_PKCS11_PIN", "from-env")
    monkeypatch.setenv("SHARED_GOV_PKCS11_PIN_FILE", str(pin_file))
    assert load_settings().pkcs11_pin == "s3cret-pin"
    monkeypatch.setenv("SHARED_GOV_PKCS11_PIN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="PIN_FILE cannot be read"):
        load_settings()


# --- multi-process metrics and logs ---------------------------------------------------------


def test_metrics_dir_is_emptied_of_old_metric_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_123.db").write_bytes(b"old")
    (shared / "keep.txt").write_text("not ours")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(shared))
    assert serving._metrics_dir(workers=4) is None
    assert sorted(p.name for p in shared.iterdir()) == ["keep.txt"]


def test_several_workers_get_a_private_metrics_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    assert serving._metrics_dir(workers=1) is None
    private = serving._metrics_dir(workers=2)
    try:
        assert private is not None
        assert private.is_dir()
        assert os.environ[metrics.MULTIPROC_ENV] == str(private)
    finally:
        # Not monkeypatch: it would restore the variable (set by the code under
        # test) at teardown, and later child processes would find it.
        os.environ.pop(metrics.MULTIPROC_ENV, None)
        if private is not None:
            private.rmdir()


def test_library_log_records_become_json_lines() -> None:
    record = logging.LogRecord(
        "_granian", logging.INFO, __file__, 1, "Spawning worker-%d", (1,), None
    )
    line = json.loads(JsonLogFormatter().format(record))
    assert line["event"] == "Spawning worker-1"
    assert line["level"] == "info"
    assert line["logger"] == "_granian"


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARED_GOV_TRUSTED_PROXIES", "10.0.0.0/24, 127.0.0.1")
    assert load_settings().trusted_proxies == ("10.0.0.0/24", "127.0.0.1")
    monkeypatch.setenv("SHARED_GOV_TRUSTED_PROXIES", "proxy.example")
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings()


async def _client_seen(trusted: tuple[str, ...], peer: str, forwarded: str) -> Any:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["client"] = scope["client"]

    wrapped = serving.behind_proxies(app, trusted)
    scope = {
        "type": "http",
        "client": (peer, 40000),
        "scheme": "http",
        "headers": [(b"x-forwarded-for", forwarded.encode())],
    }
    await wrapped(scope, None, None)  # type: ignore[arg-type]
    return seen["client"][0]


async def test_forwarded_client_is_believed_from_trusted_proxies_only() -> None:
    # The proxy appends the address it saw; anything left of it is the client's claim.
    assert await _client_seen(("10.0.0.0/24",), "10.0.0.7", "198.51.100.1, 203.0.113.9") == (
        "203.0.113.9"
    )
    assert await _client_seen(("10.0.0.0/24",), "192.0.2.50", "203.0.113.9") == "192.0.2.50"
    assert await _client_seen((), "10.0.0.7", "203.0.113.9") == "10.0.0.7"
