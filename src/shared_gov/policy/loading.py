"""Reading and validating policy files: the schema with every domain's record actions,
the town-policy and domain-policy rules, and the :class:`PolicyError` that lists
every problem found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cedarpy

from shared_gov.domains import registry

_READS_NOW = re.compile(r'context\s*(\.\s*now\b|\[\s*"now"\s*\])')


class PolicyError(ValueError):
    """A policy file is invalid; carries every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_ACTION_DECL = re.compile(r"\baction\s+((?:\"[^\"]+\"\s*,?\s*)+)appliesTo")


def with_record_actions(schema: str) -> str:
    """The schema with every installed record action declared on ``Record``.

    The schema file declares the residents' actions; another domain's record
    actions (``DomainSpec`` record types) are added here, inside the schema's
    one namespace block (Cedar refuses the same namespace twice), with the
    context every record action has; a supplier may be their principal too
    (only a domain's own policy can permit it anything). The file itself
    never names a domain's action it does not know.
    """
    declared = {
        name for group in _ACTION_DECL.findall(schema) for name in re.findall(r'"([^"]+)"', group)
    }
    missing = sorted(registry.record_actions() - declared)
    if not missing:
        return schema
    end = schema.rstrip().rfind("}")
    if end < 0:  # pragma: no cover - the schema file is one namespace block
        raise PolicyError(["schema: no namespace block to declare record actions in"])
    names = ", ".join(f'"{a}"' for a in missing)
    added = (
        f"    // Declared by the installed domains (shared_gov.domains.registry).\n"
        f"    action {names} appliesTo {{\n"
        "        principal: [Staff, Operator, Supplier],\n"
        "        resource: [Record],\n"
        "        context: PurposeContext,\n"
        "    };\n"
    )
    return schema[:end] + added + schema[end:]


def _own_records_only(text: str, domain: registry.DomainSpec) -> list[str]:
    """A domain's policies decide only its own record types.

    Each policy's ``when`` must say ``resource.record_type == "<one of the
    domain's record types>"`` as one of its top-level ``&&`` terms: otherwise a
    permit (or a forbid) written for the domain's records would also decide
    another domain's.
    """
    own = {rt.name for rt in domain.record_types}
    problems: list[str] = []
    document = json.loads(cedarpy.policies_to_json_str(text))
    for pid, policy in document.get("staticPolicies", {}).items():
        name = policy.get("annotations", {}).get("id", pid)
        terms = [
            term
            for condition in policy.get("conditions", [])
            if condition.get("kind") == "when"
            for term in _conjuncts(condition.get("body"))
        ]
        if not any(_is_record_type_test(term, own) for term in terms):
            problems.append(
                f"domain {domain.name}: policy {name} must test resource.record_type "
                f"== one of {sorted(own)} in its when clause"
            )
    return problems


def _conjuncts(expr: Any) -> list[Any]:
    if isinstance(expr, dict) and "&&" in expr:
        return _conjuncts(expr["&&"]["left"]) + _conjuncts(expr["&&"]["right"])
    return [expr]


def _is_record_type_test(expr: Any, own: set[str]) -> bool:
    if not isinstance(expr, dict) or "==" not in expr:
        return False
    sides = (expr["=="].get("left"), expr["=="].get("right"))
    attr = {".": {"left": {"Var": "resource"}, "attr": "record_type"}}
    values = [s.get("Value") for s in sides if isinstance(s, dict) and "Value" in s]
    return attr in sides and len(values) == 1 and values[0] in own


def _read_cedar(paths: Iterable[Path]) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


def _validate(text: str, schema: str, label: str, *, town: bool) -> list[str]:
    problems: list[str] = []
    result = cedarpy.validate_policies(text, schema)
    if not result.validation_passed:
        problems += [f"{label}: {e}" for e in result.errors]
        return problems
    if town and _READS_NOW.search(text):
        # Decisions under agreements are cached per validity phase, which is
        # only sound while no policy compares ``now`` with anything else.
        problems.append(f"{label}: a town's policy may not read context.now")
    document = json.loads(cedarpy.policies_to_json_str(text))
    for pid, policy in document.get("staticPolicies", {}).items():
        annotation = policy.get("annotations", {}).get("id")
        if not annotation:
            problems.append(f"{label}: policy {pid} has no @id annotation")
        if town and policy.get("effect") != "forbid":
            problems.append(
                f"{label}: policy {annotation or pid} is a permit; towns may only forbid"
            )
    if document.get("templates"):
        problems.append(f"{label}: policy templates are not used here")
    return problems
