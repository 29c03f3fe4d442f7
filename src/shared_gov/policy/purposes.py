"""Purposes of use (利用目的), read from ``policies/purposes.toml``.

A purpose names the fields it may need, the record actions it covers, its
legal basis, and whether it is a legally listed use of the individual number
(番号法 別表). Requests state one in ``X-Purpose``; Cedar receives the
purpose's fields and actions in its context.

The platform's purposes are in ``policies/purposes.toml``; a domain brings its
own in its folder (``DomainSpec.purposes``), merged here: their codes start
with the domain's name (``sample.dogs``), they name only the domain's own
fields and actions (a domain cannot grant itself another's records), and a
code defined twice is refused.

A platform purpose that carries a domain's name (``kaigo.qualification``,
whose resident fields only the platform file may name) is *extended* by the
domain's file with ``extends = "platform"``: the domain adds its own fields
and actions, nothing else; the name, legal basis and listed use of 個人番号
stay the platform's.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from shared_gov import errors
from shared_gov.domains import registry
from shared_gov.messages import access as m

# The personal fields a policy decides on and the record actions are declared
# by the domains (shared_gov.domains.registry); this module only checks that
# purposes.toml names nothing else.


def __getattr__(name: str) -> object:
    # The former constants, read from the registry when asked for (tests, benches).
    if name == "POLICY_FIELDS":
        return registry.policy_fields()
    if name == "RECORD_ACTIONS":
        return registry.record_actions()
    raise AttributeError(name)


@dataclass(frozen=True, slots=True)
class Purpose:
    code: str
    name: str
    legal_basis: str
    individual_number: bool
    actions: frozenset[str]
    fields: frozenset[str]


def default_policies_dir() -> Path:
    """``policies/`` next to the source tree, or ``SHARED_GOV_POLICIES_DIR``."""
    import os

    configured = os.environ.get("SHARED_GOV_POLICIES_DIR")
    if configured:
        return Path(configured)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "policies"
        if (candidate / "schema.cedarschema").exists():
            return candidate
    return Path("policies").resolve()


def load_purposes(path: Path, domain: registry.DomainSpec | None = None) -> dict[str, Purpose]:
    """Parse and check purposes.toml; unknown fields or actions are errors.

    ``fields`` name the fields of every installed record type: bare for the
    record type that names its fields unqualified (residents), ``Type.field``
    for any other (``registry.RecordType.policy_name``).
    """
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    result: dict[str, Purpose] = {}
    for code, item in data.get("purposes", {}).items():
        if "extends" in item and domain is None:
            raise ValueError(f"purpose {code}: only a domain's purpose extends another")
        fields = frozenset(item.get("fields", []))
        actions = frozenset(item.get("actions", []))
        known_fields, known_actions = registry.all_policy_fields(), registry.record_actions()
        if domain is not None:
            if not code.startswith(f"{domain.name}."):
                raise ValueError(
                    f"purpose {code}: a {domain.name} purpose starts with {domain.name}."
                )
            own = domain.record_types
            known_fields = frozenset(
                rt.policy_name(f.name) for rt in own for f in rt.personal_fields
            )
            known_actions = frozenset(a for rt in own for a in rt.actions)
        unknown = (fields - known_fields) | (actions - known_actions)
        if unknown:
            raise ValueError(f"purpose {code}: unknown fields or actions {sorted(unknown)}")
        number = fields & registry.individual_number_fields()
        if number and not item.get("individual_number", False):
            raise ValueError(
                f"purpose {code}: lists {', '.join(sorted(number))} but is not a listed use"
            )
        if "extends" in item:
            if item["extends"] != "platform" or set(item) - {"extends", "fields", "actions"}:
                raise ValueError(
                    f'purpose {code}: an extension says extends = "platform" and names '
                    "only fields and actions"
                )
            result[code] = Purpose(code, "", "", False, actions, fields)
            continue
        result[code] = Purpose(
            code=code,
            name=str(item["name"]),
            legal_basis=str(item["legal_basis"]),
            individual_number=bool(item.get("individual_number", False)),
            actions=actions,
            fields=fields,
        )
    return result


def purposes() -> dict[str, Purpose]:
    """The platform's purposes and every installed domain's (read once per process)."""
    return _purposes(registry.generation())


@lru_cache(maxsize=4)
def _purposes(_generation: int) -> dict[str, Purpose]:
    result = load_purposes(default_policies_dir() / "purposes.toml")
    platform = frozenset(result)
    for domain, path in registry.purpose_files():
        extensions = _extensions(path)
        for code, purpose in load_purposes(path, domain).items():
            if code in extensions:
                base = result.get(code) if code in platform else None
                if base is None:
                    raise ValueError(f"purpose {code} extends no platform purpose ({path})")
                result[code] = replace(
                    base,
                    actions=base.actions | purpose.actions,
                    fields=base.fields | purpose.fields,
                )
                continue
            if code in result:
                raise ValueError(f"purpose {code} defined twice ({path})")
            result[code] = purpose
    return result


def _extensions(path: Path) -> frozenset[str]:
    """Codes a domain's purposes.toml marks ``extends = "platform"``."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return frozenset(c for c, item in data.get("purposes", {}).items() if "extends" in item)


def purpose_from_header(value: str | None) -> Purpose:
    """The purpose named by an ``X-Purpose`` header; 400 when absent or unknown."""
    if value is None or not value.strip():
        raise errors.bad_request(m.PURPOSE_REQUIRED)
    purpose = purposes().get(value.strip())
    if purpose is None:
        raise errors.bad_request(m.PURPOSE_UNKNOWN_HEADER)
    return purpose
