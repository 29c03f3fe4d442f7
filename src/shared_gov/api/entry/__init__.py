"""The one guarded entry into a town: decide, record a refusal, bind the town,
record the access.

Every route under ``/api/v1/tenants/{code}/`` — and every other route that
acts in a town (an agreement's lifecycle, in the caller's own town) —
declares what it is called in the town's log and which gate it goes through,
and takes the :class:`Entry` dependency::

    @get("/residents/{resident_id:str}", **audited("resident.read", record="resident_id",
                                                   agreement=True))
    async def read(self, entry: NamedDependency[Entry], resident_id: FromPath[str]) -> ...:
        async with entry:
            resident, view = await service.get(entry.uow, entry.access, resident_id)

    @put("/staff/{staff_id:str}", **audited("admin.staff", "staff", gate=STAFF))
    async def put_staff(self, entry: NamedDependency[Entry], staff_id: StaffPath, data: ...):
        async with entry.changing(staff_id, requested):
            row = await admin.put_staff(entry.svc.db, entry.code, ..., actor=entry.actor)

The entry (after Zulip's ``access_*_by_id`` helpers, which fetch, scope and
authorise in one call; and Dispatch's per-request session dependency):

1. refuses a caller from another town, and an operator, with the same 404 a
   missing town gets (:class:`errors.Concealed`: a denial in the log),
   before any database work and before Litestar decodes the body (a route
   middleware or guard starts the entry: :mod:`.dependencies`);
2. decides as the route's gate says (:mod:`.gates`): for records, the
   purpose (X-Purpose) and the caller's Cedar attributes — the ``Access`` it
   hands over is bound to the town, so no decision names it again; for the
   town's administration, its audit log or an agreement, Cedar's decision
   on the town (in a guard, before any parameter is decoded, where the gate
   says so);
3. opens the town's unit of work when the gate needs one — or, for staff of
   another town with an X-Agreement, one transaction on both towns under
   the agreement;
4. records the access in that transaction just before it commits (no audit,
   no access), or a read's through the audit writer, or nothing for a
   change that records itself (``entry.changing()``); a refusal or failure
   in a transaction of its own after the rollback (:mod:`.failures`), a
   refused change with what was asked for only when the caller passed the
   gate. The actor's purpose is one decided on for that caller, else none
   (:mod:`.actors`).

What a route raises outside any entry is recorded by :mod:`shared_gov.api.refusals`
(through the entry a guard or the route middleware let into the town, when there is one).

Modules: :mod:`.gates` (the families' parameters), :mod:`.routes` (the
audit declaration), :mod:`.dependencies` (:func:`audited`, the providers and
the guard), :mod:`.scope` (:class:`Entry`), :mod:`.actors` (who acts, as
recorded), :mod:`.failures` (refused and failed attempts).
"""

from .actors import audit_actor, known_purpose
from .dependencies import TOWN, Naming, TenantCode, audited, guarded_entry
from .failures import Change, decided_nothing, failed_attempt, record_failure
from .gates import (
    AGREEMENT_READS,
    AGREEMENTS,
    AUDIT_PURPOSE,
    AUDITORS,
    DEPARTMENTS,
    ISSUER,
    PROOFS,
    RECORDS,
    STAFF,
    Gate,
)
from .routes import AUDIT, TENANT_ROUTES, Audit, route_audit
from .scope import Entry, access_for

__all__ = [
    "AGREEMENTS",
    "AGREEMENT_READS",
    "AUDIT",
    "AUDITORS",
    "AUDIT_PURPOSE",
    "DEPARTMENTS",
    "ISSUER",
    "PROOFS",
    "RECORDS",
    "STAFF",
    "TENANT_ROUTES",
    "TOWN",
    "Audit",
    "Change",
    "Entry",
    "Gate",
    "Naming",
    "TenantCode",
    "access_for",
    "audit_actor",
    "audited",
    "decided_nothing",
    "failed_attempt",
    "guarded_entry",
    "known_purpose",
    "record_failure",
    "route_audit",
]
