"""The workflow: 受付 → 確認 → 検収 → 決裁 → 支出命令 → 支払, and 差し戻し.

- ``check``: received → checked; 会計課 (``invoice_check``, ``invoices.payment``).
- ``inspect``: checked → inspected; the ordering department (``invoice_inspect``,
  ``invoices.inspection``): 検収.
- ``approve``: inspected → approved; an approver whose level covers the amount
  (``invoice_approve``, ``invoices.approval.N``): 決裁.
- ``order``: approved → payment_ordered; 会計課 (``invoice_order``): 支出命令.
- ``pay``: payment_ordered → paid; 会計課 (``invoice_pay``).
- ``return``: received or checked → returned; 会計課 at the check, the ordering
  department at 検収 (差し戻し); a reason is required, the supplier sees it.

Every step takes If-Match (the invoice's ETag; 428 without, 412 when stale),
is decided by Cedar, is a sealed ledger entry and an audit event in the same
transaction. Separation of duties: whoever confirmed 検収 cannot approve the
same invoice (403). 決裁 levels: the town's thresholds (``approval_levels``)
give the level an amount needs; the approver states an ``invoices.approval.N``
purpose with N at least that level (a purpose granted to them, like any).
A correction is a new invoice referring to the earlier one (``corrects``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared_gov import errors
from shared_gov.auth.subjects import person_key
from shared_gov.db import TenantUnitOfWork
from shared_gov.policy import Access

from . import messages as m
from . import repository as repo
from .models import Invoice
from .service import INVOICE, expected_version, parse_id, touched


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    sources: tuple[str, ...]
    target: str
    action: str


STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step("check", ("received",), "checked", "invoice_check"),
        Step("inspect", ("checked",), "inspected", "invoice_inspect"),
        Step("approve", ("inspected",), "approved", "invoice_approve"),
        Step("order", ("approved",), "payment_ordered", "invoice_order"),
        Step("pay", ("payment_ordered",), "paid", "invoice_pay"),
        Step("return", ("received", "checked"), "returned", ""),
    )
}

APPROVAL = "invoices.approval."


def required_level(amount: Decimal, levels: list[tuple[int, int | None]]) -> int:
    """The lowest level whose threshold covers ``amount`` (a negative correction: its size)."""
    size = abs(amount)
    for level, up_to in levels:
        if up_to is None or size <= up_to:
            return level
    return levels[-1][0] if levels else 1


def _level_of(purpose: str | None) -> int:
    if purpose is None or not purpose.startswith(APPROVAL):
        return 0
    tail = purpose[len(APPROVAL) :]
    return int(tail) if tail.isdigit() else 0


async def advance(
    uow: TenantUnitOfWork,
    access: Access,
    invoice_id: str,
    step_name: str,
    if_match: str | None,
    reason: str | None,
) -> Invoice:
    step = STEPS.get(step_name)
    if step is None:
        raise errors.not_found(m.NO_STEP)
    found = await repo.invoice(uow, parse_id(invoice_id, "invoice"))
    # Decide before anything about the invoice is told: the action of the step,
    # and for a return the action of the stage it is returned from.
    action = step.action or (
        "invoice_check" if found and found.state == "received" else "invoice_inspect"
    )
    access.require(action, record_type=INVOICE)
    if found is None:
        raise errors.not_found(m.NO_INVOICE)
    touched(access, [found.id])
    version = expected_version(if_match)
    if found.state not in step.sources:
        raise errors.conflict(m.WRONG_STATE(state=found.state, target=step.target))
    if version != found.version:
        raise errors.precondition_failed(m.INVOICE_CHANGED)
    subject = access.principal.subject
    if step.name == "return" and not reason:
        raise errors.invalid_field("/reason", m.RETURN_SAYS_WHY)
    if step.name == "approve":
        # One person, one key (auth.subjects.person_key): `D-0001` or a
        # full-width `ｄ－０００１` is the same person as `d-0001`.
        if found.inspected_by is not None and person_key(found.inspected_by) == person_key(subject):
            raise errors.forbidden(m.INSPECTOR_CANNOT_APPROVE)
        needed = required_level(found.amount, await repo.approval_levels(uow))
        have = _level_of(access.purpose.code if access.purpose else None)
        if have < needed:
            raise errors.forbidden(m.LEVEL_NEEDED(needed=needed, have=have))
    new_version = await repo.change_state(
        uow,
        found.id,
        version=version,
        kind=step.name,
        state=step.target,
        actor=f"staff:{subject}",
        reason=reason if step.name == "return" else None,
        inspected_by=subject if step.name == "inspect" else None,
    )
    if new_version is None:
        raise errors.precondition_failed(m.INVOICE_CHANGED)
    found.state = step.target  # type: ignore[assignment]
    found.version = new_version
    if step.name == "inspect":
        found.inspected_by = subject
    return found
