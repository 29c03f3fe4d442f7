"""The domain registry is complete, and the pillars know domains only through it."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from shared_gov.db import Database
from shared_gov.domains import INSTALLED, registry
from shared_gov.domains.registry import (
    Console,
    ConsoleLink,
    ConsoleStaff,
    DomainSpec,
    Field,
    Label,
    RecordType,
)
from shared_gov.policy.engine import PolicyEngine
from shared_gov.policy.loading import with_record_actions
from shared_gov.policy.purposes import default_policies_dir, load_purposes
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA

SRC = Path(__file__).resolve().parents[2] / "src" / "shared_gov"
PILLARS = (
    "audit",
    "auth",
    "crypto",
    "db",
    "policy",
    "tenancy",
    "logs.py",
    "errors.py",
    "validation.py",
    "api",
    "settings.py",
    "metrics.py",
    "observability.py",
    "openapi.py",
    "serving.py",
    "app.py",
    "cli",
    "demo",
    "web",
)
"""Everything outside ``domains/``: app, cli and demo assemble, and the web console
mounts the domains' pages; they do not import a domain either (they mount and call
what the registry lists)."""


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from shared_gov.domains import residents` names a domain too.
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def test_no_pillar_imports_a_domain() -> None:
    offenders = []
    for entry in PILLARS:
        root = SRC / entry
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        assert files, f"{entry} not found under {SRC}"
        for path in files:
            for line, module in _imports(path):
                if not module.startswith("shared_gov.domains."):
                    continue
                if module == "shared_gov.domains.registry" or module.startswith(
                    "shared_gov.domains.registry."
                ):
                    continue
                offenders.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_no_pillar_names_a_resident_field() -> None:
    """The resident field catalogue is written out in the residents domain only."""
    fields = {f.name for f in registry.record_type("Resident").fields}
    catalogue_like = []
    for entry in ("crypto", "policy", "logs.py", "audit/recorder.py", "tenancy"):
        root = SRC / entry
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Tuple | ast.List | ast.Set):
                    names = {
                        e.value
                        for e in node.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    }
                    # One name may appear in prose-like code; a list of several is a catalogue.
                    if len(names & fields) >= 3:
                        catalogue_like.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not catalogue_like, catalogue_like


def test_every_installed_domain_has_a_spec() -> None:
    assert "shared_gov.domains.residents.spec" in INSTALLED
    specs = registry.domains()
    # In the order INSTALLED lists them (shared_gov.domains.<name>.spec).
    assert [s.name for s in specs][: len(INSTALLED)] == [p.split(".")[2] for p in INSTALLED]
    assert all(isinstance(s, DomainSpec) for s in specs)
    resident = registry.record_type("Resident")
    assert registry.default_record_type() is resident
    for f in resident.fields:
        assert f.label.ja
        assert f.label.en


def test_every_purpose_field_and_action_is_declared() -> None:
    path = default_policies_dir() / "purposes.toml"
    with path.open("rb") as fh:
        document = tomllib.load(fh)
    for code, item in document["purposes"].items():
        for name in item.get("fields", []):
            assert name in registry.all_policy_fields(), f"{code}: {name}"
        for action in item.get("actions", []):
            assert action in registry.record_actions(), f"{code}: {action}"
    load_purposes(path)  # and the loader agrees


def test_purposes_refuse_an_undeclared_field(tmp_path: Path) -> None:
    bad = tmp_path / "purposes.toml"
    bad.write_text(
        '[purposes."x.y"]\nname = "x"\nlegal_basis = "x"\nactions = []\n'
        'fields = ["Resident.family_name"]\n',
        encoding="utf-8",
    )
    # The resident record type names its fields bare: the qualified form is unknown.
    with pytest.raises(ValueError, match="unknown fields"):
        load_purposes(bad)


def test_every_record_action_is_a_cedar_record_action() -> None:
    # The file declares the residents' actions; the engine adds every other
    # installed domain's (with_record_actions): each is declared once either way.
    schema = with_record_actions(
        (default_policies_dir() / "schema.cedarschema").read_text(encoding="utf-8")
    )
    for action in registry.record_actions():
        assert f'"{action}"' in schema, action
    PolicyEngine(default_policies_dir())  # the schema (with record_type) still validates


async def test_every_encrypted_column_of_the_tenant_schema_is_declared(db: Database) -> None:
    """Envelopes are bytea: every bytea column of a town's tables is a declared
    encrypted column, and every declared one exists."""
    schema = tenant_names(KAGA, db.settings.role_prefix).schema
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND data_type = 'bytea'",
            schema,
        )
        blind = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND column_name LIKE 'bidx\\_%'",
            schema,
        )
    stored = {f"{r['table_name']}.{r['column_name']}" for r in rows}
    assert stored == set(registry.dek_names())
    declared_blind = {
        f"{i.table}.bidx_{i.name}{alt}"
        for i in registry.blind_indexes().values()
        for alt in ("", "_alt")
    }
    assert {f"{r['table_name']}.{r['column_name']}" for r in blind} == declared_blind
    # Every encrypted field names a declared encrypted column.
    for rt in registry.record_types().values():
        for f in rt.fields:
            if f.encrypted is not None:
                assert ".".join(f.encrypted) in registry.dek_names()


def test_a_second_domain_registers_without_touching_the_pillars() -> None:
    """A domain installed at run time: its fields are qualified, its columns get keys,
    its redacted fields are redacted, and a collision is refused."""
    spec = DomainSpec(
        name="sample",
        label=Label("見本", "sample"),
        record_types=(
            RecordType(
                name="Sample",
                label=Label("見本", "sample"),
                fields=(
                    Field(
                        "secret",
                        Label("秘密", "secret"),
                        encrypted=("samples", "secret"),
                        redacted=True,
                    ),
                ),
                actions=("inspect",),
            ),
        ),
        encrypted_tables=(registry.EncryptedTable("samples", ("secret",), "id::text"),),
    )
    registry.install(spec)
    try:
        assert "Sample.secret" in registry.all_policy_fields()
        assert "samples.secret" in registry.dek_names()
        assert "inspect" in registry.record_actions()
        assert {"secret", "Sample.secret"} <= registry.redacted_keys()
        assert registry.policy_fields("Sample") == ("Sample.secret",)
        # Residents are unchanged by it.
        assert "family_name" in registry.policy_fields()
    finally:
        registry.uninstall(spec)
    assert "Sample.secret" not in registry.all_policy_fields()
    registry.install(spec)
    registry.install(spec)
    try:
        with pytest.raises(ValueError, match="registered twice"):
            registry.domains()
    finally:
        registry.uninstall(spec)
        registry.uninstall(spec)
    registry.domains()


def _with_console(console: Console) -> DomainSpec:
    return DomainSpec(
        name="sample",
        label=Label("見本", "sample"),
        record_types=(),
        console=console,
    )


def test_a_domains_console_keeps_to_its_own_folder_and_path(tmp_path: Path) -> None:
    """Its templates are one folder named after it (no name shared with the console's
    own or another domain's), its links lead under its name; its staff join the
    development sign-in page."""
    (tmp_path / "sample").mkdir()
    person = ConsoleStaff("sample-0001", "kankyo", Label("環境課", "environment"))
    good = Console(
        controllers=tuple,
        templates=tmp_path,
        links=(ConsoleLink("sample/dogs", Label("犬", "dogs")),),
        staff=(person,),
    )
    spec = _with_console(good)
    registry.install(spec)
    try:
        assert ("sample", good) in registry.consoles()
        assert person in registry.console_staff()
    finally:
        registry.uninstall(spec)
    (tmp_path / "base.html").write_text("{# would shadow the console's own #}")
    for console, why in (
        (good, "more than sample/"),
        (
            Console(controllers=tuple, templates=tmp_path / "missing"),
            "do not exist",
        ),
    ):
        spec = _with_console(console)
        registry.install(spec)
        try:
            with pytest.raises(ValueError, match=why):
                registry.domains()
        finally:
            registry.uninstall(spec)
    (tmp_path / "base.html").unlink()
    outside = Console(
        controllers=tuple,
        templates=tmp_path,
        links=(ConsoleLink("audit/", Label("監査", "audit")),),
    )
    spec = _with_console(outside)
    registry.install(spec)
    try:
        with pytest.raises(ValueError, match="outside sample/"):
            registry.domains()
    finally:
        registry.uninstall(spec)
    registry.domains()


def test_every_installed_console_page_is_under_its_domain() -> None:
    """The console's router mounts what the registry lists, each under its domain's path."""
    from shared_gov.web.router import domain_pages

    pages = domain_pages()
    assert {c.__name__ for c in pages} >= {"KaigoPages", "InvoicePages"}
