"""The daily job: who reaches 65 — on the day before their birthday, 2/28 for a 2/29
birth (年齢計算ニ関スル法律, 民法 第143条) — becomes 第1号 that day (介護保険法 第10条第3号).

It runs after the consumer has caught up with a town, for every day after the
last one it covered up to **tomorrow**, so the determination is in the queue on
the day. Each day is one blind-index lookup in the 65 watch
(:mod:`.repository.watch`) and a handful of decryptions — never the whole
register. Only the job's first run in a town decrypts the watch once, to catch
up with the people who reached 65 before the domain was installed (it covers
no day before that run otherwise).

A determination's key is ``reach65:<resident>:<day>``: a second run, or a
replay, writes nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from shared_gov.audit.recorder import AuditEvent, record
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.domains.kaigo import decide, metrics
from shared_gov.domains.kaigo.actors import system_actor
from shared_gov.domains.kaigo.models import Determination
from shared_gov.domains.kaigo.repository import determinations, insured, register, watch
from shared_gov.domains.kaigo.repository.determinations import determination_id
from shared_gov.domains.kaigo.rules import deadline
from shared_gov.towns.names import tenant_names

MAX_DAYS = 400
"""Days one run covers at most (a job stopped for longer resumes over several runs)."""


async def run(db: Database, code: str, *, today: date) -> int:
    """Propose 第1号 for everyone in town ``code`` reaching 65 up to ``today`` + 1;
    returns the determinations written."""
    target = today + timedelta(days=1)
    names = tenant_names(code, db.settings.role_prefix)
    written: list[Determination] = []
    async with db.tenant(names) as uow:
        claimed = await watch.claim(uow)
        if claimed is None:
            return 0  # another worker holds the town
        _, through = claimed
        if through is not None and through >= target:
            return 0
        if through is None:
            found = await watch.reached_by(uow, target)
            covered = target
        else:
            covered = min(target, through + timedelta(days=MAX_DAYS))
            found = []
            day = through + timedelta(days=1)
            while day <= covered:
                found += [(rid, day) for rid in await watch.reaching(uow, day)]
                day += timedelta(days=1)
        people = sorted({rid for rid, _ in found})
        alive = await register.active(uow, people)
        written = await propose(uow, [f for f in found if f[0] in alive])
        await watch.forget(uow, people)
        await watch.job_done(uow, covered)
        if db.settings.audit and people:
            await record(
                uow,
                system_actor(code, "job65"),
                AuditEvent(
                    action="kaigo.reach65",
                    resource_type="determination",
                    subjects=people,
                    fields=["Determination.proposal"],
                    rows=len(written),
                ),
            )
    for d in written:
        metrics.DETERMINATIONS.labels(d.kind, "job65").inc()
    return len(written)


async def propose(uow: TenantUnitOfWork, found: Sequence[tuple[str, date]]) -> list[Determination]:
    """Write the 65 determinations of (resident, day) in ``found`` (each once, ever)."""
    code = uow.code
    people = sorted({rid for rid, _ in found})
    records = await insured.by_residents(uow, people)
    opened = await determinations.open_for(uow, people)
    written: list[Determination] = []
    for rid, day in sorted(found, key=lambda f: (f[1], f[0])):
        for draft in decide.reaching_65(code, day, records.get(rid), opened.get(rid, [])):
            key = f"reach65:{rid}:{day.isoformat()}"
            d = Determination(
                id=determination_id(code, key),
                resident_id=rid,
                kind=draft.kind.value,
                status="open",
                source_key=key,
                proposed_on=day,
                deadline=deadline(day),
                proposal=draft.proposal,
            )
            if await determinations.insert(uow, d):
                written.append(d)
                opened.setdefault(rid, []).append(d)
    return written
