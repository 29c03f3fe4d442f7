"""A resident's access report (アクセス記録の開示), from the town's audit log.

Staff handling a resident's disclosure request (purpose ``juki.disclosure``)
get every event of the town's log that names the resident: when, which town
and department, for what purpose, which action and fields, and the outcome.
Never who: the staff member's id, address, terminal and request id stay in
the log for auditors.

Left out on purpose:
- Auditors' own queries (resource type ``audit_log``): oversight of staff is
  not a use of the resident's data, and showing it would warn the person
  under investigation.
- Events an auditor suppressed until a release date (see
  :mod:`shared_gov.audit.suppressions`). The report then says that entries
  are withheld and until when, without revealing how many or which.
- For a person under 支援措置, or sharing a household with one, which other
  town acted (and its department): after a move, the town that read or
  confirmed it is where the person lives now (rule 1,
  docs/support-measures.md). Such entries say only that another town acted.

The log is read as the platform role (tenant roles cannot read it), and the
resident's existence is checked in the town's own unit of work, which also
records this report as an access. The two never hold pooled connections at
the same time: authorisation is checked first without the database, the log
is read, then the unit of work re-checks everything and records.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from shared_gov import errors
from shared_gov.api.entry import Entry, access_for, audited
from shared_gov.api.pipeline import services
from shared_gov.audit.queries import parse_instant, subject_hash
from shared_gov.audit.suppressions import LATEST_UNTIL_SQL
from shared_gov.audit.tlog import CURRENT_INCARNATION
from shared_gov.clock import JST, day_of, now_jst, today_jst
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.domains.residents import messages as m
from shared_gov.domains.residents import repository
from shared_gov.policy import Access
from shared_gov.policy.purposes import purposes

DISCLOSURE = "juki.disclosure"
"""The one purpose this report is given for (住民基本台帳法 / 個人情報保護法 開示)."""
ACTION = "history"
"""The record action juki.disclosure covers; Cedar decides it like any other."""

ACTION_JA: dict[str, str] = {
    "resident.register": "住民記録の記載",
    "resident.read": "住民記録の閲覧",
    "resident.search": "住民記録の検索",
    "resident.move": "異動の記録",
    "resident.history": "履歴の閲覧",
    "resident.protect": "支援措置の設定・解除",
    "resident.access_log": "アクセス記録の開示",
    "household.read": "世帯の閲覧",
    "residents.import": "一括登録",
    "residents.export": "一括抽出",
    "keys.reencrypt": "暗号鍵の更新（再暗号化）",
    "keys.reindex": "検索用索引の鍵の更新",
    "keys.verify": "暗号鍵の更新（復号の検査）",
    "events.read": "異動の通知（庁内システム連携）",
}


class AccessLogRef(msgspec.Struct, kw_only=True):
    code: str
    name: str | None


class AccessLogEntry(msgspec.Struct, kw_only=True):
    occurred_at: datetime
    """Japan time."""
    town: AccessLogRef | None
    """The town of the staff who acted (another town's, under an agreement); None
    for the platform's own operations."""
    department: AccessLogRef | None
    purpose: AccessLogRef | None
    action: str
    action_ja: str | None
    fields: list[str]
    individual_number: bool
    outcome: str
    withheld: list[str] = msgspec.field(default_factory=list)
    """``["town", "department"]`` when another town acted on a person under
    支援措置: which town is not said (it tells where the person lives now)."""


class AccessLogWithheld(msgspec.Struct, kw_only=True):
    until: date
    """The latest release date of the withheld entries."""
    note: str


class AccessLogOut(msgspec.Struct, kw_only=True):
    resident_id: str
    tenant: str
    generated_at: datetime
    entries: list[AccessLogEntry]
    withheld: AccessLogWithheld | None
    """Set when some entries are withheld; which and how many is not said."""


def require_disclosure(access: Access) -> None:
    """Only for juki.disclosure, and only when Cedar grants its action."""
    if access.purpose is None or access.purpose.code != DISCLOSURE:
        raise errors.forbidden(m.ACCESS_REPORT_PURPOSE(purpose=DISCLOSURE))
    access.require(ACTION)


async def load(
    db: Database,
    tenant: str,
    resident_id: str,
    since: datetime | None,
    until: datetime | None,
) -> tuple[list[AccessLogEntry], date | None]:
    """The visible entries, and the latest release date of withheld ones (if any)."""
    hashed = await subject_hash(db, tenant, resident_id)
    async with db.catalog() as conn:
        rows = await conn.fetch(
            f"""
            SELECT e.occurred_at, e.actor_tenant, e.department, e.purpose, e.action, e.fields,
                   e.individual_number, e.outcome, ({LATEST_UNTIL_SQL}) AS withheld_until
            FROM audit.events e
            WHERE e.tenant = $1 AND e.subjects @> ARRAY[$2::bigint]
              AND e.incarnation = {CURRENT_INCARNATION.format(town="$1")}
              AND e.resource_type <> 'audit_log'
              AND ($3::timestamptz IS NULL OR e.occurred_at >= $3)
              AND ($4::timestamptz IS NULL OR e.occurred_at < $4)
            ORDER BY e.occurred_at, e.event_id
            """,  # noqa: S608 - a fixed subquery; values are parameters
            tenant,
            hashed,
            since,
            until,
        )
        towns = sorted({r["actor_tenant"] for r in rows if r["actor_tenant"]})
        town_names = {
            r["code"]: r["name"]
            for r in await conn.fetch(
                "SELECT code, name FROM catalog.tenants WHERE code = ANY($1::text[])", towns
            )
        }
        department_names = {
            (r["tenant_code"], r["code"]): r["name"]
            for r in await conn.fetch(
                "SELECT tenant_code, code, name FROM catalog.departments "
                "WHERE tenant_code = ANY($1::text[])",
                towns,
            )
        }
    known = purposes()
    today = today_jst()
    entries: list[AccessLogEntry] = []
    withheld: date | None = None
    for r in rows:
        release: date | None = r["withheld_until"]
        if release is not None and today < release:
            withheld = max(withheld or release, release)
            continue
        town = r["actor_tenant"]
        dept = r["department"]
        purpose = known.get(r["purpose"] or "")
        entries.append(
            AccessLogEntry(
                occurred_at=r["occurred_at"].astimezone(JST),
                town=AccessLogRef(code=town, name=town_names.get(town)) if town else None,
                department=(
                    AccessLogRef(code=dept, name=department_names.get((town, dept)))
                    if dept and town
                    else None
                ),
                purpose=(
                    AccessLogRef(code=r["purpose"], name=purpose.name if purpose else None)
                    if r["purpose"]
                    else None
                ),
                action=r["action"],
                action_ja=ACTION_JA.get(r["action"]),
                fields=sorted(r["fields"]),
                individual_number=r["individual_number"],
                outcome=r["outcome"],
            )
        )
    return entries, withheld


async def _exists(uow: TenantUnitOfWork, resident_id: str) -> bool:
    found = await uow.fetchval("SELECT 1 FROM residents WHERE id = $1", uuid.UUID(resident_id))
    return found is not None


def _other_town_withheld(entry: AccessLogEntry, tenant: str) -> AccessLogEntry:
    """The entry without the acting town, when that is another town (rule 1)."""
    if entry.town is None or entry.town.code == tenant:
        return entry
    # The time to the day only (N4): another town's access to the second
    # would match the same instant in that town's own records.
    return msgspec.structs.replace(
        entry,
        occurred_at=day_of(entry.occurred_at),
        town=None,
        department=None,
        withheld=["town", "department"],
    )


def _canonical(resident_id: str) -> str | None:
    try:
        return str(uuid.UUID(resident_id))
    except ValueError:
        return None


async def access_report(
    entry: Entry, resident_id: str, since: str | None, until: str | None
) -> AccessLogOut:
    """The report of ``resident_id`` through ``entry`` (purpose ``juki.disclosure``).

    The API's route and the disclosure desk's page (:mod:`.console`) alike:
    the event names the resident (a keyed hash) whatever the outcome.
    """
    svc, code = services(entry.request), entry.code
    rid = _canonical(resident_id)
    entry.audit.subjects = [rid] if rid else []
    entries: list[AccessLogEntry] = []
    withheld: date | None = None
    # Read the log only for a caller who will pass; anyone else falls
    # through to the entry, which refuses again and records it. The
    # scope's check is the one that counts: a grant revoked in between
    # returns nothing, a grant arriving in between an empty report.
    try:
        require_disclosure(await access_for(svc, entry.principal, code, entry.purpose))
        allowed = True
    except errors.DomainError:
        allowed = False
    if allowed and rid is not None:
        start = parse_instant(since, "from")
        end = parse_instant(until, "to")
        entries, withheld = await load(svc.db, code, rid, start, end)
    async with entry:
        require_disclosure(entry.access)
        if rid is None or not await _exists(entry.uow, rid):
            raise errors.not_found(m.NO_SUCH_RESIDENT)
        if await repository.protected_residents(entry.uow, [rid]):
            entries = [_other_town_withheld(e, code) for e in entries]
        # The report returns no personal field, only the log's metadata.
        entry.audit.rows = len(entries)
    return AccessLogOut(
        resident_id=rid,
        tenant=code,
        generated_at=now_jst(),
        entries=entries,
        withheld=(
            AccessLogWithheld(
                until=withheld,
                note="一部の記録は、この日まで開示を保留しています。",
            )
            if withheld
            else None
        ),
    )


async def town_name(db: Database, code: str) -> str | None:
    """The town's own name (加賀市), as the report's letterhead shows it."""
    async with db.catalog() as conn:
        name: str | None = await conn.fetchval(
            "SELECT name FROM catalog.tenants WHERE code = $1", code
        )
    return name


class ResidentAccessLogController(Controller):
    path = "/api/v1/tenants/{code:str}"
    tags = ("residents",)

    @get(
        "/residents/{resident_id:str}/access-log",
        summary="Who (which town, department, purpose) accessed a resident's record",
        description=f"X-Purpose: {DISCLOSURE}",
        **audited("resident.access_log", record="resident_id"),
    )
    async def access_log(
        self,
        entry: NamedDependency[Entry],
        resident_id: FromPath[str],
        since: Annotated[
            str | None, QueryParameter(name="from", description="ISO 8601, inclusive; JST")
        ] = None,
        until: Annotated[
            str | None, QueryParameter(name="to", description="ISO 8601, exclusive; JST")
        ] = None,
    ) -> AccessLogOut:
        return await access_report(entry, resident_id, since, until)
