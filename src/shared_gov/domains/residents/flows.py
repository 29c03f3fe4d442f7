"""One-stop move between two towns of the deployment (転入届 citing the old town's record).

When a resident moves from town A to town B and both are tenants, B's 市民課
does not re-key the 転出証明書: it cites A's record (by A's resident id or
住民票コード) and the flow, in ONE database transaction bound in turn to each
town's role:

1. reads B's own permissions (``register`` for the stated purpose);
2. reads A's standing move agreement (created at onboarding) inside the
   transaction, under its shared lock, and decides under it, per field, what
   of A's record may cross: the agreement covers only residents whose
   registered move-out is pending *to B* (A recorded B's town code with the
   move-out, :mod:`.move_outs`; the row is locked FOR UPDATE, so of several
   towns or clerks citing the same person exactly one wins and the others get
   404), and 支援措置 keeps their whereabouts at home (so a protected
   person's previous address is not copied — the flag is; so is the link of
   a person in a protected person's component, docs/support-measures.md);
3. creates B's record from those fields plus what the resident declares at
   B's counter (new address, dates, household), re-encrypted under B's keys
   by B's repository — it is simply a registration in B;
4. confirms A's move-out with the actual move date (転入通知, 住民基本台帳法
   第9条 第1項: the new town notifies the old one, which records it) as a new
   history entry of A's record, and settles the pending move-out (confirmed:
   nobody can cite it again, and B no longer reads A's record);
5. writes both towns' domain events and audit events.

Everything commits together or nothing does. If A is not a tenant of this
deployment, B registers the move-in from the paper certificate as usual
(``POST …/residents``); the request says so with a 422.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from shared_gov import errors
from shared_gov.api.entry import (
    Entry,
    access_for,
    audit_actor,
    failed_attempt,
    known_purpose,
    record_failure,
)
from shared_gov.api.pipeline import services
from shared_gov.audit.recorder import AuditEvent, record_both
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import events, linkage, move_outs, rules, service, views
from shared_gov.domains.residents import messages as m
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.models import EntryEvent, Resident
from shared_gov.domains.residents.schemas import OneStopMoveIn, ResidentCreate
from shared_gov.policy import Access, FieldView, agreements

# What a 転出証明書 gives the new town, and so what B's record takes from A's.
_COPIED = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
    "individual_number",
    "juminhyo_code",
    "former_surname",
    "domicile",
    "resident_type",
)
_REQUIRED = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
)


@dataclass(slots=True)
class MoveResult:
    resident: Resident
    view: FieldView
    transfer_id: str


async def one_stop_move_in(entry: Entry, data: OneStopMoveIn) -> MoveResult:
    """Register in the entry's town (B) a person moving from another tenant (A).

    A pair of towns under the standing move agreement: the entry's parts
    (decision, actor, failure records) with both towns' logs.
    """
    svc, principal, code = services(entry.request), entry.principal, entry.code
    if (data.resident_id is None) == (data.juminhyo_code is None):
        raise errors.invalid_field("/", m.ONE_OF_ID_OR_CODE)
    new = await svc.registry.get(code)
    if new is None or principal.tenant != code:
        raise errors.not_found()
    # The purpose Cedar decides on (or None: an unknown one is refused below).
    actor = audit_actor(entry.request, principal, known_purpose(entry.purpose))
    if data.from_tenant == code:
        raise errors.invalid_field("/from_tenant", m.WITHIN_TOWN)
    old = await svc.registry.get(data.from_tenant)
    if old is None:
        raise errors.invalid_field("/from_tenant", m.NOT_ON_DEPLOYMENT)
    standing = await agreements.standing_agreement(svc.db, old.code)
    transfer_id = str(uuid.uuid4())
    event_b = AuditEvent(action="resident.move_in_from_town", agreement_id=str(standing))
    event_a = AuditEvent(action="resident.move_out_confirmed", agreement_id=str(standing))
    try:
        access_b = await access_for(svc, principal, code, entry.purpose)
        access_b.audit = event_b
        access_a = Access(
            principal, access_b.actor, access_b.purpose, svc.policy, old.code, audit=event_a
        )
        if standing is None:
            raise _refused(f"town {old.code} has no standing move agreement")
        lock = agreements.lock_name(standing)
        async with svc.db.pair(new, old, [lock]) as (at_b, at_a):
            terms = await agreements.terms_in(at_a, standing)
            if terms is None:  # pragma: no cover - created with the town
                raise _refused("the standing move agreement is not readable")
            access_a.agreement, access_a.now = terms, int(time.time())
            result = await _move(at_b, at_a, access_b, access_a, data, transfer_id)
            if svc.settings.audit:
                await record_both(at_a, at_b, actor, event_a, event_b)
    except Exception as exc:

        async def write_both() -> None:
            async with svc.db.pair(old, new) as (at_a, at_b):
                await record_both(at_a, at_b, actor, event_a, event_b)

        if isinstance(exc, errors.DomainError) and exc.outcome is not None:
            if svc.settings.audit:
                failed_attempt(event_a, exc)
                failed_attempt(event_b, exc)
                if isinstance(exc, errors.NotFound):
                    # B's log learns no more than B's caller: not whether A has the
                    # person, nor where else they are moving (DESIGN rule 3).
                    event_b.outcome, event_b.reason = "denied", _NOT_BOUND
                    event_b.policy_ids = []
                await write_both()
        else:
            # Anything else is an "error" event in both logs (an outage: a log line).
            failed_attempt(event_a, exc)
            await record_failure(svc, new, actor, event_b, exc, write_both)
        if not isinstance(exc, errors.DomainError):
            raise
        if isinstance(exc, errors.NotFound):
            raise errors.not_found(_NOT_BOUND) from exc
        raise
    return result


_NOT_BOUND = m.NOT_BOUND


def _refused(reason: str) -> errors.Concealed:
    return errors.concealed(reason)


async def _move(
    at_b: TenantUnitOfWork,
    at_a: TenantUnitOfWork,
    access_b: Access,
    access_a: Access,
    data: OneStopMoveIn,
    transfer_id: str,
) -> MoveResult:
    # Rule 1's components may change in both towns (a protection or link
    # carried to B; a link made in B carried back to A's leaving record,
    # below): both towns' linkage locks before any row lock of either
    # (repository.lock_linkage), in town-code order so that two moves in
    # opposite directions never wait for each other's.
    for uow in sorted((at_a, at_b), key=lambda u: u.code):
        await linkage.lock_linkage(uow)
    # Citing by 住民票コード is a search in A; by A's id, a read.
    if data.juminhyo_code is not None:
        access_a.require("search")
        moved_out = [
            r
            for r in await repo.find_by_juminhyo_code(at_a, data.juminhyo_code)
            if r.state == "moved_out"
        ]
        bound = await move_outs.destinations(at_a, [r.id for r in moved_out])
        found = [r for r in moved_out if bound.get(r.id) == at_b.code]
        if len(found) != 1:
            raise _refused("no resident moving out to this town has this 住民票コード")
        leaving = await repo.get(at_a, found[0].id, lock=True)
    else:
        leaving = await repo.get(at_a, rules.parse_id(data.resident_id or ""), lock=True)
    if leaving is None:
        raise _refused("no such resident in the old town")
    # The move binds the certificate: only the town A recorded as the
    # destination, only while pending. Locked until commit; a concurrent
    # attempt waits here and then finds the move confirmed.
    move = await move_outs.pending(at_a, leaving.id, lock=True)
    if move is None or leaving.state != "moved_out":
        raise _refused("the resident has no pending move-out")
    if move.to_town != at_b.code:
        raise _refused("the pending move-out goes to another town")
    # Rule 1 (docs/support-measures.md): someone in a protected person's
    # component left from where that person may still live; their address
    # stays in A too.
    linked = not leaving.support_measure and bool(
        await repo.protected_residents(at_a, [leaving.id])
    )
    view_a = access_a.readable(leaving.support_measure, leaving.state, move.to_town, linked)
    if leaving.removed_on is None:  # pragma: no cover - set by every move-out
        raise _refused("the resident has not registered a move-out")
    missing = [name for name in _REQUIRED if name not in view_a.allowed]
    if missing:
        raise access_a.refusal("the agreement does not give " + ", ".join(missing))
    if data.move_date < leaving.birth_date:
        raise errors.invalid_field("/move_date", m.BEFORE_BIRTH)

    copied: dict[str, Any] = {n: getattr(leaving, n) for n in _COPIED if n in view_a.allowed}
    create = ResidentCreate(
        event=EntryEvent.MOVE_IN_DOMESTIC,
        address=data.address,
        postal_code=data.postal_code,
        move_date=data.move_date,
        notified_on=data.notified_on,
        household_no=data.household_no,
        relationship=data.relationship,
        phone=data.phone,
        # 前住所: A's address, unless 支援措置 keeps it in A.
        previous_address=leaving.address if "address" in view_a.allowed else None,
        **copied,
    )
    # B's event names where the person came from and the move, as A's names
    # where they went: a department's system (介護保険: 住所地特例) joins the two.
    arrived = await service.register(
        at_b, access_b, create, from_town=at_a.code, transfer_id=transfer_id
    )
    if leaving.support_measure:
        # The protection follows the person; B's 市民課 renews the application
        # with them (支援措置の申出 is made to each town).
        arrived = await service.carry_support_measure(at_b, arrived)
    elif linked:
        # So does the link (F3): the new address is, as likely as the old
        # one, where the protected person lives; anyone B files with them is
        # linked too. Lifted by B's 市民課 like 支援措置 itself.
        await service.carry_link(at_b, arrived)
    elif await repo.protected_residents(at_b, [arrived.id]):
        # N1 (round 3): the link is made in B — the person joined a household
        # of a protected person's component there. A's record of them names
        # where they went (forward_address, the move's to_town): that is
        # where the protected person lives. A's leaving record carries the
        # link back, and its component in A is linked with it; A's 市民課
        # lifts it like any carried link (PUT …/support-measure).
        await linkage.carry_protection(at_a, leaving.id)
        await linkage.relink_component(at_a, leaving.id)
    # A: the planned 転出 becomes the actual one, on the day B registered.
    confirmed = replace(leaving, removed_on=data.move_date)
    await service.confirm_move_out(at_a, leaving, confirmed, data.notified_on)
    await move_outs.confirm(at_a, move)
    await events.emit(
        at_a,
        events.CHANGED,
        leaving.id,
        ["removed_on"],
        atena_no=leaving.atena_no,
        history_no=str(confirmed.history_no),
        transfer_id=transfer_id,
        to_town=at_b.code,
    )
    access_a.audit.subjects.append(leaving.id)
    access_a.audit.fields.extend(sorted(set(copied) | {"removed_on"}))
    access_a.audit.rows = 1
    view_b = await views.view_of(at_b, access_b, arrived)
    return MoveResult(arrived, view_b, transfer_id)
