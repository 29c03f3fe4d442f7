"""Reading and changing a town's registered issuer in ``catalog.issuers``.

Used by :class:`~shared_gov.api.issuers.IssuerController`. A town's
identity provider decides who is who — whoever changes it can mint the town's
staff — so after enrolment no single admin changes it (four eyes,
docs/separation-of-duties.md): a change (replace or remove; keys, URL,
audience, algorithms, claim mappings alike) is stored as a *proposal* in
``catalog.issuer_proposals`` and takes effect only when a different admin of
the town, authenticated by the issuer in effect, approves it naming the
proposal's id and digest. At most one proposal is pending per town; a new one
replaces it; it expires after :data:`PROPOSAL_TTL`; the proposer withdraws
it or another admin rejects it. Only a town that is not enrolled and has no
issuer (development, where built-in tokens act as its admin) registers one in
a single step — that is the bootstrap, like redeeming an enrolment code.

Every step runs in one catalog transaction that takes the town's
provisioning lock (the one onboarding, enrolment and staff changes take, so
proposals, approvals, suspensions and manifests cannot interleave) and
records its audit event in the town's log in that transaction. An approval
commits ``pg_notify('shared_gov_policy', <town>)`` with the change, so every
worker drops its cached issuers right after the commit; the caller also
invalidates its own process's registry before answering.

Modules: :mod:`.current` (the issuer in effect), :mod:`.proposals` (a
proposal, its digest, its rows), :mod:`.four_eyes` (the steps).
"""

from shared_gov.auth.subjects import person_key

from .current import get_issuer, replace_issuer, to_json
from .four_eyes import approve, cancel, pending, propose
from .proposals import PROPOSAL_TTL, Kind, Proposal, proposal_digest

__all__ = [
    "PROPOSAL_TTL",
    "Kind",
    "Proposal",
    "approve",
    "cancel",
    "get_issuer",
    "pending",
    "person_key",
    "proposal_digest",
    "propose",
    "replace_issuer",
    "to_json",
]
