"""The first hour with a fresh clone: tokens that do not depend on the port,
``make run`` saying where everything is, and a quiet stderr for the README's
commands (run as a newcomer runs them: as processes, with XDG_RUNTIME_DIR unset
as in containers and CI)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared_gov.auth.issuer import builtin_issuer
from shared_gov.auth.verify import TokenVerifier
from shared_gov.cli.main import app, where_things_are
from shared_gov.db import Database
from shared_gov.settings import DEV_ISSUER, Settings, SettingsError, get_settings, load_settings
from tests.conftest import KAGA, KOMATSU

runner = CliRunner()
CLI = Path(sys.executable).with_name("shared-gov")


@pytest.fixture
def dev_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A development environment with no issuer set and its own data directory."""
    for name in ("SHARED_GOV_ISSUER", "SHARED_GOV_PORT", "SHARED_GOV_HOST", "SHARED_GOV_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_the_dev_issuer_does_not_depend_on_the_port(
    dev_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever SHARED_GOV_PORT and SHARED_GOV_HOST, the built-in issuer is the same;
    an explicit SHARED_GOV_ISSUER still wins; production refuses the default."""
    seen = set()
    hosts = (("127.0.0.1", "8000"), ("0.0.0.0", "8001"), ("localhost", "9999"))  # noqa: S104
    for host, port in hosts:
        monkeypatch.setenv("SHARED_GOV_HOST", host)
        monkeypatch.setenv("SHARED_GOV_PORT", port)
        seen.add(load_settings().issuer)
    assert seen == {DEV_ISSUER}
    monkeypatch.setenv("SHARED_GOV_ISSUER", "https://gov-cloud.example")
    assert load_settings().issuer == "https://gov-cloud.example"
    monkeypatch.delenv("SHARED_GOV_ISSUER")
    monkeypatch.setenv("SHARED_GOV_ENV", "prod")
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", "postgresql://db.example/sg")
    with pytest.raises(SettingsError, match="SHARED_GOV_ISSUER is required"):
        load_settings()


async def test_a_cli_token_works_whatever_port_either_side_has(
    dev_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shared-gov token` run with SHARED_GOV_PORT=9999 is accepted by a service on
    8000 sharing the data directory: the signing key binds them, not the port."""
    monkeypatch.setenv("SHARED_GOV_PORT", "9999")
    result = runner.invoke(app, ["token", "--tenant", KAGA, "--staff", "k-0001"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("SHARED_GOV_PORT", "8000")
    get_settings.cache_clear()
    service = load_settings()
    issuer = builtin_issuer(service.data_dir, service.issuer, service.audience)
    verifier = TokenVerifier(
        issuer=issuer.issuer, audience=issuer.audience, keys=issuer.public_keyset()
    )
    principal = await verifier.verify(result.stdout.strip())
    assert (principal.subject, principal.tenant) == ("k-0001", KAGA)


def test_the_discovery_document_points_where_the_request_came(dev_env: Path) -> None:
    """A URN issuer (development) has its JWKS where the client reached the service;
    a URL issuer (production) under itself."""
    dev = builtin_issuer(dev_env, DEV_ISSUER, "shared-gov")
    assert dev.discovery("http://127.0.0.1:8123/")["jwks_uri"] == (
        "http://127.0.0.1:8123/.well-known/jwks.json"
    )
    assert dev.discovery("http://127.0.0.1:8123/")["issuer"] == DEV_ISSUER
    prod = dataclasses.replace(dev, issuer="https://gov-cloud.example")
    assert prod.discovery("http://10.0.0.5:8000/")["jwks_uri"] == (
        "https://gov-cloud.example/.well-known/jwks.json"
    )


def test_make_run_says_where_things_are_how_to_change_the_port_and_stop(dev_env: Path) -> None:
    settings = dataclasses.replace(load_settings(), host="0.0.0.0", port=8123)  # noqa: S104
    text = "\n".join(where_things_are(settings))
    assert "http://127.0.0.1:8123/docs" in text
    assert "http://127.0.0.1:8123/api/v1/tenants/" in text
    assert "http://127.0.0.1:8123/.well-known/openid-configuration" in text
    assert str(dev_env) in text
    assert "shared-gov token --tenant" in text
    assert "do not depend on the port" in text
    assert "SHARED_GOV_PORT=8001 make run" in text
    assert "Ctrl-C" in text


# --- stderr stays quiet --------------------------------------------------------------


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _newcomer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARED_GOV_")}
    env.pop("XDG_RUNTIME_DIR", None)  # containers, CI, `su`: platformdirs warned about it
    env["COLUMNS"] = "120"
    env.update(extra)
    return env


def test_the_readmes_commands_write_nothing_to_stderr(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    """Each command of the README, run as a process against a migrated database with
    two towns: it succeeds and writes nothing on stderr — no warning, no empty line
    from a progress bar nobody sees — but `migrate`, whose one line is its report."""
    del db  # migrated and onboarded
    assert settings.database_url
    env = _newcomer_env(
        SHARED_GOV_DATABASE_URL=settings.database_url,
        SHARED_GOV_ROLE_PREFIX=settings.role_prefix,
        SHARED_GOV_DATA_DIR=str(settings.data_dir),
        SHARED_GOV_ENV="test",
    )
    commands = [
        ["token", "--tenant", KAGA, "--staff", "k-0001", "--department", "kaigo", "--mfa"],
        ["token", "--operator"],
        ["policy", "validate"],
        [
            "policy",
            "explain",
            "--tenant",
            KAGA,
            "--staff",
            "k-0001",
            "--purpose",
            "kaigo.qualification",
            "--field",
            "individual_number",
        ],
        ["tenants", "list"],
        ["keys", "status", "--tenant", KAGA],
        ["audit", "verify", "--tenant", KOMATSU],
        ["residents", "export", "--tenant", KOMATSU, str(tmp_path / "register.csv")],
    ]
    for args in commands:
        done = _run(args, env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert done.stderr == "", (args, done.stderr)
        assert done.stdout.strip(), args
    migrated = _run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    (report,) = migrated.stderr.splitlines()
    assert report.endswith(" tenants, 0 behind, 0 upgraded, 0 failed")


def test_a_fresh_clones_first_commands_are_quiet_and_say_what_to_do(tmp_path: Path) -> None:
    """No database URL (the embedded PostgreSQL in a new data directory): a command
    before any migration says in one line to migrate (no traceback); `migrate`
    prints its one report line; then `tenants list` works with an empty stderr."""
    env = _newcomer_env(SHARED_GOV_DATA_DIR=str(tmp_path / "data"))
    early = _run(["tenants", "list"], env)
    assert early.returncode == 2, (early.stdout, early.stderr)
    assert "Traceback" not in early.stderr
    assert "shared-gov migrate" in " ".join(early.stderr.split())
    migrated = _run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stderr == "0 tenants, 0 behind, 0 upgraded, 0 failed\n", migrated.stderr
    listed = _run(["tenants", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == "", listed.stderr
