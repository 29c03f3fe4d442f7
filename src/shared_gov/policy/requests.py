"""What a policy decision is asked about, its answer, and the Cedar request built from them.

:class:`Actor` (the principal's attributes policies read), :class:`Resource`,
:class:`AgreementTerms` (a sharing agreement's version as Cedar sees it),
:class:`Query` and :class:`Decision`; the entities and context handed to
Cedar, and the decision cache's key (exactly what the policies read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared_gov.domains import registry
from shared_gov.policy.purposes import Purpose

NAMESPACE = "SharedGov"


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
    supplier: str = ""
    """A supplier's key when the principal is a supplier's system ("" otherwise)."""
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
    owner: str = ""
    """The supplier key of a Record a supplier owns (an invoice); "" for none."""


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
    if actor.supplier:
        return {"uid": _uid("Supplier", "p"), "attrs": {"supplier": actor.supplier}, "parents": []}
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
        if resource.owner:
            attrs["owner"] = resource.owner
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
