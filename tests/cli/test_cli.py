"""The ``shared-gov`` command: tokens, the issuer key file, tenants and migrate."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc import jwt
from typer.testing import CliRunner

from shared_gov.auth.issuer import KEY_FILE, builtin_issuer
from shared_gov.cli.main import app
from shared_gov.db import Database
from shared_gov.settings import Settings, get_settings
from tests.conftest import KAGA, TENANTS_DIR

runner = CliRunner()


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, db: Database, tmp_path: Path
) -> Iterator[Path]:
    """Point the CLI at the (migrated, onboarded) test database, its role prefix and a
    fresh data directory."""
    assert settings.database_url
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHARED_GOV_ROLE_PREFIX", settings.role_prefix)
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHARED_GOV_ISSUER", "http://127.0.0.1:8000")
    monkeypatch.setenv("COLUMNS", "200")  # rich tables must not wrap the asserted text
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_token_prints_only_a_verifiable_token(cli_env: Path) -> None:
    """`shared-gov token` prints one line: a JWT signed by the key in the data dir,
    which was created with mode 0600, carrying the claims asked for."""
    result = runner.invoke(
        app,
        ["token", "--tenant", KAGA, "--staff", "k-0001", "--department", "kaigo", "--mfa"],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    key_file = cli_env / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    issuer = builtin_issuer(cli_env, "http://127.0.0.1:8000", "shared-gov")
    claims = jwt.decode(lines[0], issuer.public_keyset(), algorithms=["RS256"]).claims
    assert claims["tenant"] == KAGA
    assert claims["sub"] == "k-0001"
    assert claims["dept"] == "kaigo"
    assert claims["roles"] == ["staff"]
    assert "mfa" in claims["amr"]
    assert claims["exp"] - claims["iat"] == 8 * 3600


def test_operator_token_has_no_tenant(cli_env: Path) -> None:
    """`--operator` gives a platform token without a tenant claim."""
    result = runner.invoke(app, ["token", "--operator", "--ttl", "15m"])
    assert result.exit_code == 0
    issuer = builtin_issuer(cli_env, "http://127.0.0.1:8000", "shared-gov")
    claims = jwt.decode(result.stdout.strip(), issuer.public_keyset(), algorithms=["RS256"]).claims
    assert claims["roles"] == ["operator"]
    assert "tenant" not in claims
    assert claims["exp"] - claims["iat"] == 900


def test_token_rejects_bad_arguments(cli_env: Path) -> None:
    """A staff token needs a town and a staff id; roles are a closed list."""
    assert runner.invoke(app, ["token", "--staff", "x"]).exit_code != 0
    assert (
        runner.invoke(app, ["token", "--tenant", KAGA, "--staff", "x", "--role", "root"]).exit_code
        != 0
    )
    assert runner.invoke(app, ["token", "--operator", "--ttl", "soon"]).exit_code != 0


def test_token_refuses_a_lifetime_the_service_would_refuse(cli_env: Path) -> None:
    """Above the maximum lifetime (12 h; 24 h for integrations) the service answers 401,
    so the command refuses to mint such a token at all."""
    staff = ["token", "--tenant", KAGA, "--staff", "x"]
    assert runner.invoke(app, [*staff, "--ttl", "13h"]).exit_code != 0
    assert runner.invoke(app, ["token", "--operator", "--ttl", "1d"]).exit_code != 0
    assert runner.invoke(app, [*staff, "--ttl", "12h"]).exit_code == 0
    assert runner.invoke(app, [*staff, "--role", "integration", "--ttl", "1d"]).exit_code == 0


def test_tenants_onboard_list_and_migrate(cli_env: Path) -> None:
    """Onboarding an unchanged manifest reports `unchanged`; list shows the town;
    a no-op migrate succeeds and upgrades nothing."""
    onboard = runner.invoke(app, ["tenants", "onboard", str(TENANTS_DIR / "kaga.toml")])
    assert onboard.exit_code == 0, onboard.output
    assert f"{KAGA} 加賀市: unchanged" in onboard.stdout
    listing = runner.invoke(app, ["tenants", "list"])
    assert listing.exit_code == 0
    assert KAGA in listing.stdout
    migrate = runner.invoke(app, ["migrate"])
    assert migrate.exit_code == 0, migrate.output
    assert "0 behind" in migrate.output


def test_onboard_refuses_an_invalid_manifest(cli_env: Path, tmp_path: Path) -> None:
    """A manifest with a bad check digit exits 2 and names the field."""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        (TENANTS_DIR / "kaga.toml").read_text(encoding="utf-8").replace("172065", "172060"),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["tenants", "onboard", str(bad)])
    assert result.exit_code == 2
    assert "/code" in result.output


def test_offboard_needs_confirmation(cli_env: Path) -> None:
    """Offboarding without --yes does nothing and says why."""
    result = runner.invoke(app, ["tenants", "offboard", KAGA])
    assert result.exit_code == 2
    assert "--yes" in result.output


def test_policy_explain_prints_each_field_and_why(cli_env: Path) -> None:
    """`policy explain` shows the decision and the failed condition per field."""
    result = runner.invoke(
        app,
        [
            "policy",
            "explain",
            "--tenant",
            KAGA,
            "--staff",
            "k-0001",
            "--purpose",
            "kaigo.premium",
            "--department",
            "kaigo",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "individual_number" in result.stdout
    assert "does not cover individual_number" in result.stdout
    one = runner.invoke(
        app,
        [
            "policy",
            "explain",
            "--tenant",
            KAGA,
            "--staff",
            "k-0001",
            "--purpose",
            "kaigo.qualification",
            "--department",
            "kaigo",
            "--field",
            "individual_number",
        ],
    )
    assert "two-factor authentication required" in one.stdout
    with_mfa = runner.invoke(
        app,
        [
            "policy",
            "explain",
            "--tenant",
            KAGA,
            "--staff",
            "k-0001",
            "--purpose",
            "kaigo.qualification",
            "--department",
            "kaigo",
            "--field",
            "individual_number",
            "--mfa",
        ],
    )
    assert "allow" in with_mfa.stdout


@pytest.mark.parametrize("which", ["missing", "directory"])
def test_onboard_of_a_file_that_cannot_be_read_is_one_line(
    cli_env: Path, tmp_path: Path, which: str
) -> None:
    """A path that does not exist (or is a directory): exit 2 and one clear line."""
    path = tmp_path / "no-such-town.toml" if which == "missing" else tmp_path
    result = runner.invoke(app, ["tenants", "onboard", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "cannot read the manifest" in lines[0]
