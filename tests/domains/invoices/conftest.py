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

import httpx
import pytest
from litestar import Litestar

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.domains.invoices import checks, paths, releases
from shared_gov.settings import Settings
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


@pytest.fixture(scope="module", autouse=True)
def _no_workers_left() -> Iterator[None]:
    """Each module ends with no checker process alive (other tests count children)."""
    yield
    from shared_gov.domains.invoices import intake

    intake.close_pools()


@pytest.fixture(scope="module")
def pool(rules_dir: Path) -> Iterator[checks.CheckPool]:
    """Two worker processes, as the service runs them (stopped when this package's
    tests end: later tests count the test process's children)."""
    p = checks.CheckPool(rules_dir, workers=2)
    yield p
    p.close()


# --- towns -----------------------------------------------------------------------------

TOWN = "132233"
"""The buying town of these tests (onboarded with the domain's tables)."""
OTHER = "132241"
"""A second town the same suppliers sell to."""

DEPARTMENTS: list[dict[str, object]] = [
    {"code": "kaikei", "name": "会計課", "purposes": ["invoices.payment"]},
    # The ordering department: 検収, and its head approves small amounts (level 1).
    {
        "code": "doboku",
        "name": "土木課",
        "purposes": ["invoices.inspection", "invoices.approval.1"],
    },
    {"code": "fukushicho", "name": "副市長室", "purposes": ["invoices.approval.3"]},
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


@pytest.fixture(scope="session")
async def api(
    app: Litestar, client: httpx.AsyncClient, towns: list[str], settings: Settings, einvoice: Path
) -> httpx.AsyncClient:
    """The session's HTTP client, once the towns are known to the app and the rules
    are installed in its data directory (as an operator installs them)."""
    releases.install(einvoice, paths.rules_dir(settings))
    await app.state.services.registry.refresh()
    return client


@pytest.fixture(scope="session")
def people(issuer: BuiltinIssuer) -> dict[str, str]:
    """Tokens: the town's staff by role, two suppliers, another town's staff."""

    def staff(subject: str, department: str, town: str = TOWN) -> str:
        return issuer.mint(subject=subject, tenant=town, department=department, roles=["staff"])

    def supplier(key: str) -> str:
        return issuer.mint(subject=key, tenant=None, department=None, roles=["supplier"])

    return {
        "kaikei": staff("t-kaikei", "kaikei"),
        "kaikei_other": staff("o-kaikei", "kaikei", OTHER),
        "doboku": staff("t-doboku", "doboku"),
        "doboku2": staff("t-doboku-2", "doboku"),
        "fukushicho": staff("t-fuku", "fukushicho"),
        "shimin": staff("t-shimin", "shimin"),
        "a": supplier(SUPPLIER_A),
        "b": supplier(SUPPLIER_B),
        "c": supplier(SUPPLIER_C),
    }


SUPPLIER_A = "7123456789012"
"""株式会社テスト商事: a corporation with its registration number T7123456789012."""
SUPPLIER_B = "T1123456789018"
"""A sole proprietor registered for consumption tax (known by the T-number)."""
SUPPLIER_C = "X-SOLE0001"
"""A sole proprietor not registered (an id the platform assigned)."""


def bearer(token: str, purpose: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", **extra}
    if purpose:
        headers["X-Purpose"] = purpose
    return headers


def names_of(db: Database, code: str) -> TenantNames:
    return tenant_names(code, db.settings.role_prefix)


@pytest.fixture(scope="session")
async def registered(api: httpx.AsyncClient, people: dict[str, str]) -> dict[str, str]:
    """会計課 of each town registers its suppliers and accounting units."""
    ids: dict[str, str] = {}
    for code, who in ((TOWN, "kaikei"), (OTHER, "kaikei_other")):
        headers = bearer(people[who], "invoices.payment")
        for unit, name, qualified in (
            ("ippan", "一般会計", False),
            ("suido", "水道事業会計", True),
        ):
            r = await api.put(
                f"/api/v1/tenants/{code}/accounting-units/{unit}",
                json={"name": name, "needs_qualified": qualified, "retention_years": 7},
                headers=headers,
            )
            assert r.status_code == 200, r.text
        r = await api.post(
            f"/api/v1/tenants/{code}/suppliers",
            json={
                "supplier_key": SUPPLIER_A,
                "kind": "corporation",
                "name": "株式会社テスト商事",
                "t_number": "T7123456789012",
                "bank_account": "0001:001:1:1234567",
                "bank_holder": "ｶ)ﾃｽﾄｼﾖｳｼﾞ",
            },
            headers=headers,
        )
        assert r.status_code == 201, r.text
        ids[f"a@{code}"] = r.json()["id"]
    headers = bearer(people["kaikei"], "invoices.payment")
    for key, kind, name in (
        (SUPPLIER_B, "sole_proprietor", "山田 太郎"),
        (SUPPLIER_C, "sole_proprietor", "鈴木 花子"),
    ):
        r = await api.post(
            f"/api/v1/tenants/{TOWN}/suppliers",
            json={"supplier_key": key, "kind": kind, "name": name},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        ids[key] = r.json()["id"]
    return ids
