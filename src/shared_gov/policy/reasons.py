"""Why a request was denied, in one sentence (Cedar gives no reason for a default deny).

:func:`explain` names the condition that failed, for staff, auditors and
the audit record: the operator's role, a missing purpose or MFA, a field
the purpose does not cover, 支援措置, or the terms of a sharing agreement.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared_gov.domains import registry
from shared_gov.messages import access as m
from shared_gov.messages.core import FieldName
from shared_gov.policy.requests import Actor, AgreementTerms, Query


def explain(actor: Actor, query: Query, policy_ids: Sequence[str]) -> str:
    """One sentence naming the condition that failed (Cedar gives none for a default deny).

    The sentence is a catalogue message: English as a string (the audit log's
    wording), Japanese where a response renders it.
    """
    r = query.resource
    purpose = query.purpose
    personal = r.kind in ("Field", "Record")
    if actor.operator and personal:
        return m.OPERATORS_NEVER
    if personal and "auditor" in actor.roles:
        return m.AUDITORS_READ_LOG
    if actor.tenant != r.tenant and not actor.operator:
        terms = query.agreement
        if terms is None or not personal:
            return m.OTHER_TOWN
        return _explain_agreement(actor, query, terms)
    if query.action == "read_events":
        return m.EVENTS_NEED_ROLE
    if r.kind == "Town":
        if actor.operator:
            return m.OPERATORS_MAY_NOT_ADMINISTER(area=query.area)
        return m.ADMIN_ROLE_NEEDED
    if r.kind == "AuditLog":
        return m.AUDITOR_ROLE_NEEDED
    if "staff" not in actor.roles:
        return m.ONLY_STAFF
    if purpose is None:
        return m.NO_PURPOSE
    if purpose.code not in actor.purposes:
        return m.PURPOSE_NOT_GRANTED(
            purpose=purpose.code, department=actor.department or m.NO_DEPARTMENT
        )
    if r.kind == "Field":
        if r.name not in purpose.fields:
            return m.PURPOSE_DOES_NOT_COVER(purpose=purpose.code, what=FieldName(r.name))
        number = r.name in registry.individual_number_fields()
        if number and not purpose.individual_number:
            return m.NOT_LISTED_USE(purpose=purpose.code)
        if number and not actor.mfa:
            return m.MFA_REQUIRED
        if (r.support_measure or r.linked_to_protected) and r.name in registry.whereabouts_fields():
            return _whereabouts_reason(r.support_measure)
    else:
        if query.action not in purpose.actions:
            return m.PURPOSE_DOES_NOT_COVER(purpose=purpose.code, what=query.action)
        if query.by_individual_number and not purpose.individual_number:
            return m.NOT_LISTED_USE(purpose=purpose.code)
        if query.by_individual_number and not actor.mfa:
            return m.MFA_REQUIRED
        if query.action == "protect" and actor.department != "shimin":
            return m.ONLY_SHIMIN_PROTECTS
    if policy_ids:
        return m.DENIED_BY_POLICIES(policies=", ".join(policy_ids))
    return m.NO_POLICY_PERMITS


WITHHELD = m.WITHHELD
"""The reason a linked record's whereabouts are withheld, as the caller reads it."""


def _whereabouts_reason(protected: bool) -> str:
    """Why rule 1 withholds a whereabouts field (docs/support-measures.md).

    A protected record says so (its ``support_measure`` flag is shown
    anyway). A linked one does not name 支援措置: to a caller who already
    knows the address, that wording would tell that someone protected lives
    there (round-3 review N3); it gets the neutral reason.
    """
    return m.WITHHELD_SUPPORT_MEASURES if protected else WITHHELD


def _explain_agreement(actor: Actor, query: Query, terms: AgreementTerms) -> str:
    """Why a cross-town request under ``terms`` was denied (for the audit record)."""
    r = query.resource
    purpose = query.purpose.code if query.purpose else ""
    field_or_action = FieldName(r.name) if r.kind == "Field" else query.action
    department = actor.department or m.NO_DEPARTMENT
    checks = (
        (
            terms.status != "active",
            m.AGREEMENT_STATUS(agreement=terms.agreement_id, status=terms.status),
        ),
        (terms.provider != r.tenant, m.AGREEMENT_OTHER_PROVIDER),
        (terms.recipient not in (actor.tenant, "*"), m.AGREEMENT_OTHER_RECIPIENT),
        (terms.phase(query.now) < 0, m.AGREEMENT_NOT_YET),
        (terms.phase(query.now) > 0, m.AGREEMENT_EXPIRED),
        (
            actor.department not in terms.departments,
            m.AGREEMENT_DEPARTMENT(department=department),
        ),
        (purpose not in terms.purposes, m.AGREEMENT_PURPOSE(purpose=purpose)),
        (
            r.kind == "Field" and r.name not in terms.fields,
            m.AGREEMENT_WHAT(what=field_or_action),
        ),
        (
            (r.kind == "Field" and "read" not in terms.actions)
            or (r.kind == "Record" and query.action not in terms.actions),
            m.AGREEMENT_WHAT(what="read" if r.kind == "Field" else query.action),
        ),
        (
            terms.kind == "standing_move" and r.kind == "Field" and r.state != "moved_out",
            m.STANDING_MOVE_MOVED_OUT,
        ),
        (
            terms.kind == "standing_move"
            and r.kind == "Field"
            and r.move_destination != actor.tenant,
            m.STANDING_MOVE_DESTINATION,
        ),
        ("staff" not in actor.roles, m.ONLY_STAFF_SHORT),
        (purpose not in actor.purposes, m.PURPOSE_NOT_GRANTED_SHORT(purpose=purpose)),
        (
            query.purpose is not None and r.kind == "Field" and r.name not in query.purpose.fields,
            m.PURPOSE_DOES_NOT_COVER(purpose=purpose, what=field_or_action),
        ),
        (
            r.kind == "Field"
            and (r.support_measure or r.linked_to_protected)
            and r.name in registry.whereabouts_fields(),
            _whereabouts_reason(r.support_measure),
        ),
        (
            r.kind == "Field" and r.name in registry.individual_number_fields() and not actor.mfa,
            m.MFA_REQUIRED,
        ),
    )
    for failed, sentence in checks:
        if failed:
            return sentence
    return m.NO_POLICY_PERMITS_UNDER_AGREEMENT
