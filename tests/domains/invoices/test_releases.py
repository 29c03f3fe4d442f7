"""Installing the official releases: known SHA-256s only, complete, compiled, verified.

A package is the folder the release zip unpacks to, the zip itself, or a
folder holding several; a file altered by one byte, an unknown version or an
incomplete package is refused with nothing installed; an installed file
altered afterwards is refused when the rules are loaded; without rules the
intake knows it cannot check (and says why).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from shared_gov.domains.invoices import checks, releases


def _zip_of(folder: Path, target: Path) -> Path:
    """The release package as OpenPeppol publishes it (``trn-invoice/…`` inside a zip)."""
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, "trn-invoice/" + str(file.relative_to(folder)))
    return target


def test_a_folder_of_every_package_installs_all_four(rules_dir: Path) -> None:
    assert releases.status(rules_dir) == {
        "pint-jp": "1.1.3",
        "pint-jp-ntr": "1.1.3",
        "pint-jp-sb": "1.1.3",
        "ubl": "2.1",
    }
    manifest = json.loads((rules_dir / releases.INSTALLED).read_text())
    assert manifest["pint-jp"]["files"]["PINT-jurisdiction-aligned-rules.xslt"] == (
        "1f10e9d7b81db047f9158005c008c4cad025ea08cea903caf025bdf6084ead7d"
    )
    assert checks.installed(rules_dir).labels["jp-sb"] == "pint-jp-sb 1.1.3"


def test_a_release_zip_installs_just_that_release(einvoice: Path, tmp_path: Path) -> None:
    package = _zip_of(einvoice / "pint-jp-ntr-1.1.3", tmp_path / "pint-jp-ntr-resources.zip")
    installed = releases.install(package, tmp_path / "rules")
    assert [r.label for r in installed] == ["pint-jp-ntr 1.1.3"]
    assert releases.status(tmp_path / "rules")["pint-jp"] is None
    assert (tmp_path / "rules/pint-jp-ntr/1.1.3/PINT-UBL-validation-preprocessed.xslt").exists()


def test_one_altered_byte_refuses_the_install(einvoice: Path, tmp_path: Path) -> None:
    package = tmp_path / "package"
    shutil.copytree(einvoice / "pint-jp-1.1.3", package)
    xslt = package / "schematron/PINT-jurisdiction-aligned-rules.xslt"
    xslt.write_bytes(xslt.read_bytes().replace(b"MUST be 380", b"MUST be 381", 1))
    with pytest.raises(releases.ReleaseError, match="matches no known release"):
        releases.install(package, tmp_path / "rules")
    assert releases.status(tmp_path / "rules") == dict.fromkeys(
        ["pint-jp", "pint-jp-ntr", "pint-jp-sb", "ubl"]
    )


def test_an_incomplete_release_is_refused(einvoice: Path, tmp_path: Path) -> None:
    package = tmp_path / "package"
    shutil.copytree(einvoice / "pint-jp-sb-1.1.3", package)
    (package / "schematron/PINT-UBL-validation-preprocessed.sch").unlink()
    with pytest.raises(
        releases.ReleaseError, match=r"missing PINT-UBL-validation-preprocessed\.sch"
    ):
        releases.install(package, tmp_path / "rules")


def test_something_else_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(releases.ReleaseError, match="no known JP PINT release"):
        releases.install(tmp_path / "empty", tmp_path / "rules")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(releases.ReleaseError, match="neither a folder nor a zip"):
        releases.install(tmp_path / "notes.txt", tmp_path / "rules")


def test_an_installed_file_altered_later_is_refused_when_loaded(
    einvoice: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    releases.install(einvoice, rules)
    pool = checks.CheckPool(rules, workers=1)
    assert pool.ready() is None
    pool.close()
    target = rules / "pint-jp/1.1.3/PINT-UBL-validation-preprocessed.xslt"
    target.write_bytes(target.read_bytes() + b"\n")
    with pytest.raises(releases.ReleaseError, match="altered after install"):
        checks.installed(rules)
    reason = checks.CheckPool(rules, workers=1).ready()
    assert reason is not None
    assert "altered after install" in reason


def test_without_rules_the_pool_says_what_to_install(tmp_path: Path) -> None:
    pool = checks.CheckPool(tmp_path / "nothing", workers=1)
    reason = pool.ready()
    assert reason is not None
    assert "shared-gov invoices rules install" in reason
