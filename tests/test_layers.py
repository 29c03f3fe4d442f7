"""The HTTP layer sits above the pillars (docs/architecture.md, "Layers").

The pillars (audit, auth, crypto, db, policy, tenancy) and the base modules
hold no controller and never import ``shared_gov.api`` or ``shared_gov.app``:
a pillar that needed the request pipeline would pull every other pillar in
with it (the import cycle issue #15 describes). Until import-linter keeps
the layers (item 5), this ``ast`` walk does.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "shared_gov"
BELOW_API = (
    "audit",
    "auth",
    "crypto",
    "db",
    "policy",
    "tenancy",
    "errors.py",
    "logs.py",
    "settings.py",
    "validation.py",
    "clock.py",
    "checkdigits.py",
)
UPPER = ("shared_gov.api", "shared_gov.app", "shared_gov.web")


def _imported(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def test_no_pillar_imports_the_http_layer() -> None:
    offenders = []
    for entry in BELOW_API:
        root = SRC / entry
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            for line, module in _imported(path):
                if module in UPPER or module.startswith(tuple(u + "." for u in UPPER)):
                    offenders.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not offenders, "\n".join(offenders)


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
