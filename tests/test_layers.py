"""The layers docs/architecture.md draws, kept by import-linter.

``make lint`` runs the contracts of ``pyproject.toml`` ([tool.importlinter]);
running them here too makes ``make test`` refuse an upward import (a pillar
that imported the request pipeline would pull every other pillar in with it:
the import cycle issue #15 describes). What import-linter cannot see is
checked beside it: no pillar holds an HTTP controller, and every domain
package is a layer of the contract (a domain left out would be unchecked).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "shared_gov"
BELOW_API = (
    "audit",
    "auth",
    "crypto",
    "db",
    "keys",
    "policy",
    "tenancy",
    "towns",
    "errors.py",
    "logs.py",
    "settings.py",
    "validation.py",
    "clock.py",
    "checkdigits.py",
    "bulkimport",
)


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def test_import_linter_contracts_are_kept() -> None:
    """Every contract of pyproject.toml holds (the same check as ``make lint``)."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(  # noqa: S603 - our own virtualenv's script
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_domain_is_a_layer() -> None:
    """A package under domains/ that no layer names would escape the contract."""
    layers = _contracts()["layers"]["layers"]
    assert isinstance(layers, list)
    named = {m.strip() for layer in layers for m in str(layer).split("|")}
    domains = {
        f"shared_gov.domains.{p.name}"
        for p in (SRC / "domains").iterdir()
        if p.is_dir() and (p / "__init__.py").exists()
    }
    assert domains, "no domain package found"
    assert domains <= named, f"add to the layers contract: {sorted(domains - named)}"


def test_no_pillar_holds_a_controller() -> None:
    holders = []
    for entry in BELOW_API:
        root = SRC / entry
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id == "Controller" for b in node.bases
                ):
                    holders.append(f"{path.relative_to(SRC)}: {node.name}")
    assert not holders, "\n".join(holders)
