"""MACs, writers' chains and links to the town's tables (audit pipeline v2, catalog c0015).

Checked when the town's audit key is given: events without a MAC after the
first one with a MAC, the MACs of events not sealed yet, every writer's
chain, and every history row and outbox event having its audit event.
"""

from __future__ import annotations

import re
from typing import Any, Final

import asyncpg

from shared_gov.audit.mac import mac_of_values
from shared_gov.audit.tlog import EVENT_SELECT
from shared_gov.audit.verify.leaves import _ID, _N, PREFETCH, _bad_mac
from shared_gov.audit.verify.report import MAX_LISTED, Problem, VerifyReport
from shared_gov.domains import registry


class _Unmaced:
    """Events without a MAC: allowed only before the town's first MACed event.

    Events written before catalog c0015, or before the town's audit key
    existed (the first request after the upgrade creates it), have none;
    after the first sealed event with a MAC, every event must have one.
    """

    def __init__(self) -> None:
        self.first_maced: int | None = None
        self.unsealed_maced = False
        self.without: list[tuple[str, int | None]] = []

    def maced(self, seq: int) -> None:
        if self.first_maced is None or seq < self.first_maced:
            self.first_maced = seq

    def unmaced(self, event_id: Any, seq: int | None) -> None:
        self.without.append((str(event_id), seq))

    def report(self, report: VerifyReport) -> None:
        if self.first_maced is None and not self.unsealed_maced:
            return  # no event with a MAC yet: the town's key is new, or unused
        for event_id, seq in self.without:
            # Unsealed: written after events with a MAC (the sealer would
            # place it after them). Sealed: after the first one with a MAC.
            if seq is None or self.first_maced is None or seq > self.first_maced:
                where = f"leaf {seq}: " if seq is not None else "unsealed: "
                report.add(
                    Problem(
                        "mac_missing",
                        f"{where}event {event_id} has no MAC although the town's events "
                        "carry one (inserted behind the service?)",
                        seq,
                    )
                )


_UNSEALED_EVENTS_SQL: Final = (
    f"SELECT {EVENT_SELECT}, e.mac, e.writer, e.wseq, e.prev_mac "  # noqa: S608 - constants
    "FROM audit.events AS e WHERE e.tenant = $1 AND e.incarnation = $2 "
    # After the sealer's position (it seals in this order: everything after
    # it is unsealed; an unsealed event before it is an `unsealed_event`).
    "AND (e.xid, e.occurred_at, e.event_id) > COALESCE(("
    "  SELECT ROW(l.xid, l.occurred_at, l.event_id) FROM audit.leaves AS l "
    "  ORDER BY l.xid DESC, l.occurred_at DESC, l.event_id DESC LIMIT 1), "
    "  ROW('0'::xid8, '-infinity'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid))"
)


async def check_unsealed_macs(
    conn: asyncpg.Connection, report: VerifyReport, mac_key: bytes, macs: _Unmaced
) -> None:
    """The MACs of the events the sealer has not reached yet (the last second or so)."""
    async for row in conn.cursor(_UNSEALED_EVENTS_SQL, report.tenant, report.incarnation):
        mac = row[_N]
        if mac is None:
            macs.unmaced(row[_ID], None)
            continue
        macs.unsealed_maced = True
        if mac_of_values(mac_key, row[:_N], row[_N + 1], row[_N + 2], row[_N + 3]) != bytes(mac):
            report.add(_bad_mac(row[_ID], None))


_CHAIN_SQL: Final = (
    # No join: problems name event ids (a leaf position would cost a look-up
    # per event).
    "SELECT e.writer, e.wseq, e.event_id, e.mac, e.prev_mac, e.xid::text::numeric AS xid, "
    "e.occurred_at, NULL::bigint AS seq FROM audit.events AS e "
    "WHERE e.tenant = $1 AND e.incarnation = $2 AND e.writer IS NOT NULL "
    "ORDER BY e.writer, e.wseq, e.xid, e.occurred_at"
)


async def check_chains(conn: asyncpg.Connection, report: VerifyReport) -> None:
    """Every audit writer's chain in the town's log runs 0, 1, 2, … with each link intact.

    A gap is an event deleted (located between the two events around it);
    a link whose ``prev_mac`` is not its predecessor's MAC, a sequence number
    used twice, or a chain going back in time (its transaction id or its
    time, either one) are events reordered, copied or moved. The MACs themselves were checked
    with the leaves: a stored ``prev_mac`` or ``wseq`` that was changed
    fails its event's MAC.
    """
    previous: Any = None
    async for row in conn.cursor(_CHAIN_SQL, report.tenant, report.incarnation, prefetch=PREFETCH):
        writer, wseq = row["writer"], row["wseq"]
        if previous is None or previous["writer"] != writer:
            if wseq != 0:
                report.add(
                    Problem(
                        "chain_gap",
                        f"writer {writer}: its first {wseq} event(s) are missing "
                        f"(before event {row['event_id']})",
                        row["seq"],
                    )
                )
            elif row["prev_mac"] is not None:
                report.add(_link(row, "starts with a link to an event that is not there"))
            previous = row
            continue
        expected = previous["wseq"] + 1
        if wseq == previous["wseq"]:
            report.add(_link(row, f"sequence number {wseq} is used twice"))
        elif wseq != expected:
            report.add(
                Problem(
                    "chain_gap",
                    f"writer {writer}: event(s) {expected}..{wseq - 1} are missing, between "
                    f"event {previous['event_id']} and event {row['event_id']}",
                    row["seq"],
                )
            )
        elif row["prev_mac"] is None or bytes(row["prev_mac"]) != bytes(previous["mac"] or b""):
            report.add(_link(row, f"does not follow event {previous['event_id']}"))
        # Both, each on its own: the writer commits its batches one after
        # the other on one connection, so neither the transaction id nor the
        # time (the database's clock_timestamp() as each row is inserted, in
        # chain order) can go back along its chain. Either going back is an
        # event moved: the time alone, a read back-dated.
        back = [
            what
            for what, column in (("transaction", "xid"), ("time", "occurred_at"))
            if row[column] < previous[column]
        ]
        if back:
            report.add(
                Problem(
                    "chain_order",
                    f"writer {writer}: event {row['event_id']} (#{wseq}) is dated before "
                    f"event {previous['event_id']} (#{previous['wseq']}) that it follows "
                    f"(its {' and '.join(back)} went back: reordered or moved?)",
                    row["seq"],
                )
            )
        previous = row


def _link(row: Any, what: str) -> Problem:
    return Problem(
        "chain_broken",
        f"writer {row['writer']}: event {row['event_id']} (#{row['wseq']}) {what}",
        row["seq"],
    )


# A row's xmin is 32 bits; the event's xid is the same transaction in this
# epoch or the one before (read from the snapshot: this transaction has no xid).
_FULL_XID: Final = (
    "(((div(pg_snapshot_xmax(pg_current_snapshot())::text::numeric, 4294967296)::bigint "
    "- {back}) << 32) + {alias}.xmin::text::bigint)::text::xid8"
)
_SAFE_TABLE: Final = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


async def _check_table(
    conn: asyncpg.Connection,
    report: VerifyReport,
    schema: str,
    table: str,
    has_event: str,
) -> None:
    """Rows of a domain's audited table whose last writing transaction has no
    event (``DomainSpec.audited_tables``): its event was deleted."""
    if not _SAFE_TABLE.fullmatch(table):
        return
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.{table}"):
        return
    xid = _FULL_XID.replace("{alias}", "r")
    rows = await conn.fetch(
        f"SELECT r.xmin::text AS xid, count(*) AS n FROM {schema}.{table} AS r "  # noqa: S608
        f"WHERE NOT {has_event.format(x=xid.format(back=0))} "
        f"AND NOT {has_event.format(x=xid.format(back=1))} "
        f"GROUP BY r.xmin::text ORDER BY 1 LIMIT {MAX_LISTED}",
        report.tenant,
        report.incarnation,
    )
    for row in rows:
        report.add(
            Problem(
                "row_without_event",
                f"{row['n']} row(s) of {table} written by transaction {row['xid']} have no "
                "audit event of their write (deleted?)",
            )
        )


_SCHEMA_SQL: Final = (
    "SELECT t.schema_name FROM catalog.tenants AS t WHERE t.code = $1::char(6) "
    "AND t.incarnation = $2 AND EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = t.schema_name)"
)
_SAFE_SCHEMA: Final = re.compile(r"^t_[0-9]{6}$")


async def check_links(conn: asyncpg.Connection, report: VerifyReport) -> None:
    """Every history row and outbox event of the town has its audit event.

    A write's event is written in the write's own transaction, so it carries
    that transaction's id (``xid``). An outbox event stores the same id
    (``events.xid``); a history row's ``xmin`` is its low 32 bits (the
    inserting, or last re-encrypting, transaction: both record an event).
    Deleting a write's event therefore leaves a history row or outbox event
    whose transaction has no event. (Not after a logical dump and restore,
    which gives every row the restoring transaction's ``xmin``: verify
    before, and compare outbox links only, after one.)
    """
    schema = await conn.fetchval(_SCHEMA_SQL, report.tenant, report.incarnation)
    if schema is None or not _SAFE_SCHEMA.fullmatch(str(schema)):
        return  # offboarded (or not this incarnation's): no town tables left
    has_event = (
        "EXISTS (SELECT 1 FROM audit.events AS e WHERE e.xid = {x} "
        "AND e.tenant = $1 AND e.incarnation = $2)"
    )
    outbox: list[asyncpg.Record] = []
    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.events"):
        outbox = await conn.fetch(
            f"SELECT o.xid::text AS xid, o.seq, o.event_id FROM {schema}.events AS o "  # noqa: S608
            f"WHERE NOT {has_event.format(x='o.xid')} ORDER BY o.xid, o.seq LIMIT {MAX_LISTED}",
            report.tenant,
            report.incarnation,
        )
    for row in outbox:
        report.add(
            Problem(
                "outbox_without_event",
                f"outbox event {row['event_id']} (transaction {row['xid']}) has no audit "
                "event of its write (deleted?)",
            )
        )
    for table in registry.audited_tables():
        await _check_table(conn, report, str(schema), table, has_event)
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.resident_history"):
        return
    full = _FULL_XID.replace("{alias}", "h")
    history = await conn.fetch(
        f"SELECT h.resident_id, h.history_no, h.xmin::text AS xid "  # noqa: S608
        f"FROM {schema}.resident_history AS h "
        f"WHERE NOT {has_event.format(x=full.format(back=0))} "
        f"AND NOT {has_event.format(x=full.format(back=1))} "
        f"ORDER BY h.resident_id, h.history_no LIMIT {MAX_LISTED}",
        report.tenant,
        report.incarnation,
    )
    for row in history:
        report.add(
            Problem(
                "history_without_event",
                f"history row {row['history_no']} of resident {row['resident_id']} "
                f"(transaction {row['xid']}) has no audit event of its write (deleted?)",
            )
        )
