"""Fixtures of the e-invoice tests: the official release packages, installed.

The JP PINT rules and examples are OpenPeppol's and are not in this
repository: they are read from ``../shared/einvoice`` beside the repository
(or ``$SHARED_GOV_SHARED_DIR/einvoice``) and installed into a temporary data
directory the way an operator installs them. Without them every test that
needs them is skipped, cleanly, saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared_gov.domains.invoices import checks, releases

ROOT = Path(__file__).resolve().parents[3]


def einvoice_dir() -> Path | None:
    """``../shared/einvoice`` beside the repository, else under SHARED_GOV_SHARED_DIR."""
    candidates = [ROOT / ".." / "shared"]
    env = os.environ.get("SHARED_GOV_SHARED_DIR")
    if env:
        candidates.append(Path(env))
    for base in candidates:
        folder = base / "einvoice"
        if (folder / "pint-jp-1.1.3").is_dir():
            return folder.resolve()
    return None


def examples() -> list[Path]:
    folder = einvoice_dir()
    return sorted(folder.glob("*/example/*.xml")) if folder else []


@pytest.fixture(scope="session")
def einvoice() -> Path:
    folder = einvoice_dir()
    if folder is None:
        pytest.skip("../shared/einvoice (the JP PINT release packages) is not available")
    return folder


@pytest.fixture(scope="session")
def rules_dir(einvoice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official releases installed as ``shared-gov invoices rules install`` does."""
    target = tmp_path_factory.mktemp("invoice-data") / "rules"
    releases.install(einvoice, target)
    return target


@pytest.fixture(scope="session")
def installed(rules_dir: Path) -> checks.Installed:
    return checks.installed(rules_dir)


@pytest.fixture(scope="package")
def pool(rules_dir: Path) -> Iterator[checks.CheckPool]:
    """Two worker processes, as the service runs them (stopped when this package's
    tests end: later tests count the test process's children)."""
    p = checks.CheckPool(rules_dir, workers=2)
    yield p
    p.close()
