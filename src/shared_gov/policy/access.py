"""What a service receives to authorise its work: :class:`Access`.

An ``Access`` binds the verified principal, the actor attributes Cedar reads
(including the purposes granted to this person), the purpose stated for this
request, the engine, and the town whose records it decides on (``town``:
every decision is about that town's records, so no call names it again).
Services call :meth:`Access.require` before a record-level action and
:meth:`Access.field_view` to learn which fields of a record they may return.
Denials raise 403 with a ``reason`` naming the failed condition and the
determining policy ids (kept for the audit record).

A cross-town request carries the agreement it relies on (``agreement`` and
the request time ``now``); every decision is then taken under it, and every
denial is a plain 404 to the caller (DESIGN.md rule 3: without a valid
agreement nobody learns what exists in another town), with the reason kept
for the audit record only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared_gov import errors
from shared_gov.audit.recorder import AuditEvent
from shared_gov.auth.principal import Principal
from shared_gov.domains import registry
from shared_gov.messages import access as m
from shared_gov.messages.core import Language, render
from shared_gov.policy.engine import PolicyEngine
from shared_gov.policy.purposes import Purpose
from shared_gov.policy.requests import Actor, AgreementTerms, Decision, Query, Resource


@dataclass(frozen=True, slots=True)
class FieldView:
    """Which personal fields of one class of record may be returned."""

    allowed: frozenset[str]
    withheld: tuple[str, ...]
    reasons: dict[str, str]
    _rendered: dict[str, dict[str, str]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not self.allowed

    def reasons_in(self, language: Language) -> dict[str, str]:
        """``reasons`` rendered in ``language``: plain strings, made once per view
        (views are shared across requests), so a response encodes no message."""
        rendered = self._rendered.get(language)
        if rendered is None:
            rendered = self._rendered[language] = {
                name: render(reason, language) for name, reason in self.reasons.items()
            }
        return rendered


@dataclass(slots=True)
class Access:
    principal: Principal
    actor: Actor
    purpose: Purpose | None
    engine: PolicyEngine
    town: str
    """The town whose records every decision of this Access is about."""
    audit: AuditEvent = field(default_factory=lambda: AuditEvent(action="unknown"))
    """What this request touched; services fill it, the tenant scope records it."""
    decisions: list[tuple[str, Decision]] = field(default_factory=list)
    """Every decision taken for this request (action or field, decision): for audit."""
    agreement: AgreementTerms | None = None
    """The agreement a cross-town request relies on; None inside the caller's own town."""
    now: int = 0
    """Request time in Unix seconds (read by the policies only with an agreement)."""
    destinations: dict[str, str] = field(default_factory=dict)
    """Under an agreement: resident id → town of their pending move-out (services fill it)."""
    decided: bool = False
    """Cedar has decided on this Access's purpose (:meth:`require`, :meth:`field_view`):
    only then does the log record the purpose (docs/audit.md, "Purposes")."""
    _views: dict[tuple[str, bool, str, str, bool, str], FieldView] = field(default_factory=dict)

    def destination(self, resident_id: str) -> str:
        """The ``move_destination`` Cedar reads for this record ("" if none known)."""
        return self.destinations.get(resident_id, "")

    def require(
        self,
        action: str,
        *,
        support_measure: bool = False,
        by_individual_number: bool = False,
        record_type: str = "",
        owner: str = "",
    ) -> Decision:
        """Allow a record-level action or raise 403 with the reason.

        ``record_type``: as the registry names it; "" is the default one.
        ``owner``: the key of the supplier who owns the record ("" for none).
        """
        self.decided = True
        decision = self.engine.decide(
            self.actor,
            Query(
                action,
                Resource(
                    "Record",
                    self.town,
                    support_measure=support_measure,
                    record_type=record_type,
                    owner=owner,
                ),
                self.purpose,
                by_individual_number,
                agreement=self.agreement,
                now=self.now,
            ),
        )
        self.decisions.append((action, decision))
        if not decision.allowed:
            raise self.refusal(decision.reason or m.DENIED_BY_POLICY, list(decision.policy_ids))
        return decision

    def refusal(self, reason: str, policies: list[str] | None = None) -> errors.DomainError:
        """403 with the reason at home; under an agreement, 404 (reason for the audit only)."""
        if self.agreement is None:
            return errors.forbidden(reason, policies)
        return errors.concealed(reason, policies or [])

    def field_view(
        self,
        support_measure: bool,
        state: str = "active",
        move_destination: str = "",
        linked: bool = False,
        record_type: str = "",
    ) -> FieldView:
        """Per-field decisions for records of the town, protection class, state and
        destination of a pending move-out.

        ``linked``: the record is or was filed under a household holding a person
        under 支援措置 (``linked_to_protected`` in Cedar; see docs/support-measures.md).
        ``record_type``: whose fields (the registry's name; "" is the default type).
        The view names fields by their policy names.
        """
        self.decided = True
        tenant = self.town
        key = (tenant, support_measure, state, move_destination, linked, record_type)
        view = self._views.get(key)
        if view is not None:
            return view
        terms = self.agreement
        shared_key = (
            self.actor,
            self.purpose.code if self.purpose else None,
            tenant,
            support_measure,
            state,
            move_destination,
            linked,
            record_type,
            terms,
            terms.phase(self.now) if terms is not None else None,
        )
        cached = self.engine.views.get(shared_key)
        if cached is not None and cached[0] == self.engine.generation:
            shared: FieldView = cached[1]
            self._views[key] = shared
            return shared
        names = registry.policy_fields(record_type or None)
        queries = [
            Query(
                "read",
                Resource(
                    "Field",
                    tenant,
                    name,
                    support_measure,
                    state,
                    linked_to_protected=linked,
                    move_destination=move_destination,
                    record_type=record_type,
                ),
                self.purpose,
                agreement=terms,
                now=self.now,
            )
            for name in names
        ]
        decisions = self.engine.decide_many(self.actor, queries)
        allowed = frozenset(n for n, d in zip(names, decisions, strict=True) if d.allowed)
        reasons = {
            n: d.reason or m.DENIED for n, d in zip(names, decisions, strict=True) if not d.allowed
        }
        view = FieldView(allowed, tuple(n for n in names if n not in allowed), reasons)
        self._views[key] = view
        # Whole views are cached across requests too: one lookup instead of 22.
        if len(self.engine.views) > 10_000:
            self.engine.views.clear()
        self.engine.views[shared_key] = (self.engine.generation, view)
        return view

    def readable(
        self,
        support_measure: bool,
        state: str = "active",
        move_destination: str = "",
        linked: bool = False,
        record_type: str = "",
    ) -> FieldView:
        """The field view, or 403 (404 under an agreement) when not one field may be read."""
        view = self.field_view(support_measure, state, move_destination, linked, record_type)
        if view.empty:
            first = next(iter(view.reasons.values()), m.NO_FIELD_READABLE)
            raise self.refusal(first)
        return view


def denied(decision: Decision) -> errors.DomainError:
    return errors.forbidden(decision.reason or m.DENIED_BY_POLICY, list(decision.policy_ids))
