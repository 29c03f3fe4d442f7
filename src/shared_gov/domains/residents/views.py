"""What a reader sees of resident records under rule 1 (docs/support-measures.md).

The field view of each record (a person under 支援措置, or linked to one,
has their whereabouts withheld), and the records another town may not see
at all under an agreement.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.models import Resident
from shared_gov.policy import Access, FieldView


async def views_of(
    uow: TenantUnitOfWork, access: Access, residents: Iterable[Resident]
) -> dict[str, FieldView]:
    """The field view of each record, by id, under rule 1 (docs/support-measures.md).

    A record in the same component as a person under 支援措置 (people joined
    by every household any of them was ever filed under) is
    ``linked_to_protected``: the guardrail then withholds its whereabouts and
    household links from everyone but the town's 市民課 registering
    residents, as for the protected person.
    """
    records = list(residents)
    # "Linked" is the whole connected component of "person —(ever filed
    # under)— household", stored per record by every write that can change
    # it (repository.relink_component): the reads that returned these records
    # carried the flag, so this costs no round trip and no decryption.
    linked = await repo.linked_residents(uow, records)
    return {
        r.id: access.field_view(
            r.support_measure,
            r.state,
            access.destination(r.id),
            linked=r.id in linked,
        )
        for r in records
    }


PROTECTED_ELSEWHERE = "rule 1: a protected or linked record is never shown to another town"
"""The audit reason of a cross-town read refused under rule 1 (the caller gets a plain 404)."""


async def _protected_elsewhere(
    uow: TenantUnitOfWork, access: Access, records: Iterable[Resident]
) -> set[str]:
    """Ids of ``records`` that another town may not see at all (rule 1).

    "Never another town, whatever an agreement says": under ANY agreement
    (bilateral or the standing move agreement) a record under 支援措置 or in
    a protected person's component does not exist for the recipient — not
    withheld field by field, which would still show that the person is
    registered there and since when (their destination town, for a protected
    person who moved). The one-stop move-in does not read through here: the
    destination's 市民課 registering the move cites the leaving record inside
    :mod:`.flows`, which carries the protection instead of showing it.
    """
    if access.agreement is None:
        return set()
    wanted = list(records)
    hidden = {r.id for r in wanted if r.support_measure}
    return hidden | await repo.linked_residents(uow, wanted)


async def view_of(uow: TenantUnitOfWork, access: Access, resident: Resident) -> FieldView:
    """The field view of one record (see :func:`views_of`)."""
    return (await views_of(uow, access, [resident]))[resident.id]
