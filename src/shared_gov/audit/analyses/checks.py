"""The analyses themselves, one query (or two) each over a window of one town's log.

After hours, bulk access in any sliding hour, repeated denials, failed
logins by client address, individual-number reads. All leave out other
towns' events about the town's protected or linked residents (rule 1).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from shared_gov.audit.analyses.report import (
    AfterHours,
    BulkAccess,
    FailedLogins,
    IndividualNumberReads,
    RepeatedDenials,
)
from shared_gov.audit.analyses.settings import (
    BULK_WINDOW,
    EVENT_IDS_PER_FINDING,
    FAILED_LOGIN,
    MAX_FINDINGS,
    AnalysisSettings,
    closed_days,
)
from shared_gov.audit.queries import EventFilter, events_url, filter_params
from shared_gov.audit.tlog import CURRENT_INCARNATION
from shared_gov.clock import JST

# Rule 1 (docs/support-measures.md): another town's events about the town's
# protected or linked residents are left out of every analysis, since each
# lists actors, towns, departments, event ids or exact times, all of which
# the auditors' query masks for those events. The set is a transaction-local
# setting so that every analysis's SQL shares one condition.
_MASKED = (
    "(subjects && current_setting('shared_gov.audit_guarded')::bigint[] "
    "AND actor_tenant IS NOT NULL AND actor_tenant <> $1)"
)
_E_MASKED = _MASKED.replace("subjects", "e.subjects").replace("actor_tenant", "e.actor_tenant")
_LOCAL = "((occurred_at AT TIME ZONE 'UTC') + interval '9 hours')"
# The town's current incarnation only (an earlier town of the same code is
# another town's log).
_RANGE = (
    f"tenant = $1 AND incarnation = {CURRENT_INCARNATION.format(town='$1')} "
    "AND occurred_at >= $2 AND occurred_at < $3 "
    f"AND NOT {_MASKED}"
)


def _ids(values: list[Any]) -> list[str]:
    return [str(v) for v in values]


def _jst(moment: datetime) -> datetime:
    return moment.astimezone(JST)


def _actor_params(actor: str | None, actor_tenant: str | None) -> list[tuple[str, Any]]:
    return [("actor", actor), ("actor_tenant", actor_tenant)]


async def _after_hours(
    conn: asyncpg.Connection,
    tenant: str,
    since: datetime,
    until: datetime,
    s: AnalysisSettings,
) -> tuple[list[AfterHours], bool]:
    closed = closed_days(_jst(since).date(), _jst(until).date())
    rows = await conn.fetch(
        f"""
        WITH flagged AS (
            SELECT event_id, occurred_at, actor, actor_tenant, department,
                   {_LOCAL}::date AS day
            FROM audit.events
            WHERE {_RANGE}
              AND ({_LOCAL}::date = ANY($4::date[])
                   OR ($5 AND extract(isodow FROM {_LOCAL}) >= 6)
                   OR {_LOCAL}::time < $6 OR {_LOCAL}::time >= $7)
        )
        SELECT actor_tenant, actor, day, count(*) AS events,
               min(occurred_at) AS first, max(occurred_at) AS last,
               COALESCE(array_agg(DISTINCT department) FILTER (WHERE department IS NOT NULL),
                        '{{}}') AS departments,
               (array_agg(event_id ORDER BY occurred_at, event_id))[1:$8] AS event_ids
        FROM flagged
        GROUP BY actor_tenant, actor, day
        ORDER BY day, actor_tenant, actor
        LIMIT $9
        """,  # noqa: S608 - fixed SQL fragments; values are parameters
        tenant,
        since,
        until,
        list(closed),
        s.weekends,
        s.opens,
        s.closes,
        EVENT_IDS_PER_FINDING,
        MAX_FINDINGS + 1,
    )
    out = []
    for r in rows[:MAX_FINDINGS]:
        day: date = r["day"]
        name = closed.get(day)
        kind = "holiday" if name else "weekend" if day.isoweekday() >= 6 else "after_hours"
        start = datetime.combine(day, time(0), JST)
        query = events_url(
            tenant,
            [
                *_actor_params(r["actor"], r["actor_tenant"]),
                ("from", max(start, since)),
                ("to", min(start + timedelta(days=1), until)),
            ],
        )
        out.append(
            AfterHours(
                actor=r["actor"],
                actor_tenant=r["actor_tenant"],
                departments=sorted(r["departments"]),
                day=day,
                kind=kind,
                holiday=name,
                events=r["events"],
                first=_jst(r["first"]),
                last=_jst(r["last"]),
                event_ids=_ids(r["event_ids"]),
                more_events=r["events"] > len(r["event_ids"]),
                query=query,
            )
        )
    return out, len(rows) > MAX_FINDINGS


_BULK_SCOPE = "outcome = 'allowed' AND resource_type = 'resident'"


async def _bulk(
    conn: asyncpg.Connection,
    tenant: str,
    since: datetime,
    until: datetime,
    s: AnalysisSettings,
) -> tuple[list[BulkAccess], bool]:
    # Cheap pre-filter: the actors whose total touches in the whole window
    # exceed N (an upper bound of any hour's distinct residents).
    candidates = await conn.fetch(
        f"""
        SELECT actor_tenant, actor FROM audit.events
        WHERE {_RANGE} AND {_BULK_SCOPE}
        GROUP BY actor_tenant, actor
        HAVING sum(CASE WHEN cardinality(subjects) > 0 THEN cardinality(subjects)
                        ELSE rows_returned END) > $4
        ORDER BY actor_tenant, actor
        """,  # noqa: S608 - fixed SQL fragments
        tenant,
        since,
        until,
        s.bulk_residents,
    )
    out: list[BulkAccess] = []
    for c in candidates:
        events = await conn.fetch(
            f"""
            SELECT event_id, occurred_at, subjects, rows_returned FROM audit.events
            WHERE {_RANGE} AND {_BULK_SCOPE}
              AND actor IS NOT DISTINCT FROM $4 AND actor_tenant IS NOT DISTINCT FROM $5
            ORDER BY occurred_at, event_id
            """,  # noqa: S608 - fixed SQL fragments
            tenant,
            since,
            until,
            c["actor"],
            c["actor_tenant"],
        )
        for first, last, residents in _bursts(events, s.bulk_residents):
            window = events[first:last]
            start = window[0]["occurred_at"]
            end = start + BULK_WINDOW
            flt = EventFilter(
                actor=c["actor"],
                actor_tenant=c["actor_tenant"],
                outcome="allowed",
                resource_type="resident",
                since=_jst(start),
                until=_jst(end),
            )
            out.append(
                BulkAccess(
                    actor=c["actor"],
                    actor_tenant=c["actor_tenant"],
                    window_start=_jst(start),
                    window_end=_jst(end),
                    residents=residents,
                    events=len(window),
                    event_ids=_ids([e["event_id"] for e in window[:EVENT_IDS_PER_FINDING]]),
                    more_events=len(window) > EVENT_IDS_PER_FINDING,
                    query=events_url(tenant, filter_params(flt, None)),
                )
            )
            if len(out) > MAX_FINDINGS:
                return out[:MAX_FINDINGS], True
    return out, False


def _bursts(events: list[asyncpg.Record], limit: int) -> list[tuple[int, int, int]]:
    """Windows ``events[first:last]`` spanning less than an hour from their first
    event and touching more than ``limit`` distinct residents.

    A two-pointer sweep over time-ordered events: O(subjects touched). After
    a burst is reported the sweep restarts past it, so one burst is one
    finding, and a later burst the same day is another.
    """
    found: list[tuple[int, int, int]] = []
    seen: Counter[int] = Counter()
    anonymous = 0  # rows of bulk jobs that name no subjects
    n = len(events)
    i = j = 0

    def touch(k: int, step: int) -> int:
        subjects = events[k]["subjects"]
        if not subjects:
            rows: int = events[k]["rows_returned"]
            return step * rows
        for subject in subjects:
            seen[subject] += step
            if seen[subject] <= 0:
                del seen[subject]
        return 0

    while i < n:
        end = events[i]["occurred_at"] + BULK_WINDOW
        while j < n and events[j]["occurred_at"] < end:
            anonymous += touch(j, 1)
            j += 1
        residents = len(seen) + anonymous
        if residents > limit:
            found.append((i, j, residents))
            seen.clear()
            anonymous = 0
            i = j
            continue
        anonymous += touch(i, -1)
        i += 1
    return found


async def _denials(
    conn: asyncpg.Connection,
    tenant: str,
    since: datetime,
    until: datetime,
    s: AnalysisSettings,
) -> tuple[list[RepeatedDenials], bool]:
    rows = await conn.fetch(
        f"""
        SELECT actor_tenant, actor, count(*) AS denials,
               min(occurred_at) AS first, max(occurred_at) AS last,
               array_agg(DISTINCT action) AS actions,
               COALESCE(array_agg(DISTINCT reason) FILTER (WHERE reason IS NOT NULL),
                        '{{}}') AS reasons,
               (array_agg(event_id ORDER BY occurred_at, event_id))[1:$5] AS event_ids
        FROM audit.events
        WHERE {_RANGE} AND outcome = 'denied' AND action <> '{FAILED_LOGIN}'
        GROUP BY actor_tenant, actor
        HAVING count(*) >= $4
        ORDER BY count(*) DESC, actor_tenant, actor
        LIMIT $6
        """,  # noqa: S608 - fixed SQL fragments
        tenant,
        since,
        until,
        s.denials,
        EVENT_IDS_PER_FINDING,
        MAX_FINDINGS + 1,
    )
    out = [
        RepeatedDenials(
            actor=r["actor"],
            actor_tenant=r["actor_tenant"],
            denials=r["denials"],
            first=_jst(r["first"]),
            last=_jst(r["last"]),
            actions=sorted(r["actions"]),
            # Reasons are the server's own sentences, never a submitted value.
            reasons=sorted(r["reasons"])[:20],
            event_ids=_ids(r["event_ids"]),
            more_events=r["denials"] > len(r["event_ids"]),
            query=events_url(
                tenant,
                [
                    *_actor_params(r["actor"], r["actor_tenant"]),
                    ("outcome", "denied"),
                    ("from", _jst(since)),
                    ("to", _jst(until)),
                ],
            ),
        )
        for r in rows[:MAX_FINDINGS]
    ]
    return out, len(rows) > MAX_FINDINGS


async def _failed_logins(
    conn: asyncpg.Connection,
    tenant: str,
    since: datetime,
    until: datetime,
    s: AnalysisSettings,
) -> tuple[list[FailedLogins], bool]:
    rows = await conn.fetch(
        f"""
        SELECT client_addr, count(*) AS failures,
               min(occurred_at) AS first, max(occurred_at) AS last,
               COALESCE(array_agg(DISTINCT reason) FILTER (WHERE reason IS NOT NULL),
                        '{{}}') AS reasons,
               (array_agg(event_id ORDER BY occurred_at, event_id))[1:$5] AS event_ids
        FROM audit.events
        WHERE {_RANGE} AND outcome = 'denied' AND action = '{FAILED_LOGIN}'
        GROUP BY client_addr
        HAVING count(*) >= $4
        ORDER BY count(*) DESC, client_addr
        LIMIT $6
        """,  # noqa: S608 - fixed SQL fragments
        tenant,
        since,
        until,
        s.denials,
        EVENT_IDS_PER_FINDING,
        MAX_FINDINGS + 1,
    )
    query = events_url(
        tenant,
        [
            ("action", FAILED_LOGIN),
            ("outcome", "denied"),
            ("from", _jst(since)),
            ("to", _jst(until)),
        ],
    )
    out = [
        FailedLogins(
            client_addr=r["client_addr"],
            failures=r["failures"],
            first=_jst(r["first"]),
            last=_jst(r["last"]),
            # The verifier's fixed wording (auth.verify._KINDS), never token content.
            reasons=sorted(r["reasons"])[:20],
            event_ids=_ids(r["event_ids"]),
            more_events=r["failures"] > len(r["event_ids"]),
            query=query,
        )
        for r in rows[:MAX_FINDINGS]
    ]
    return out, len(rows) > MAX_FINDINGS


async def _individual_number(
    conn: asyncpg.Connection, tenant: str, since: datetime, until: datetime
) -> tuple[list[IndividualNumberReads], bool]:
    rows = await conn.fetch(
        f"""
        SELECT e.actor_tenant, e.actor, count(DISTINCT e.event_id) AS reads,
               count(DISTINCT s.subject) AS residents,
               min(e.occurred_at) AS first, max(e.occurred_at) AS last,
               COALESCE(array_agg(DISTINCT e.department)
                        FILTER (WHERE e.department IS NOT NULL), '{{}}') AS departments,
               COALESCE(array_agg(DISTINCT e.purpose)
                        FILTER (WHERE e.purpose IS NOT NULL), '{{}}') AS purposes
        FROM audit.events e
        LEFT JOIN LATERAL unnest(e.subjects) AS s(subject) ON true
        WHERE e.tenant = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3
          AND e.incarnation = (SELECT t.incarnation FROM catalog.tenants AS t
                               WHERE t.code = $1::char(6))
          AND e.individual_number AND e.outcome = 'allowed'
          AND NOT {_E_MASKED}
        GROUP BY e.actor_tenant, e.actor
        ORDER BY count(DISTINCT e.event_id) DESC, e.actor_tenant, e.actor
        LIMIT $4
        """,  # noqa: S608 - fixed SQL fragments
        tenant,
        since,
        until,
        MAX_FINDINGS + 1,
    )
    out = [
        IndividualNumberReads(
            actor=r["actor"],
            actor_tenant=r["actor_tenant"],
            departments=sorted(r["departments"]),
            purposes=sorted(r["purposes"]),
            reads=r["reads"],
            residents=r["residents"],
            first=_jst(r["first"]),
            last=_jst(r["last"]),
            query=events_url(
                tenant,
                [
                    *_actor_params(r["actor"], r["actor_tenant"]),
                    ("individual_number", True),
                    ("outcome", "allowed"),
                    ("from", _jst(since)),
                    ("to", _jst(until)),
                ],
            ),
        )
        for r in rows[:MAX_FINDINGS]
    ]
    return out, len(rows) > MAX_FINDINGS
