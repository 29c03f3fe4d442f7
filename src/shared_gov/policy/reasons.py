"""Why a request was denied, in one sentence (Cedar gives no reason for a default deny).

:func:`explain` names the condition that failed, for staff, auditors and
the audit record: the operator's role, a missing purpose or MFA, a field
the purpose does not cover, 支援措置, or the terms of a sharing agreement.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared_gov.domains import registry
from shared_gov.policy.requests import Actor, AgreementTerms, Query


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
