"""住所地特例 across towns: confirming, in the insurer town A, that a person stays
insured by A while living in a covered facility of town B, and telling B — in one
transaction over both towns, recorded in both towns' logs.

What crosses is only what the law needs for B to know its 住所地特例者
(介護保険法 第13条): the identity link (the one-stop move's ``transfer_id``,
which both towns' events already carry), A's insured number of the person, the
facility (B's own record) and A's determination id; nothing else of A's record.
It goes only to the town of the facility the confirmed determination names,
only for a confirmed 住所地特例 after a one-stop move, and never for a person
under 支援措置 or linked to one (the consumer leaves ``notify_town`` unset for
them: staff notify on paper, rule 1). This is the narrow rule the standing
move agreement follows for 転出証明書 (docs/sharing.md), fixed in code.

B's side: the notice lands in B's ``kaigo_notices`` written as B's role; B's
open determination of the same move (its consumer matched the facility)
shows the insurer's number, and B's staff confirm it there ("not enrolled
in B; 住所地特例者 of A").
"""

from __future__ import annotations

import uuid

from shared_gov import errors
from shared_gov.api.entry import Entry, access_for, audit_actor, known_purpose, record_failure
from shared_gov.api.pipeline import services
from shared_gov.audit.recorder import AuditEvent, record, record_both
from shared_gov.domains.kaigo import messages as m
from shared_gov.domains.kaigo import service
from shared_gov.domains.kaigo.repository import determinations as queue
from shared_gov.domains.kaigo.repository import notices
from shared_gov.domains.kaigo.schemas import Confirm
from shared_gov.domains.kaigo.vocabulary import Kind

NOTICE_ACTION = "kaigo.tokurei.notice"
LEGAL_BASIS = "介護保険法 第13条（住所地特例: 保険者から施設所在市町村への連絡）"


async def confirm(entry: Entry, determination_id: str, data: Confirm) -> service.Confirmed:
    """Confirm a determination; for a 住所地特例 in a facility of another town of the
    deployment, notify that town in the same transaction (module docstring)."""
    svc, principal, code = services(entry.request), entry.principal, entry.code
    here = await svc.registry.get(code)
    other_code: str | None = None
    if here is not None and principal.tenant == code and not principal.is_operator:
        try:
            wanted = service.parse_uuid(determination_id, m.NO_DETERMINATION)
        except errors.NotFound:
            wanted = None
        if wanted is not None:
            async with svc.db.tenant(here) as uow:  # one plain column, no value of a person
                other_code = await queue.notify_town(uow, wanted)
    other = await svc.registry.get(other_code) if other_code and other_code != code else None
    if here is None or other is None:
        async with entry:
            version = service.parse_if_match(entry.if_match)
            return await service.confirm(
                entry.uow, entry.access, determination_id, version, data.answers
            )
    actor = audit_actor(entry.request, principal, known_purpose(entry.purpose))
    event_a = AuditEvent(
        action=entry.route.action,
        resource_type=entry.route.resource_type,
        subjects=entry.route.subject(entry.request.scope.get("path_params")),
    )
    event_b = AuditEvent(action=NOTICE_ACTION, resource_type="tokurei_notice")
    try:
        access = await access_for(svc, principal, code, entry.purpose)
        access.audit = event_a
        version = service.parse_if_match(entry.if_match)
        async with svc.db.pair(here, other) as (at_a, at_b):
            done = await service.confirm(at_a, access, determination_id, version, data.answers)
            d, person = done.determination, done.person
            facility = d.effective_facility
            sent = (
                Kind(d.effective_kind) is Kind.TOKUREI_KEEP
                and facility is not None
                and facility.town == other.code
                and facility.facility_id is not None
                and d.transfer_id is not None
                and person is not None
                and person.insured_number is not None
            )
            if sent and facility is not None and person is not None and person.insured_number:
                await notices.insert(
                    at_b,
                    notices.Notice(
                        id=str(uuid.uuid4()),
                        transfer_id=d.transfer_id,
                        insurer_town=code,
                        insurer_number=person.insured_number,
                        facility_id=facility.facility_id or "",
                        insurer_determination=d.id,
                    ),
                )
                incoming = await queue.by_transfer(at_b, d.transfer_id or "")
                event_b.subjects = sorted({x.resident_id for x in incoming})
                event_b.fields = ["InsuredPerson.insured_number", "Determination.facility"]
                event_b.rows = 1
                event_b.reason = f"from town {code}: {LEGAL_BASIS}"
                event_a.reason = f"to town {other.code}: {LEGAL_BASIS}"
            if svc.settings.audit:
                if sent:
                    await record_both(at_a, at_b, actor, event_a, event_b)
                else:
                    await record(at_a, actor, event_a)
    except Exception as exc:
        await record_failure(svc, here, actor, event_a, exc)
        raise
    return done
