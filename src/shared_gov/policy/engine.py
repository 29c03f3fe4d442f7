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
a default deny has no reason; :func:`.reasons.explain` names the failed
condition so staff, auditors and the audit record get a sentence, not just
"denied". What a decision is asked about is :mod:`.requests`; reading and
validating the files, :mod:`.loading`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cedarpy

from shared_gov import metrics
from shared_gov.domains import registry
from shared_gov.policy.loading import (
    PolicyError,
    _own_records_only,
    _read_cedar,
    _validate,
    with_record_actions,
)
from shared_gov.policy.reasons import explain
from shared_gov.policy.requests import (
    Actor,
    AgreementTerms,
    Decision,
    Query,
    Resource,
    _agreement_entity,
    _cache_key,
    _context,
    _principal_entity,
    _resource_entity,
    _uid,
)

_CACHE_SIZE = 50_000


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
