"""Gates: how each family of town routes is let in.

A :class:`Gate` is the entry's parameters for one family of routes — what it
decides before the handler runs, which purpose it records, whether it opens
the town's unit of work, and what it records of a granted request. A route
names its gate in its declaration (``**audited(..., gate=ISSUER)``); the
entry (:mod:`.scope`) is the same code for all of them.

The families:

- :data:`RECORDS`: a town's records (residents, a domain's own). X-Purpose is
  required; the services decide per record and per field through the
  ``Access`` the entry hands over; every access is recorded.
- :data:`DEPARTMENTS`, :data:`STAFF`, :data:`ISSUER`: the town's
  administration (Cedar ``administer`` on ``Town``, by area). A change
  records itself in its own transaction; a granted read is not recorded.
- :data:`AGREEMENTS`: a sharing agreement's lifecycle, decided in the
  caller's own town (``administer``, area ``agreements``);
  :data:`AGREEMENT_READS`: listing and reading them, for any of its principals.
- :data:`AUDITORS` and :data:`PROOFS`: the town's audit log (Cedar ``audit``
  on ``AuditLog``), decided in a guard before any parameter is decoded.

A domain declares its own gates beside its controllers (the residents'
event feed: ``domains/residents/events_controllers.FEED``; the suppliers'
endpoints of the e-invoice domain, a gate that admits principals of the
platform holding a role instead of the town's own people: :attr:`Gate.admits`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from shared_gov import errors
from shared_gov.auth.principal import Principal
from shared_gov.policy import Decision
from shared_gov.policy.access import denied

OPERATORS_OUTSIDE = "operators have no access to a town's own data"
OTHER_TOWN = "caller from another town"


@dataclass(frozen=True, slots=True)
class Gate:
    """How a family of town routes is let in (module docstring)."""

    name: str
    decides: tuple[str, str] | None = None
    """Cedar action and resource kind decided on the town before the handler
    works (``("audit", "AuditLog")``); None: the services decide per record
    through the entry's ``Access``."""
    area: str = ""
    """The ``administer`` area (departments, staff, issuer, agreements)."""
    purpose: Literal["required"] | None = "required"
    """X-Purpose: ``required`` (400 without a known one; Cedar decides on it,
    and the log records it), None (not read, never recorded: what a caller
    states that nothing decides on is only their word)."""
    serves: str | None = None
    """The purpose a GRANTED request on these routes records when the
    routes serve only one (the auditors': Cedar's ``audit`` is the whole of
    ``kansa.audit``). A refusal records none: nothing was decided on it for
    that caller."""
    operators: str = OPERATORS_OUTSIDE
    """Why an operator is refused (a denial in the log; they get the 404)."""
    refused: Callable[[Decision], errors.DomainError] = denied
    """The refusal of the town's own people whom :attr:`decides` denies."""
    town: Literal["path", "caller"] = "path"
    """Whose town: the path's ``{code}``, or the caller's own (agreements; an
    operator, who has none, is refused in the towns the request names:
    :meth:`.scope.Entry.naming`)."""
    in_guard: bool = False
    """Decided by a guard, before Litestar decodes a parameter or the body
    (whoever may not ask learns nothing about what they sent); unknown query
    parameters are refused next."""
    unit_of_work: bool = True
    """Open the town's unit of work for the handler (``entry.uow``)."""
    records_granted: bool = True
    """The entry records a granted request; False: it records refusals only
    (a granted read holds nothing personal, a change records itself)."""
    quiet_when_empty: bool = False
    """A granted read that returned no rows is not recorded (it disclosed nothing)."""
    members: bool = False
    """Any principal of the town may ask: being its own (step 2) is the whole
    decision (no Cedar query, no purpose)."""
    admits: str | None = None
    """Who is let in: None, the town's own people; a role, the principals of
    the platform who hold it and belong to no town (a supplier's system), in
    every town of the deployment — whether the town knows them is for the
    routes to decide in the entry's unit of work. Such a gate decides through
    ``entry.access`` (``decides`` None) on the one purpose it :attr:`serves`,
    and on no permission of the town: Cedar decides on who they are."""
    own_people: str = ""
    """Why the town's own people are refused on a gate that :attr:`admits` a role."""

    def __post_init__(self) -> None:
        if self.admits is not None and (
            self.decides is not None or self.purpose is not None or self.serves is None
        ):
            raise ValueError(f"gate {self.name}: a role's gate decides per record on one purpose")

    def outsider(self, principal: Principal, code: str) -> str | None:
        """Why ``principal`` is outside town ``code`` (None: the gate lets them in)."""
        if principal.is_operator:
            return self.operators
        if self.admits is None:
            return None if principal.tenant == code else OTHER_TOWN
        if principal.tenant is None and self.admits in principal.roles:
            return None
        return self.own_people if principal.tenant == code else OTHER_TOWN


RECORDS = Gate("records")


def _administration(area: str) -> Gate:
    return Gate(
        f"administration.{area}",
        decides=("administer", "Town"),
        area=area,
        purpose=None,
        operators="operators never change a town's identity or permissions",
        unit_of_work=False,
        records_granted=False,
    )


DEPARTMENTS = _administration("departments")
STAFF = _administration("staff")
ISSUER = _administration("issuer")
AGREEMENTS = Gate(
    "agreements",
    decides=("administer", "Town"),
    area="agreements",
    purpose=None,
    operators="operators never act on a town's agreements",
    town="caller",
    # Who first: a body 400/422 only for the town's admins, recorded in their town.
    in_guard=True,
    unit_of_work=False,
    records_granted=False,
)

AGREEMENT_READS = replace(
    AGREEMENTS,
    name="agreements.read",
    decides=None,
    members=True,
    in_guard=False,
)
"""Listing and reading the agreements of the caller's own town: any of its
principals (staff need the id for X-Agreement); a refusal is recorded in
that town, a granted read is not (an agreement holds no personal data)."""

AUDIT_PURPOSE = "kansa.audit"
"""Recorded as the purpose of auditors' own events: their endpoints serve no other."""

AUDITORS = Gate(
    "auditors",
    decides=("audit", "AuditLog"),
    purpose=None,
    serves=AUDIT_PURPOSE,
    operators="operators do not read a town's audit log",
    in_guard=True,
    unit_of_work=False,
)
# Checkpoints and proofs hold no personal data: a granted read is not recorded.
PROOFS = replace(AUDITORS, name="proofs", records_granted=False)
