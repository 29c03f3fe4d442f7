"""Policy files: validation at load, towns may only narrow, and the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared_gov.cli.main import app
from shared_gov.policy import Actor, PolicyEngine, PolicyError, Query, Resource
from shared_gov.policy.purposes import load_purposes, purposes

ROOT = Path(__file__).resolve().parents[2]
KAGA, KOMATSU = "172065", "172031"
runner = CliRunner()


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    """A copy of the project's policies to modify."""
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target)
    return target


def _kaigo(town: str) -> Actor:
    return Actor(town, "kaigo", frozenset({"staff"}), True, frozenset({"kaigo.qualification"}))


def test_project_policies_are_valid() -> None:
    """The shipped policies and purposes load (what CI checks)."""
    PolicyEngine(ROOT / "policies")
    assert "kaigo.qualification" in load_purposes(ROOT / "policies" / "purposes.toml")


def test_a_town_may_narrow_for_itself_only(policies: Path) -> None:
    """A town's forbid applies to that town's requests and to no other town."""
    town = policies / "tenants" / KAGA
    town.mkdir(parents=True)
    (town / "narrow.cedar").write_text(
        '@id("town-kaga-no-birth-date-for-kaigo")\n'
        'forbid (principal is SharedGov::Staff, action == SharedGov::Action::"read", '
        "resource is SharedGov::Field)\n"
        'when { resource.name == "birth_date" && principal.department == "kaigo" };\n',
        encoding="utf-8",
    )
    engine = PolicyEngine(policies)
    purpose = purposes()["kaigo.qualification"]
    kaga = engine.decide(
        _kaigo(KAGA), Query("read", Resource("Field", KAGA, "birth_date"), purpose)
    )
    assert not kaga.allowed
    assert kaga.policy_ids == ("town-kaga-no-birth-date-for-kaigo",)
    komatsu = engine.decide(
        _kaigo(KOMATSU), Query("read", Resource("Field", KOMATSU, "birth_date"), purpose)
    )
    assert komatsu.allowed


def test_a_town_cannot_widen(policies: Path) -> None:
    """A permit in a town's folder is refused at load time."""
    town = policies / "tenants" / KAGA
    town.mkdir(parents=True)
    (town / "widen.cedar").write_text(
        '@id("town-kaga-operators-read")\n'
        "permit (principal is SharedGov::Operator, action, resource);\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as info:
        PolicyEngine(policies)
    assert "towns may only forbid" in str(info.value)


def test_invalid_policy_is_refused(policies: Path) -> None:
    """A policy reading an attribute the schema does not have fails validation."""
    (policies / "broken.cedar").write_text(
        '@id("broken")\n'
        "permit (principal is SharedGov::Staff, action, resource) "
        'when { principal.rank == "chief" };\n',
        encoding="utf-8",
    )
    with pytest.raises(PolicyError):
        PolicyEngine(policies)


def test_policies_need_ids(policies: Path) -> None:
    (policies / "anonymous.cedar").write_text(
        "forbid (principal is SharedGov::Operator, action, resource);\n", encoding="utf-8"
    )
    with pytest.raises(PolicyError) as info:
        PolicyEngine(policies)
    assert "@id" in str(info.value)


def test_cli_validate(policies: Path) -> None:
    """`shared-gov policy validate` exits 0 on good policies and 1 with the reason on bad."""
    good = runner.invoke(app, ["policy", "validate", "--policies-dir", str(policies)])
    assert good.exit_code == 0, good.output
    assert "policies valid" in good.output
    (policies / "broken.cedar").write_text("permit (", encoding="utf-8")
    bad = runner.invoke(app, ["policy", "validate", "--policies-dir", str(policies)])
    assert bad.exit_code == 1
    assert "invalid" in bad.output


def test_purposes_file_is_checked(tmp_path: Path) -> None:
    """A purpose naming an unknown field, or the individual number without being a
    listed use, is refused."""
    bad = tmp_path / "purposes.toml"
    bad.write_text(
        '[purposes."x"]\nname = "x"\nlegal_basis = "x"\nfields = ["shoe_size"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="unknown"):
        load_purposes(bad)
    bad.write_text(
        '[purposes."x"]\nname = "x"\nlegal_basis = "x"\nfields = ["individual_number"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="listed use"):
        load_purposes(bad)
