"""The suppliers' gate: how a supplier's system enters a town (supplier endpoints).

A supplier is a principal of the platform, not of a town
(``Principal.is_supplier``; its subject is its supplier key). Its routes go
through the platform's one guarded entry (:mod:`shared_gov.api.entry`) with
the gate declared here, :data:`SUPPLIERS`, which admits the principals
holding the role ``supplier`` instead of the town's own people
(:attr:`~shared_gov.api.entry.Gate.admits`). The entry then gives the same
guarantees as on every town route:

1. a missing town, and a caller who is not a supplier, get the same 404 —
   before the body is read; the second recorded in the town's log as a
   denial with the reason (another town's people and operators the reason
   every town route gives them, the town's own people :data:`OWN_PEOPLE`);
2. the purpose is fixed (``invoices.supplier``, :data:`PURPOSE`): a supplier
   states none, and Cedar decides on it and on the supplier's key only
   (the town grants a supplier no permission);
3. one unit of work on the town, in which :func:`registered` finds the
   supplier as the town registered it — a town that has not, or that
   deactivated it, is the same 404 — and :func:`require_own` has Cedar decide
   each record action with the record's owner: a supplier acts on its own
   invoices only, another's is the same 404;
4. the access recorded in that transaction before it commits, or the refusal
   or failure in a transaction of its own after the rollback.

Every supplier route's work starts with :func:`registered` (the intake's
functions do it first; sending an invoice reads the registration in the same
statement as the town's settings and hands it to :func:`admitted`).
"""

from __future__ import annotations

from shared_gov import errors
from shared_gov.api.entry import Entry, Gate

from . import repository as repo
from .models import Supplier

PURPOSE = "invoices.supplier"
"""The one purpose of the supplier endpoints, recorded on every granted request."""

OWN_PEOPLE = "the supplier endpoints serve suppliers' systems only"
"""Why the town's own people are refused here (they get the 404 of anyone outside)."""

SUPPLIERS = Gate(
    "suppliers",
    purpose=None,
    serves=PURPOSE,
    admits="supplier",
    own_people=OWN_PEOPLE,
)
"""The supplier endpoints' gate: suppliers' systems, in every town; decided per
record (:func:`require_own`) on :data:`PURPOSE`."""


async def registered(entry: Entry) -> Supplier:
    """The calling supplier as this town registered it; not registered or
    deactivated: the same 404 as a town that does not exist (a denial in the log)."""
    return admitted(await repo.registration_by_key(entry.uow, entry.principal.subject))


def admitted(supplier: Supplier | None) -> Supplier:
    """The registration read for the calling supplier (:func:`registered`, or the
    intake's one statement), or the same 404 when there is none or it is inactive."""
    if supplier is None or not supplier.active:
        raise errors.concealed("the supplier is not registered with this town")
    return supplier


def require_own(entry: Entry, owner: Supplier | None) -> None:
    """Cedar decides the supplier's action on a record ``owner`` owns (None: a
    record of nobody it is: another supplier's); refused: the same 404 as nothing."""
    try:
        entry.access.require(
            "invoice_submit", record_type="Invoice", owner=owner.supplier_key if owner else ""
        )
    except errors.Forbidden as refused:
        raise errors.concealed("not this supplier's invoice", refused.policies or None) from None
