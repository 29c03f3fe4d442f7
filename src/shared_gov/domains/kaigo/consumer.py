"""The outbox consumer: resident events in, determinations out — in process.

Why in process and not through the events API (docs/kaigo.md, "The consumer"):
the consumer's position is stored in the town's schema and moved **in the same
transaction** as the determinations it writes, so a crash anywhere leaves
either both or neither: it resumes where the last committed batch ended,
losing and doubling nothing, without a cursor file to keep in step with the
queue. Through the HTTP feed, the position would live on the client's side and
every determination would need its own idempotent POST; in process it is one
transaction per batch, under the town's own role, with no token for a system
user to hold. The feed's rule for a trustworthy position is kept: events are
read only below ``pg_snapshot_xmin`` (:mod:`.repository.register`).

Each pass, per town, in one unit of work:

1. claim the town's consumer row (``FOR UPDATE SKIP LOCKED``: with several
   workers, one works a town at a time, the others skip it);
2. read a page of residents' events after the position, and for each the
   history entry it names (the record *as the event left it*, so a replay
   decides the same way);
3. decide (:func:`.decide.determinations_for`), write each determination under
   a key derived from its event (``event:<event id>[:n]``: written once, ever),
   mark what it supersedes, keep the 65 watch up to date;
4. move the position; record one audit event (the residents read, the fields);
   commit.

Once caught up with a town, the daily job (:mod:`.job65`) runs for the days
not yet covered, up to tomorrow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shared_gov.audit.recorder import AuditEvent, record
from shared_gov.clock import JST, today_jst
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.domains.kaigo import decide, directory, job65, metrics
from shared_gov.domains.kaigo.actors import system_actor
from shared_gov.domains.kaigo.models import Determination, FacilityRef
from shared_gov.domains.kaigo.repository import determinations, insured, notices, register, watch
from shared_gov.domains.kaigo.repository.determinations import determination_id
from shared_gov.domains.kaigo.rules import deadline, reaches_65_on
from shared_gov.domains.kaigo.vocabulary import address_key
from shared_gov.domains.registry import Background
from shared_gov.logs import get_logger
from shared_gov.tenancy.service import list_tenants
from shared_gov.towns.names import tenant_names

log = get_logger(__name__)

BATCH = 200
"""Events per transaction."""
READ_FIELDS = ("birth_date", "address", "forward_address")
"""What the consumer reads of a history entry's record (the Resident's policy names)."""
RECORDED = "kaigo.determine"


@dataclass(slots=True)
class Pass:
    """What one batch did in one town."""

    events: int = 0
    written: list[Determination] = field(default_factory=list)
    superseded: int = 0
    more: bool = False
    """The page was full: read again at once."""
    busy: bool = False
    """Another worker holds the town."""
    lag: float = 0.0
    """Seconds since the oldest event still unread after this batch was written."""
    job_through: date | None = None
    """The last day the daily job has covered in the town."""


def _day(moment: datetime) -> date:
    return moment.astimezone(JST).date()


def _snapshot_date(snapshot: dict[str, object], name: str) -> date | None:
    value = snapshot.get(name)
    return date.fromisoformat(value) if isinstance(value, str) and value else None


def _key(value: object) -> str | None:
    return address_key(value) if isinstance(value, str) and value else None


async def consume(db: Database, code: str, *, limit: int = BATCH) -> Pass:
    """One batch of town ``code``'s events, in one transaction (see the module)."""
    places = await directory.directory(db)  # before the transaction: one connection at a time
    names = tenant_names(code, db.settings.role_prefix)
    result = Pass()
    async with db.tenant(names) as uow:
        claimed = await watch.claim(uow)
        if claimed is None:
            result.busy = True
            return result
        position, through = claimed
        result.job_through = through
        page, next_position = await register.page(uow, position, limit)
        result.events = len(page)
        result.more = len(page) == limit
        if page:
            subjects = await _handle(uow, page, places, result, through)
            if db.settings.audit and subjects:
                await record(
                    uow,
                    system_actor(code),
                    AuditEvent(
                        action=RECORDED,
                        resource_type="determination",
                        subjects=subjects,
                        fields=[
                            *READ_FIELDS,
                            "Determination.proposal",
                            "Determination.facility",
                        ],
                        rows=len(result.written),
                    ),
                )
        if next_position != position:
            await watch.advance(uow, next_position)
        if not result.more:
            oldest = await register.oldest_pending(uow, next_position)
            result.lag = 0.0 if oldest is None else max(0.0, time.time() - oldest.timestamp())
    metrics.EVENTS.inc(result.events)
    now = time.time()
    for d in result.written:
        metrics.DETERMINATIONS.labels(d.kind, "event").inc()
        if d.event_at is not None:
            metrics.EVENT_LAG.observe(max(0.0, now - d.event_at.timestamp()))
    return result


async def _handle(
    uow: TenantUnitOfWork,
    page: Sequence[register.OutboxEvent],
    places: directory.Directory,
    result: Pass,
    through: date | None,
) -> list[str]:
    """Decide and write the page's determinations; returns the residents read."""
    town = uow.code
    wanted = [
        (e.resident_id, int(e.ids["history_no"]))
        for e in page
        if e.ids.get("history_no", "").isdigit()
    ]
    entries = await register.entries(uow, wanted)
    people = sorted({rid for rid, _ in wanted})
    records = await insured.by_residents(uow, people)
    opened = await determinations.open_for(uow, people)
    linked = await register.linked(uow, people)
    bound = await register.destinations(uow, people)
    watch_put: dict[str, date] = {}
    watch_forget: set[str] = set()
    for event in page:
        number = event.ids.get("history_no", "")
        entry = entries.get((event.resident_id, int(number))) if number.isdigit() else None
        if entry is None:
            continue  # 支援措置 set or lifted: no history entry, nothing for 介護保険
        rid = event.resident_id
        snapshot = entry.snapshot
        born = _snapshot_date(snapshot, "birth_date")
        if born is None:  # pragma: no cover - every record has a birth date
            continue
        event_day = _day(event.occurred_at)
        state = snapshot.get("state")
        if state == "active":
            turns = reaches_65_on(born)
            if turns > event_day:
                watch_put[rid] = turns
                watch_forget.discard(rid)
        else:
            watch_forget.add(rid)
            watch_put.pop(rid, None)
        if "import_id" in event.ids:
            continue  # a data migration, not news: the 65 watch only
        to_town = event.ids.get("to_town") or (
            bound.get(rid) if entry.reason == decide.MOVE_OUT_DOMESTIC else None
        )
        what = decide.Happening(
            reason=entry.reason,
            day=entry.move_date,
            event_day=event_day,
            birth_date=born,
            address_key=_key(snapshot.get("address")),
            forward_key=_key(snapshot.get("forward_address")),
            from_town=event.ids.get("from_town"),
            to_town=to_town,
            transfer_id=event.ids.get("transfer_id"),
            protected=bool(snapshot.get("support_measure")) or rid in linked,
        )
        notice = None
        if what.transfer_id and entry.reason in decide.MOVE_IN_REASONS:
            notice = await notices.by_transfer(uow, what.transfer_id)

        def here(key: str | None) -> FacilityRef | None:
            return places.at(key, town)

        def anywhere(key: str | None, to: str | None = to_town) -> FacilityRef | None:
            return places.at(key, to)

        drafts = decide.determinations_for(
            town,
            what,
            records.get(rid),
            opened.get(rid, []),
            facility_here=here,
            facility_anywhere=anywhere,
            notice_insurer=notice.insurer_town if notice else None,
        )
        for n, draft in enumerate(drafts):
            key = f"event:{event.event_id}" + (f":{n}" if n else "")
            d = Determination(
                id=determination_id(town, key),
                resident_id=rid,
                kind=draft.kind.value,
                status="open",
                source_key=key,
                proposed_on=event_day,
                deadline=deadline(max(draft.proposal.date, event_day)),
                proposal=draft.proposal,
                facility=draft.facility,
                event_id=event.event_id,
                event_at=event.occurred_at,
                transfer_id=draft.transfer_id,
                notify_town=draft.notify_town,
                supersedes=draft.supersedes[0] if draft.supersedes else None,
            )
            if not await determinations.insert(uow, d):
                continue  # written by an earlier pass (a replay): never twice
            result.written.append(d)
            gone = await determinations.supersede(uow, draft.supersedes, d.id)
            result.superseded += len(gone)
            still = [o for o in opened.get(rid, []) if o.id not in gone]
            opened[rid] = [*still, d]
    # A day the daily job has covered already will not be looked at again: a person
    # newly watched who reaches 65 on it is proposed now (the job's key: once, ever).
    missed = [(rid, day) for rid, day in watch_put.items() if through and day <= through]
    result.written += await job65.propose(uow, missed)
    await watch.put(uow, sorted(i for i in watch_put.items() if i not in missed))
    await watch.forget(uow, sorted(watch_forget | {rid for rid, _ in missed}))
    return people


# --- the loop every worker runs -------------------------------------------------------


def enabled() -> bool:
    """``SHARED_GOV_KAIGO_CONSUMER=off`` stops the loop (the test suite does, and
    drives it by hand)."""
    return os.environ.get("SHARED_GOV_KAIGO_CONSUMER", "on").lower() not in ("off", "0", "no")


def interval() -> float:
    """Seconds between passes when caught up (``SHARED_GOV_KAIGO_INTERVAL``, default 0.5)."""
    try:
        return max(0.05, float(os.environ.get("SHARED_GOV_KAIGO_INTERVAL", "0.5")))
    except ValueError:
        return 0.5


async def catch_up(
    db: Database, code: str, *, today: date | None = None, limit: int = BATCH
) -> int:
    """Consume town ``code`` until caught up, then run the daily job; determinations written."""
    return (await _catch_up(db, code, today or today_jst(), limit))[0]


async def _catch_up(db: Database, code: str, today: date, limit: int) -> tuple[int, float]:
    """(determinations written, lag after the last batch). When idle, one short
    transaction: the daily job's own only once a day (its coverage comes with the
    consumer's row)."""
    written = 0
    while True:
        result = await consume(db, code, limit=limit)
        written += len(result.written)
        if result.busy:
            return written, 0.0
        if not result.more:
            break
    tomorrow = today + timedelta(days=1)
    if result.job_through is None or result.job_through < tomorrow:
        written += await job65.run(db, code, today=today)
    return written, result.lag


async def drain(db: Database, code: str, *, within: float = 30.0, limit: int = BATCH) -> int:
    """Catch up until every event written so far has been read (not only those the
    watermark already serves: a transaction of another session may hold it back a
    moment). For jobs that need the queue complete now (the demo, benches)."""
    written = 0
    deadline = time.monotonic() + within
    while True:
        written += await catch_up(db, code, limit=limit)
        if await lag(db, code) == 0.0 or time.monotonic() > deadline:
            return written
        await asyncio.sleep(0.05)


async def lag(db: Database, code: str) -> float:
    """Seconds since the oldest event the consumer has not read in town ``code`` was written."""
    async with db.tenant(tenant_names(code, db.settings.role_prefix)) as uow:
        row = await uow.fetchrow("SELECT xid, seq FROM kaigo_consumer WHERE name = 'outbox'")
        if row is None:  # pragma: no cover - created by the migration
            return 0.0
        oldest = await register.oldest_pending(
            uow, register.Position(int(row["xid"]), int(row["seq"]))
        )
    if oldest is None:
        return 0.0
    return max(0.0, time.time() - oldest.timestamp())


async def run(db: Database, stop: asyncio.Event) -> None:
    """Pass over every active town until ``stop``; a failing town is logged and retried.

    An idle town costs one short transaction per pass (its consumer row, an empty
    page, the lag): with many towns, raise ``SHARED_GOV_KAIGO_INTERVAL``.
    """
    if not enabled():
        return
    pause = interval()
    while not stop.is_set():
        worst = 0.0
        try:
            towns = [t.code for t in await list_tenants(db) if t.status == "active"]
        except Exception as exc:
            log.warning("kaigo.consumer.towns_failed", error=type(exc).__name__)
            towns = []
        for code in towns:
            if stop.is_set():
                break
            try:
                _written, behind = await _catch_up(db, code, today_jst(), BATCH)
                worst = max(worst, behind)
            except Exception as exc:
                log.warning("kaigo.consumer.failed", town=code, error=type(exc).__name__)
        metrics.OUTBOX_LAG.set(worst)
        metrics.LAST_PASS.set(time.time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)


def background() -> list[Background]:
    return [Background("kaigo-consumer", run)]
