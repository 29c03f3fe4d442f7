"""``shared-gov invoices rules install|status`` and ``shared-gov invoices check``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared_gov.cli.main import app
from shared_gov.settings import get_settings

from . import factory

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_status_without_rules_says_invoices_cannot_be_checked(data_dir: Path) -> None:
    result = runner.invoke(app, ["invoices", "rules", "status"])
    assert result.exit_code == 1
    assert "not installed" in result.output
    check = runner.invoke(app, ["invoices", "check", str(data_dir)])
    assert check.exit_code == 2


def test_install_then_check_a_good_and_a_bad_invoice(
    data_dir: Path, einvoice: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["invoices", "rules", "install", str(einvoice)])
    assert result.exit_code == 0, result.output
    assert "installed pint-jp 1.1.3" in result.output
    assert (data_dir / "invoices/rules/installed.json").exists()
    assert runner.invoke(app, ["invoices", "rules", "status"]).exit_code == 0

    good = tmp_path / "good.xml"
    good.write_bytes(factory.xml(factory.document()))
    ok = runner.invoke(app, ["invoices", "check", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "accepted" in ok.output

    bad = tmp_path / "bad.json"
    bad.write_bytes(factory.json(factory.document(seller_t="T7123456789013")))
    warned = runner.invoke(app, ["invoices", "check", str(bad)])
    assert warned.exit_code == 0
    assert "sg-jp-01" in warned.output
    strict = runner.invoke(app, ["invoices", "check", str(bad), "--t-number", "fatal"])
    assert strict.exit_code == 1
    assert "/seller/tax_id" in strict.output
    assert "rejected" in strict.output


def test_a_tampered_package_is_refused(data_dir: Path, einvoice: Path, tmp_path: Path) -> None:
    import shutil

    package = tmp_path / "pkg"
    shutil.copytree(einvoice / "pint-jp-1.1.3", package)
    sch = package / "schematron/PINT-jurisdiction-aligned-rules.sch"
    sch.write_bytes(sch.read_bytes() + b" ")
    result = runner.invoke(app, ["invoices", "rules", "install", str(package)])
    assert result.exit_code == 2
    assert "matches no known release" in result.output
