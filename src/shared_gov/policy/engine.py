"""The Cedar policy engine: loading, validation, cached decisions, explanations.

Policies live in ``policies/*.cedar`` (the platform's, reviewed),
in each installed domain's folder (``DomainSpec.policies``: they may permit,
but only on the domain's own record types) and in
``policies/tenants/<code>/*.cedar`` (a town's own). Everything is validated
against ``policies/schema.cedarschema`` when the engine is built, so the
service refuses to start on an invalid policy. A town's files may only
``forbid``: Cedar's rule that a forbid always wins then guarantees a town can
narrow, but never widen, what the platform allows. A town's policies are
evaluated only for requests on that town.

Decisions are cached on exactly what the policies read — the actor's
attributes (town, department, roles, MFA, granted purposes; not the staff id),
the action, the resource's attributes and the purpose — so listing 100
residents × 18 fields costs a handful of engine calls, batched into one
``is_authorized_batch``. :meth:`PolicyEngine.invalidate` empties the cache
when policies, permissions or agreements change.

Cedar explains an Allow or a forbid by the policies that determined it, but
a default deny has no reason; :func:`explain` names the failed condition so
staff, auditors and the audit record get a sentence, not just "denied".
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cedarpy

from shared_gov import metrics
from shared_gov.domains import registry
from shared_gov.policy.purposes import Purpose

NAMESPACE = "SharedGov"
_CACHE_SIZE = 50_000
_READS_NOW = re.compile(r'context\s*(\.\s*now\b|\[\s*"now"\s*\])')


class PolicyError(ValueError):
    """A policy file is invalid; carries every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Actor:
    """The attributes of the acting principal that policies read.

    ``staff_id`` is carried for logs and audit but is not part of the cache
    key: no policy reads it.
    """

    tenant: str | None
    department: str
    roles: frozenset[str]
    mfa: bool
    purposes: frozenset[str]
    operator: bool = False
    staff_id: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Resource:
    """What is acted on: a field of a record, a record, a town, an audit log."""

    kind: str  # "Field" | "Record" | "Town" | "AuditLog"
    tenant: str
    name: str = ""
    """A Field's policy name (``family_name``; ``Invoice.amount`` for a record type
    that qualifies its names, see ``domains.registry``)."""
    support_measure: bool = False
    state: str = "active"
    """The record's state (active, moved_out, ...): the standing move agreement reads it."""
    move_destination: str = ""
    """Town code of the record's pending move-out, "" if none (the standing move agreement
    serves only that town). Part of the decision cache key like every attribute here."""
    linked_to_protected: bool = False
    """The record is or was filed under a household holding a person under 支援措置
    (docs/support-measures.md). Part of the decision cache key, like every attribute here."""
    record_type: str = ""
    """A Field's or Record's record type as the registry names it (``Resident``);
    "" means the registry's default one. Part of the decision cache key."""


@dataclass(frozen=True, slots=True)
class AgreementTerms:
    """One version of a sharing agreement, as the policies read it.

    Times are Unix seconds. The whole value is part of the decision cache key,
    so a new version (accepted, revoked, changed) never reuses a decision.
    """

    agreement_id: str
    version: int
    provider: str
    recipient: str
    """A town code, or "*" (every tenant) for the standing move agreement."""
    kind: str
    status: str
    departments: frozenset[str]
    purposes: frozenset[str]
    fields: frozenset[str]
    actions: frozenset[str]
    valid_from: int
    valid_until: int

    def phase(self, now: int) -> int:
        """-1 before, 0 within, 1 after the validity window (both ends included)."""
        if now < self.valid_from:
            return -1
        return 0 if now <= self.valid_until else 1


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    policy_ids: tuple[str, ...]
    """The @id of each policy that determined the decision (empty on default deny)."""
    reason: str | None = None
    """Why it was denied, in one sentence; None when allowed."""


def _context(q: Query) -> dict[str, Any]:
    purpose = q.purpose
    context: dict[str, Any] = {
        "purpose": purpose.code if purpose else "",
        "purpose_fields": sorted(purpose.fields) if purpose else [],
        "purpose_actions": sorted(purpose.actions) if purpose else [],
        "purpose_individual_number": bool(purpose and purpose.individual_number),
        "by_individual_number": q.by_individual_number,
    }
    if q.agreement is not None:
        # ``now`` is present only with an agreement, and the policies compare
        # it only with that agreement's validity window: that is what lets
        # decisions be cached per window phase instead of per second.
        context["agreement"] = {"__entity": _uid("Agreement", _agreement_ident(q.agreement))}
        context["now"] = q.now
    return context


def _agreement_ident(terms: AgreementTerms) -> str:
    return f"{terms.agreement_id}@{terms.version}"


def _agreement_entity(terms: AgreementTerms) -> dict[str, Any]:
    return {
        "uid": _uid("Agreement", _agreement_ident(terms)),
        "attrs": {
            "provider": terms.provider,
            "recipient": terms.recipient,
            "kind": terms.kind,
            "status": terms.status,
            "departments": sorted(terms.departments),
            "purposes": sorted(terms.purposes),
            "fields": sorted(terms.fields),
            "actions": sorted(terms.actions),
            "valid_from": terms.valid_from,
            "valid_until": terms.valid_until,
        },
        "parents": [],
    }


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": f"{NAMESPACE}::{kind}", "id": ident}


def _principal_entity(actor: Actor) -> dict[str, Any]:
    if actor.operator:
        return {"uid": _uid("Operator", "p"), "attrs": {}, "parents": []}
    return {
        "uid": _uid("Staff", "p"),
        "attrs": {
            "tenant": actor.tenant or "",
            "department": actor.department,
            "roles": sorted(actor.roles),
            "mfa": actor.mfa,
            "purposes": sorted(actor.purposes),
        },
        "parents": [],
    }


def _resource_entity(resource: Resource, ident: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"tenant": resource.tenant}
    if resource.kind in ("Field", "Record"):
        attrs["record_type"] = resource.record_type or registry.default_record_type().name
    if resource.kind == "Field":
        attrs.update(
            name=resource.name,
            support_measure=resource.support_measure,
            linked_to_protected=resource.linked_to_protected,
            state=resource.state,
            move_destination=resource.move_destination,
        )
    elif resource.kind == "Record":
        attrs.update(
            support_measure=resource.support_measure,
            linked_to_protected=resource.linked_to_protected,
            state=resource.state,
            move_destination=resource.move_destination,
        )
    return {"uid": _uid(resource.kind, ident), "attrs": attrs, "parents": []}


@dataclass(frozen=True, slots=True)
class Query:
    """One question to the engine."""

    action: str
    resource: Resource
    purpose: Purpose | None = None
    by_individual_number: bool = False
    area: str = ""
    """For ``administer``: "departments", "staff", "issuer" or "agreements"."""
    agreement: AgreementTerms | None = None
    """The agreement a cross-town request relies on (X-Agreement)."""
    now: int = 0
    """Request time (Unix seconds); read by the policies only with an agreement."""


class PolicyEngine:
    """Validated policy sets (platform + each town's) and the decision cache."""

    def __init__(self, policies_dir: Path) -> None:
        self.policies_dir = policies_dir
        schema_text = with_record_actions(
            (policies_dir / "schema.cedarschema").read_text(encoding="utf-8")
        )
        self._schema = cedarpy.Schema.from_str(schema_text)
        self._schema_text = schema_text
        platform = _read_cedar(sorted(policies_dir.glob("*.cedar")))
        problems = _validate(platform, schema_text, "platform", town=False)
        for domain, files in registry.policy_files():
            text = _read_cedar(files)
            if text.strip():
                found = _validate(text, schema_text, f"domain {domain.name}", town=False)
                problems += found or _own_records_only(text, domain)
                platform += "\n" + text
        self._platform_text = platform
        self._sets: dict[str | None, cedarpy.PolicySet] = {}
        self._annotations: dict[str | None, dict[str, str]] = {}
        self._towns: dict[str, str] = {}
        tenants_dir = policies_dir / "tenants"
        if tenants_dir.is_dir():
            for town_dir in sorted(p for p in tenants_dir.iterdir() if p.is_dir()):
                text = _read_cedar(sorted(town_dir.glob("*.cedar")))
                if text.strip():
                    problems += _validate(text, schema_text, f"town {town_dir.name}", town=True)
                    self._towns[town_dir.name] = text
        if problems:
            raise PolicyError(problems)
        self._cache: OrderedDict[tuple[Any, ...], Decision] = OrderedDict()
        self.views: dict[tuple[Any, ...], tuple[int, Any]] = {}
        """Whole per-field views by (actor, purpose, town, protection), for Access."""
        self.generation = 0
        self.engine_calls = 0

    @property
    def towns_with_policies(self) -> list[str]:
        return sorted(self._towns)

    def _policy_set(self, tenant: str | None) -> tuple[cedarpy.PolicySet, dict[str, str]]:
        key = tenant if tenant in self._towns else None
        if key not in self._sets:
            text = self._platform_text + ("\n" + self._towns[key] if key else "")
            self._sets[key] = cedarpy.PolicySet.from_str(text)
            document = json.loads(cedarpy.policies_to_json_str(text))
            self._annotations[key] = {
                pid: str(p.get("annotations", {}).get("id", pid))
                for pid, p in document["staticPolicies"].items()
            }
        return self._sets[key], self._annotations[key]

    def invalidate(self, _tenant: str = "*") -> None:
        """Forget every cached decision (permissions, policies or agreements changed)."""
        self._cache.clear()
        self.views.clear()
        self.generation += 1

    def decide(self, actor: Actor, query: Query) -> Decision:
        return self.decide_many(actor, [query])[0]

    def decide_many(self, actor: Actor, queries: Sequence[Query]) -> list[Decision]:
        """Decisions for ``queries`` in order; uncached ones go to Cedar in one batch."""
        keys = [_cache_key(actor, q) for q in queries]
        results: list[Decision | None] = []
        missing: dict[tuple[Any, ...], Query] = {}
        for key, query in zip(keys, queries, strict=True):
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
            elif key not in missing:
                missing[key] = query
            results.append(cached)
        if missing:
            computed = self._evaluate(actor, list(missing.values()))
            for key, decision in zip(missing, computed, strict=True):
                self._cache[key] = decision
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
            results = [
                r if r is not None else self._cache[k] for r, k in zip(results, keys, strict=True)
            ]
        return metrics.count_decisions([r for r in results if r is not None])

    def _evaluate(self, actor: Actor, queries: list[Query]) -> list[Decision]:
        # Requests in one batch may concern different towns (cross-town reads
        # later); group by the town whose policy set applies.
        by_town: dict[str | None, list[int]] = {}
        for i, q in enumerate(queries):
            by_town.setdefault(q.resource.tenant, []).append(i)
        out: list[Decision | None] = [None] * len(queries)
        for town, indexes in by_town.items():
            policy_set, annotations = self._policy_set(town)
            entities = [_principal_entity(actor)]
            requests = []
            principal_uid = entities[0]["uid"]
            seen: dict[Resource, str] = {}
            agreements: set[AgreementTerms] = set()
            for i in indexes:
                q = queries[i]
                if q.agreement is not None and q.agreement not in agreements:
                    agreements.add(q.agreement)
                    entities.append(_agreement_entity(q.agreement))
                ident = seen.get(q.resource)
                if ident is None:
                    ident = seen[q.resource] = f"r{len(seen)}"
                    entities.append(_resource_entity(q.resource, ident))
                context: dict[str, Any] = (
                    {"area": q.area}
                    if q.action == "administer"
                    else {}
                    if q.action in ("audit", "read_events")
                    else _context(q)
                )
                requests.append(
                    {
                        "principal": principal_uid,
                        "action": _uid("Action", q.action),
                        "resource": _uid(q.resource.kind, ident),
                        "context": context,
                    }
                )
            self.engine_calls += 1
            answers = cedarpy.is_authorized_batch(requests, policy_set, entities, self._schema)
            for i, answer in zip(indexes, answers, strict=True):
                if answer.diagnostics.errors:
                    # An evaluation error is a deny, and a bug worth seeing.
                    out[i] = Decision(False, (), "the policy could not be evaluated")
                    continue
                ids = tuple(annotations.get(pid, pid) for pid in answer.diagnostics.reasons)
                if answer.allowed:
                    out[i] = Decision(True, ids)
                else:
                    out[i] = Decision(False, ids, explain(actor, queries[i], ids))
        return [d for d in out if d is not None]


def _cache_key(actor: Actor, q: Query) -> tuple[Any, ...]:
    return (
        actor,
        q.action,
        q.resource,
        q.purpose.code if q.purpose else None,
        q.by_individual_number,
        q.area,
        q.agreement,
        q.agreement.phase(q.now) if q.agreement is not None else None,
    )


_ACTION_DECL = re.compile(r"\baction\s+((?:\"[^\"]+\"\s*,?\s*)+)appliesTo")


def with_record_actions(schema: str) -> str:
    """The schema with every installed record action declared on ``Record``.

    The schema file declares the residents' actions; another domain's record
    actions (``DomainSpec`` record types) are added here, inside the schema's
    one namespace block (Cedar refuses the same namespace twice), with the
    context every record action has. The file itself never names a domain's
    action it does not know.
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
        "        principal: [Staff, Operator],\n"
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


def explain(actor: Actor, query: Query, policy_ids: Sequence[str]) -> str:
    """One sentence naming the condition that failed (Cedar gives none for a default deny)."""
    r = query.resource
    purpose = query.purpose
    personal = r.kind in ("Field", "Record")
    if actor.operator and personal:
        return "operators never read or change residents"
    if personal and "auditor" in actor.roles:
        return "auditors read the audit log, not personal fields"
    if actor.tenant != r.tenant and not actor.operator:
        terms = query.agreement
        if terms is None or not personal:
            return "the record belongs to another town"
        return _explain_agreement(actor, query, terms)
    if query.action == "read_events":
        return "reading the town's events needs the integration or admin role"
    if r.kind == "Town":
        if actor.operator:
            return f"operators may not administer a town's {query.area}"
        return "administering the town needs the admin role"
    if r.kind == "AuditLog":
        return "reading the audit log needs the auditor role"
    if "staff" not in actor.roles:
        return "only staff act on resident records (the admin role grants no personal data)"
    if purpose is None:
        return "no purpose of use was stated"
    if purpose.code not in actor.purposes:
        return (
            f"purpose {purpose.code} is not granted to this staff member"
            f" (department {actor.department or 'none'})"
        )
    if r.kind == "Field":
        if r.name not in purpose.fields:
            return f"purpose {purpose.code} does not cover {r.name}"
        number = r.name in registry.individual_number_fields()
        if number and not purpose.individual_number:
            return f"purpose {purpose.code} is not a listed use of the individual number"
        if number and not actor.mfa:
            return "two-factor authentication required"
        if (r.support_measure or r.linked_to_protected) and r.name in registry.whereabouts_fields():
            return _whereabouts_reason(r.support_measure)
    else:
        if query.action not in purpose.actions:
            return f"purpose {purpose.code} does not cover {query.action}"
        if query.by_individual_number and not purpose.individual_number:
            return f"purpose {purpose.code} is not a listed use of the individual number"
        if query.by_individual_number and not actor.mfa:
            return "two-factor authentication required"
        if query.action == "protect" and actor.department != "shimin":
            return "only 市民課 sets support measures"
    if policy_ids:
        return "denied by policy " + ", ".join(policy_ids)
    return "no policy permits this"


WITHHELD = "withheld"
"""The reason a linked record's whereabouts are withheld, as the caller reads it."""


def _whereabouts_reason(protected: bool) -> str:
    """Why rule 1 withholds a whereabouts field (docs/support-measures.md).

    A protected record says so (its ``support_measure`` flag is shown
    anyway). A linked one does not name 支援措置: to a caller who already
    knows the address, that wording would tell that someone protected lives
    there (round-3 review N3); it gets the neutral reason.
    """
    return "withheld under support measures (支援措置)" if protected else WITHHELD


def _explain_agreement(actor: Actor, query: Query, terms: AgreementTerms) -> str:
    """Why a cross-town request under ``terms`` was denied (for the audit record)."""
    r = query.resource
    purpose = query.purpose.code if query.purpose else ""
    field_or_action = r.name if r.kind == "Field" else query.action
    checks = (
        (terms.status != "active", f"agreement {terms.agreement_id} is {terms.status}"),
        (terms.provider != r.tenant, "the agreement's provider is another town"),
        (
            terms.recipient not in (actor.tenant, "*"),
            "the agreement's recipient is another town",
        ),
        (terms.phase(query.now) < 0, "the agreement is not yet in force"),
        (terms.phase(query.now) > 0, "the agreement has expired"),
        (
            actor.department not in terms.departments,
            f"the agreement does not cover department {actor.department or 'none'}",
        ),
        (purpose not in terms.purposes, f"the agreement does not cover purpose {purpose}"),
        (
            r.kind == "Field" and r.name not in terms.fields,
            f"the agreement does not cover {r.name}",
        ),
        (
            (r.kind == "Field" and "read" not in terms.actions)
            or (r.kind == "Record" and query.action not in terms.actions),
            f"the agreement does not cover {'read' if r.kind == 'Field' else query.action}",
        ),
        (
            terms.kind == "standing_move" and r.kind == "Field" and r.state != "moved_out",
            "the standing move agreement covers only residents who registered a move-out",
        ),
        (
            terms.kind == "standing_move"
            and r.kind == "Field"
            and r.move_destination != actor.tenant,
            "the standing move agreement covers only the new town of a pending move-out",
        ),
        ("staff" not in actor.roles, "only staff act on resident records"),
        (
            purpose not in actor.purposes,
            f"purpose {purpose} is not granted to this staff member",
        ),
        (
            query.purpose is not None and r.kind == "Field" and r.name not in query.purpose.fields,
            f"purpose {purpose} does not cover {field_or_action}",
        ),
        (
            r.kind == "Field"
            and (r.support_measure or r.linked_to_protected)
            and r.name in registry.whereabouts_fields(),
            _whereabouts_reason(r.support_measure),
        ),
        (
            r.kind == "Field" and r.name in registry.individual_number_fields() and not actor.mfa,
            "two-factor authentication required",
        ),
    )
    for failed, sentence in checks:
        if failed:
            return sentence
    return "no policy permits this under the agreement"
