"""What a domain may bring from its own folder, and what the platform refuses of it
(docs/adding-a-domain.md, "Rules"): purposes outside its namespace or naming
another domain's fields, policies that would decide another domain's records,
an action two record types declare."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared_gov.domains import registry
from shared_gov.domains.registry import DomainSpec, Field, Label, RecordType
from shared_gov.policy import PolicyEngine, PolicyError
from shared_gov.policy.loading import with_record_actions
from shared_gov.policy.purposes import default_policies_dir, load_purposes, purposes

CAT = RecordType(
    name="Cat",
    label=Label("猫", "cat"),
    fields=(Field("chip", Label("番号", "chip")),),
    actions=("adopt",),
)


def _spec(tmp_path: Path, **kw: object) -> DomainSpec:
    return DomainSpec(name="cats", label=Label("猫", "cats"), record_types=(CAT,), **kw)  # type: ignore[arg-type]


def _purposes(tmp_path: Path, code: str, fields: str, actions: str = "[]") -> Path:
    path = tmp_path / "purposes.toml"
    path.write_text(
        f'[purposes."{code}"]\nname = "x"\nlegal_basis = "x"\n'
        f"actions = {actions}\nfields = {fields}\n",
        encoding="utf-8",
    )
    return path


def _policy(tmp_path: Path, when: str) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "cats.cedar").write_text(
        '@id("cats-adopt")\n'
        'permit (principal is SharedGov::Staff, action == SharedGov::Action::"adopt", '
        "resource is SharedGov::Record)\n"
        f"when {{ {when} }};\n",
        encoding="utf-8",
    )
    return folder


def test_a_domains_purposes_are_merged(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path, purposes=_purposes(tmp_path, "cats.adoption", '["Cat.chip"]', '["adopt"]')
    )
    registry.install(spec)
    try:
        merged = purposes()
        assert merged["cats.adoption"].fields == frozenset({"Cat.chip"})
        assert "juki.registration" in merged
    finally:
        registry.uninstall(spec)
    assert "cats.adoption" not in purposes()


@pytest.mark.parametrize(
    ("code", "fields", "actions", "problem"),
    [
        ("adoption", '["Cat.chip"]', "[]", "starts with cats."),
        ("juki.cats", '["Cat.chip"]', "[]", "starts with cats."),
        ("cats.peek", '["family_name"]', "[]", "unknown fields"),  # a resident field
        ("cats.peek", '["Cat.chip"]', '["search"]', "unknown fields or actions"),
    ],
)
def test_a_domains_purposes_stay_in_its_namespace(
    tmp_path: Path, code: str, fields: str, actions: str, problem: str
) -> None:
    spec = _spec(tmp_path)
    registry.install(spec)
    try:
        with pytest.raises(ValueError, match=problem):
            load_purposes(_purposes(tmp_path, code, fields, actions), spec)
    finally:
        registry.uninstall(spec)


def test_a_domains_policy_and_action_join_the_platforms(tmp_path: Path) -> None:
    folder = _policy(
        tmp_path,
        'resource.record_type == "Cat" && principal.tenant == resource.tenant',
    )
    spec = _spec(tmp_path, policies=folder)
    schema = (default_policies_dir() / "schema.cedarschema").read_text(encoding="utf-8")
    before = with_record_actions(schema)  # the really installed domains' actions
    registry.install(spec)
    try:
        assert '"adopt"' not in schema
        assert re.search(r'action [^{]*"adopt"[^{]*appliesTo', with_record_actions(schema))
        PolicyEngine(default_policies_dir())
    finally:
        registry.uninstall(spec)
    # Uninstalled: the schema is what it was without the domain.
    assert with_record_actions(schema) == before
    assert '"adopt"' not in before


@pytest.mark.parametrize(
    "when",
    [
        "principal.tenant == resource.tenant",  # every record type's records
        'resource.record_type == "Resident" && principal.tenant == resource.tenant',
        'resource.record_type == "Cat" || principal.tenant == resource.tenant',
    ],
)
def test_a_domains_policy_decides_only_its_own_records(tmp_path: Path, when: str) -> None:
    spec = _spec(tmp_path, policies=_policy(tmp_path, when))
    registry.install(spec)
    try:
        with pytest.raises(PolicyError, match=r"must test resource\.record_type"):
            PolicyEngine(default_policies_dir())
    finally:
        registry.uninstall(spec)


def test_an_action_belongs_to_one_record_type(tmp_path: Path) -> None:
    thief = RecordType(
        name="Cat",
        label=Label("猫", "cat"),
        fields=(),
        actions=("search",),  # the residents' action
    )
    spec = DomainSpec(name="cats", label=Label("猫", "cats"), record_types=(thief,))
    registry.install(spec)
    try:
        with pytest.raises(ValueError, match="action search declared by Resident and Cat"):
            registry.domains()
    finally:
        registry.uninstall(spec)


def test_missing_folders_are_refused(tmp_path: Path) -> None:
    spec = _spec(tmp_path, migrations=tmp_path / "nowhere")
    registry.install(spec)
    try:
        with pytest.raises(ValueError, match="its migrations"):
            registry.domains()
    finally:
        registry.uninstall(spec)
