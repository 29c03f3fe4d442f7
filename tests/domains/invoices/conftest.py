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
from typing import Any

import pytest

from shared_gov.db import Database
from shared_gov.domains.invoices import checks, releases
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import tenant_names
from shared_gov.towns.names import TenantNames

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


@pytest.fixture(scope="session")
def pool(rules_dir: Path) -> Iterator[checks.CheckPool]:
    """Two worker processes, as the service runs them."""
    p = checks.CheckPool(rules_dir, workers=2)
    yield p
    p.close()


# --- towns -----------------------------------------------------------------------------

TOWN = "132233"
"""The buying town of these tests (onboarded with the domain's tables)."""
OTHER = "132241"
"""A second town the same suppliers sell to."""

DEPARTMENTS: list[dict[str, object]] = [
    {"code": "kaikei", "name": "会計課", "purposes": []},
    {"code": "doboku", "name": "土木課", "purposes": []},
    {"code": "shimin", "name": "市民課", "purposes": ["juki.registration"]},
]


def manifest(code: str) -> Any:
    return parse_manifest(
        {
            "code": code,
            "name": f"テスト市{code}",
            "name_kana": "てすとし",
            "prefecture": "東京都",
            "population": 100_000,
            "departments": DEPARTMENTS,
        }
    )


@pytest.fixture(scope="session")
async def towns(db: Database) -> list[str]:
    """Two towns onboarded for the e-invoice tests (the session's database drops them)."""
    for code in (TOWN, OTHER):
        await tenancy.onboard(db, manifest(code))
    return [TOWN, OTHER]


def names_of(db: Database, code: str) -> TenantNames:
    return tenant_names(code, db.settings.role_prefix)
