"""Sharing agreements between towns: lifecycle, validation, and the terms a request relies on.

An agreement says which town (provider) shares which fields of its residents
with which other town's departments (recipient), for which purposes and
actions, on which legal basis, from when until when. The provider's admin
proposes, the recipient's admin accepts, either side revokes; each step adds
an immutable version (``catalog.agreement_versions``) and the highest version
is the agreement in force. Nothing here decides access: Cedar does, reading
the current version as an ``Agreement`` entity (``policies/agreements.cedar``).

Onboarding gives every town one *standing move agreement* (provider: that
town, recipient: every tenant, 市民課, ``juki.registration``, the fields of a
転出証明書). One per town rather than one per pair of towns: with all 1,741
municipalities on a deployment, pairs would be three million rows that say
the same thing. Policies restrict it to the new town of a resident's pending
move-out (the old town records it with the move-out), for the fields of the
転出証明書, while the move is pending.

Every step (propose, accept, revoke) is an audit event in the log of each
party town (the provider's only, for the standing agreement, whose recipient
is every tenant), written in the step's own transaction, with the
agreement's status and terms before and after (``reason``, as JSON): no
record, no change. Terms name towns, departments, purposes and fields, never
a resident.

An agreement is made with an *incarnation* of each town (catalog c0014): a
town code offboarded and onboarded again is a new town and inherits nothing.
Offboarding revokes every agreement the town is party to
(:func:`revoke_all`, in the offboarding's transaction, audited in both
towns' logs), and an agreement made with a past incarnation is invisible to
the current one (``sharing.agreement``, :func:`list_for`, :func:`versions`,
:func:`transition`). A re-created town gets a standing move agreement of its
own (a new id).

Modules: :mod:`.terms` (what a request relies on), :mod:`.proposals` (what a
proposal must satisfy), :mod:`.lifecycle` (propose, accept, revoke; listing),
:mod:`.standing` (each town's standing move agreement). The public names are
this package's.
"""

from shared_gov.policy.agreements.lifecycle import (
    list_for,
    parties,
    propose,
    revoke_all,
    transition,
    versions,
)
from shared_gov.policy.agreements.proposals import Proposal
from shared_gov.policy.agreements.standing import ensure_standing, standing_agreement
from shared_gov.policy.agreements.terms import (
    ACTIONS,
    FOREVER,
    STANDING_KIND,
    TermsCache,
    check_call,
    lock_name,
    parse_id,
    terms_from_row,
    terms_in,
)

__all__ = [
    "ACTIONS",
    "FOREVER",
    "STANDING_KIND",
    "Proposal",
    "TermsCache",
    "check_call",
    "ensure_standing",
    "list_for",
    "lock_name",
    "parse_id",
    "parties",
    "propose",
    "revoke_all",
    "standing_agreement",
    "terms_from_row",
    "terms_in",
    "transition",
    "versions",
]
