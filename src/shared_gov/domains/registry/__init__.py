"""The domain registry: what each installed domain declares to the pillars.

A domain (residents, later care insurance, e-invoices, ...) describes its
records ONCE, in its package's ``spec.py`` as one :class:`DomainSpec`:

- its record types (each a Cedar resource kind, e.g. ``Resident``) with
  their fields: personal?, encrypted (in which table and column)?, decided
  by policy one by one?, withheld under 支援措置?, the individual number?,
  redacted from logs?, and a label in Japanese and English;
- the record-level actions Cedar decides for each record type;
- its blind indexes (source fields, normalisers) and the tables whose
  envelopes a key rotation re-encrypts (with the SQL of the envelope's row
  id, and whether the town may only add rows to them), the hooks that fill
  and clear an index during its rotation, and the export an offboarding
  writes;
- its HTTP controllers, its CLI command groups and its demo-data seeder;
- its pages in the web console (controllers, their template folder, the
  home page's links, development sign-in staff), mounted by the console;
- its messages: a catalogue of its own sentences in Japanese and English
  (``Catalogue("<domain>")``, ids ``<domain>.*``), which its errors and
  reasons are made of (:mod:`shared_gov.messages`);
- what it brings from its own folder: the tenant migrations that create its
  tables (joined to the platform's tenant Alembic tree as a branch of their
  own), its purposes of use (a ``purposes.toml``) and its Cedar policies
  (``*.cedar``, deciding its own record types only). A new domain therefore
  never edits ``policies/`` or the platform's migration folder.

The pillars read this registry and never import a domain: crypto provisions
and rotates the keys of the declared columns and indexes, policy validates
``purposes.toml`` and builds Cedar resources from the record types, logs
redact the declared keys, tenancy calls the declared export, the app mounts
the declared controllers (and the console the declared pages) and the CLI
adds the declared command groups.

Installed domains are listed in :data:`shared_gov.domains.INSTALLED`, one line
each (a module path, imported lazily on first use, so importing this module
never imports a domain and no import cycle can form through it).

Naming in ``purposes.toml`` and Cedar: the fields of the record type marked
``unqualified`` (the resident record) are written bare (``family_name``);
every other record type's fields are written ``RecordType.field``
(``Invoice.amount``), so two domains' field names can never collide in a
purpose, an agreement or a Cedar ``Field`` resource.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from shared_gov import logs
from shared_gov.messages import core as messages
from shared_gov.messages.core import Catalogue

from .types import (
    Background,
    BlindIndex,
    Console,
    ConsoleLink,
    ConsoleStaff,
    DemoData,
    DomainSpec,
    EncryptedTable,
    Exporter,
    Field,
    IndexFill,
    IndexHooks,
    Label,
    RecordType,
    StandingShare,
)

# The types live in .types (a domain's spec is built from them); re-exported here.
__all__ = [
    "Background",
    "BlindIndex",
    "Console",
    "ConsoleLink",
    "ConsoleStaff",
    "DemoData",
    "DomainSpec",
    "EncryptedTable",
    "Exporter",
    "Field",
    "IndexFill",
    "IndexHooks",
    "Label",
    "RecordType",
    "StandingShare",
]

# --- the registry itself -------------------------------------------------------

_extra: list[DomainSpec] = []


def _installed_paths() -> tuple[str, ...]:
    from shared_gov.domains import INSTALLED

    return INSTALLED


@cache
def domains() -> tuple[DomainSpec, ...]:
    """Every installed domain's spec, in registration order (imported on first call)."""
    specs: list[DomainSpec] = []
    for path in _installed_paths():
        module = importlib.import_module(path)
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, DomainSpec):
            raise TypeError(f"{path} has no SPEC = DomainSpec(...)")
        specs.append(spec)
    specs.extend(_extra)
    _check(specs)
    return tuple(specs)


def install(spec: DomainSpec) -> None:
    """Register one more domain at run time (tests: a domain that lives only there)."""
    _extra.append(spec)
    _forget()


def uninstall(spec: DomainSpec) -> None:
    _extra.remove(spec)
    _forget()


_generation = 0


def generation() -> int:
    """Bumped by every install/uninstall: caches above the registry key on it
    (purposes, the policy engine, the migration scripts) and stay cheap to ask."""
    return _generation


def _forget() -> None:
    global _generation
    _generation += 1
    for fn in _CACHED:
        fn.cache_clear()
    messages.forget()


_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")
"""Table and column names: the pillars inline them in SQL, so they must be plain."""
_TYPE = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")


def _check(specs: Sequence[DomainSpec]) -> None:
    """Refuse a registry whose domains would collide or contradict themselves."""
    for spec in specs:
        names_ = [t.table for t in spec.encrypted_tables]
        names_ += [c for t in spec.encrypted_tables for c in t.columns]
        names_ += [i.table for i in spec.blind_indexes] + [i.name for i in spec.blind_indexes]
        names_ += [f.name for rt in spec.record_types for f in rt.fields]
        bad = [n for n in names_ if not _IDENT.fullmatch(n)]
        bad += [rt.name for rt in spec.record_types if not _TYPE.fullmatch(rt.name)]
        if bad:
            raise ValueError(f"domain {spec.name}: not plain identifiers: {sorted(bad)}")
    names: set[str] = set()
    types: set[str] = set()
    unqualified = 0
    indexes: set[str] = set()
    columns: set[tuple[str, str]] = set()
    for spec in specs:
        if spec.name in names:
            raise ValueError(f"domain {spec.name} registered twice")
        names.add(spec.name)
        for rt in spec.record_types:
            if rt.name in types:
                raise ValueError(f"record type {rt.name} declared twice")
            types.add(rt.name)
            unqualified += rt.unqualified
            seen: set[str] = set()
            for f in rt.fields:
                if f.name in seen:
                    raise ValueError(f"{rt.name}.{f.name} declared twice")
                seen.add(f.name)
                if f.encrypted is not None:
                    if f.encrypted in columns:
                        raise ValueError(f"column {'.'.join(f.encrypted)} declared twice")
                    columns.add(f.encrypted)
                    tables = {t.table: t for t in spec.encrypted_tables}
                    table = tables.get(f.encrypted[0])
                    if table is None or f.encrypted[1] not in table.columns:
                        raise ValueError(
                            f"{rt.name}.{f.name}: {'.'.join(f.encrypted)} is not in the "
                            "domain's encrypted tables"
                        )
        for index in spec.blind_indexes:
            if index.name in indexes or index.name in PLATFORM_INDEXES:
                raise ValueError(f"blind index {index.name} declared twice")
            indexes.add(index.name)
            if len(index.normalisers) != len(index.sources):
                raise ValueError(f"blind index {index.name}: one normaliser per source")
        if spec.blind_indexes and spec.index_hooks is None:
            raise ValueError(f"domain {spec.name} has blind indexes but no index hooks")
        for kind, path in (
            ("migrations", spec.migrations),
            ("purposes", spec.purposes),
            ("policies", spec.policies),
        ):
            if path is not None and not path.exists():
                raise ValueError(f"domain {spec.name}: its {kind} ({path}) do not exist")
        if spec.console is not None:
            _check_console(spec.name, spec.console)
        if spec.messages is not None:
            catalogue = spec.messages()
            if catalogue.name != spec.name:
                raise ValueError(
                    f"domain {spec.name}: its message catalogue is named {catalogue.name}"
                )
    # A record action belongs to one record type: a purpose covering one
    # domain's action must not cover another domain's action of the same name
    # (the residents' Cedar policy decides its actions by name).
    owners: dict[str, str] = {}
    for spec in specs:
        for rt in spec.record_types:
            for action in rt.actions:
                if owners.setdefault(action, rt.name) != rt.name:
                    raise ValueError(f"action {action} declared by {owners[action]} and {rt.name}")
    if unqualified > 1:
        raise ValueError("at most one record type may name its fields unqualified")


def _check_console(name: str, console: Console) -> None:
    """A domain's console: its own template folder only, links under its name."""
    folder = console.templates
    if not (folder / name).is_dir():
        raise ValueError(f"domain {name}: its console templates ({folder / name}) do not exist")
    others = sorted(p.name for p in folder.iterdir() if p.name != name)
    if others:
        raise ValueError(f"domain {name}: its console templates hold more than {name}/: {others}")
    for link in console.links:
        if not link.path.startswith(f"{name}/"):
            raise ValueError(f"domain {name}: console link {link.path} is outside {name}/")


PLATFORM_INDEXES: tuple[str, ...] = ("audit_subject",)
"""Blind indexes of the platform itself: ``audit_subject`` (keyed hashes of record
ids in the audit log; full width, never rotated: the log keeps its values)."""


@cache
def record_types() -> dict[str, RecordType]:
    return {rt.name: rt for spec in domains() for rt in spec.record_types}


def record_type(name: str | None = None) -> RecordType:
    """The record type ``name``, or (None) the one whose fields are named bare."""
    if name is None:
        return default_record_type()
    return record_types()[name]


@cache
def default_record_type() -> RecordType:
    for rt in record_types().values():
        if rt.unqualified:
            return rt
    raise LookupError("no installed record type names its fields unqualified")


@cache
def policy_fields(record_type_name: str | None = None) -> tuple[str, ...]:
    """Policy names of a record type's personal fields, in declaration order."""
    rt = record_type(record_type_name)
    return tuple(rt.policy_name(f.name) for f in rt.personal_fields)


@cache
def all_policy_fields() -> frozenset[str]:
    """Every personal field of every record type, by policy name (purposes, agreements)."""
    return frozenset(n for rt in record_types().values() for n in policy_fields(rt.name))


@cache
def record_actions() -> frozenset[str]:
    """Every record-level action of every record type."""
    return frozenset(a for rt in record_types().values() for a in rt.actions)


@cache
def whereabouts_fields() -> frozenset[str]:
    """Policy names of the fields withheld under 支援措置."""
    return frozenset(
        rt.policy_name(f.name) for rt in record_types().values() for f in rt.fields if f.whereabouts
    )


@cache
def individual_number_fields() -> frozenset[str]:
    """Policy names of the fields that are the individual number (個人番号)."""
    return frozenset(
        rt.policy_name(f.name)
        for rt in record_types().values()
        for f in rt.fields
        if f.individual_number
    )


@cache
def redacted_keys() -> frozenset[str]:
    """Log keys whose values are replaced (field names, bare and qualified)."""
    keys: set[str] = set()
    for rt in record_types().values():
        for f in rt.fields:
            if f.redacted:
                keys.update({f.name, rt.policy_name(f.name)})
    return frozenset(keys)


@cache
def encrypted_tables() -> dict[str, EncryptedTable]:
    """Every table holding envelopes, by name."""
    return {t.table: t for spec in domains() for t in spec.encrypted_tables}


@cache
def append_only_tables() -> tuple[str, ...]:
    """The tables the towns' roles may only add rows to (declared ``append_only``)."""
    return tuple(t.table for t in encrypted_tables().values() if t.append_only)


@cache
def dek_names() -> tuple[str, ...]:
    """``table.column`` of every encrypted column: one data key each."""
    return tuple(f"{t.table}.{c}" for t in encrypted_tables().values() for c in t.columns)


@cache
def blind_indexes() -> dict[str, BlindIndex]:
    """Every domain's (rotatable) blind index, by name."""
    return {i.name: i for spec in domains() for i in spec.blind_indexes}


@cache
def index_names() -> tuple[str, ...]:
    """Every blind index with a key: the domains' ones, then the platform's."""
    return (*blind_indexes(), *PLATFORM_INDEXES)


def index_hooks(name: str) -> IndexHooks:
    """The hooks of the domain owning blind index ``name``."""
    for spec in domains():
        if spec.index_hooks is not None and any(i.name == name for i in spec.blind_indexes):
            return spec.index_hooks()
    raise KeyError(name)


def exporters() -> list[tuple[str, Exporter]]:
    """(domain, export) for every domain that exports records on offboarding."""
    return [(s.name, s.exporter()) for s in domains() if s.exporter is not None]


@cache
def domain_of_record_type() -> dict[str, DomainSpec]:
    """The domain declaring each record type."""
    return {rt.name: spec for spec in domains() for rt in spec.record_types}


def migration_dirs() -> tuple[Path, ...]:
    """Every domain's tenant migration folder (joined to the platform's tenant tree)."""
    return tuple(s.migrations for s in domains() if s.migrations is not None)


def purpose_files() -> tuple[tuple[DomainSpec, Path], ...]:
    """(domain, its purposes.toml) for every domain that brings purposes."""
    return tuple((s, s.purposes) for s in domains() if s.purposes is not None)


def policy_files() -> tuple[tuple[DomainSpec, tuple[Path, ...]], ...]:
    """(domain, its ``*.cedar`` files) for every domain that brings policies."""
    return tuple(
        (s, tuple(sorted(s.policies.glob("*.cedar")))) for s in domains() if s.policies is not None
    )


def routers() -> list[Any]:
    """Every domain's controllers, in registration order."""
    return [r for spec in domains() for r in spec.routers()]


def cli_groups() -> list[tuple[str, Any]]:
    return [g for spec in domains() for g in spec.cli_groups()]


def background() -> list[Background]:
    """Every domain's background loops, in registration order."""
    return [b for spec in domains() for b in spec.background()]


@cache
def audited_tables() -> tuple[str, ...]:
    """Every domain's audited tables (see ``DomainSpec.audited_tables``)."""
    return tuple(t for spec in domains() for t in spec.audited_tables)


@cache
def read_actions() -> frozenset[str]:
    """Every domain's audit actions that change nothing (asked on every request:
    built once per registry generation)."""
    return frozenset(a for spec in domains() for a in spec.read_actions)


def consoles() -> list[tuple[str, Console]]:
    """(domain, its console) for every domain that brings console pages."""
    return [(s.name, s.console) for s in domains() if s.console is not None]


def console_staff() -> list[ConsoleStaff]:
    """Every domain's development sign-in staff, each subject once (the first domain's)."""
    seen: dict[str, ConsoleStaff] = {}
    for _, console in consoles():
        for person in console.staff:
            seen.setdefault(person.subject, person)
    return list(seen.values())


def catalogues() -> list[Catalogue]:
    """Every domain's message catalogue, in registration order."""
    return [s.messages() for s in domains() if s.messages is not None]


@cache
def _labels() -> dict[str, Label]:
    return {rt.policy_name(f.name): f.label for rt in record_types().values() for f in rt.fields}


def field_label(name: str, language: str) -> str | None:
    """A field's label by its policy name, in ``language`` (messages name fields by it)."""
    label = _labels().get(name)
    if label is None:
        return None
    return label.ja if language == "ja" else label.en


def demo_data() -> list[tuple[str, DemoData]]:
    return [(s.name, s.demo()) for s in domains() if s.demo is not None]


@cache
def standing_share() -> StandingShare | None:
    """The standing move agreement's terms (the first domain that declares one)."""
    return next((s.standing_share for s in domains() if s.standing_share is not None), None)


_CACHED: tuple[Any, ...] = (
    domains,
    record_types,
    default_record_type,
    policy_fields,
    all_policy_fields,
    record_actions,
    whereabouts_fields,
    individual_number_fields,
    redacted_keys,
    encrypted_tables,
    append_only_tables,
    dek_names,
    blind_indexes,
    index_names,
    standing_share,
    domain_of_record_type,
    audited_tables,
    read_actions,
    _labels,
)


# The logs redact every field a domain declares ``redacted``, and messages know
# the domains' catalogues and the fields' labels (base modules cannot import
# the registry, so the registry tells them).
logs.redact_keys_from(redacted_keys)
messages.catalogues_from(catalogues)
messages.field_labels_from(field_label)
