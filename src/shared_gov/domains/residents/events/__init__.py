"""Domain events of resident records: the town's outbox (issue #6).

Every change to the register writes one event into the town's ``events``
table (tenant migration t0005) in the change's own transaction, so an event
exists exactly when its change committed. Departments' systems read them from
``GET /api/v1/tenants/{code}/events`` (:mod:`.events_controllers`) and react
— care-insurance qualification after a move, for instance — instead of
re-keying the change.

What an event may carry is narrow on purpose: its type, the resident's id,
the NAMES of the fields that changed, and a few ids. Never a value: a
consumer that needs the new address reads the record through the normal
API, where Cedar decides per field and purpose and the read is audited.
:func:`emit` enforces it — a known type, field names from the resident
record, ids that are UUIDs, serial numbers or town codes under known keys —
and the table's CHECK constraints repeat the shape.

Which change writes which type (one event per 異動 and person, so an event
matches one history entry, named by ``history_no``):

============================  ==============================================
``resident.registered``       出生, 職権記載, and every record of a bulk import
                              (those carry ``import_id``: a data migration,
                              not news)
``resident.moved_in``         国内転入, 国外転入
``resident.moved_within_town``  転居
``resident.moved_out``        国内転出, 国外転出, 職権消除 (left the register
                              other than by death; the history's 異動事由
                              tells them apart)
``resident.died``             死亡
``resident.changed``          氏名変更, 世帯主変更 (both people), 世帯分離,
                              支援措置 set or lifted (no history entry)
============================  ==============================================

The household number is deliberately not an id here: under 支援措置 it is
withheld with the address (it leads to the head of household), and leaving
it out only for protected people would itself tell who is protected.

Rule 1 (docs/support-measures.md) on the read side: the town a person moved
to or from (``to_town``, ``from_town``, any ``*_town`` id) tells where they
live now. :func:`withhold_whereabouts` removes those ids from every event of
a person under 支援措置 or sharing a household with one, as the feed reads
them: whoever wrote the event, and also for events written before the
protection was set.

Reading: the feed's position is ``(xid, seq)`` — the writing transaction's
id, then the order within it — and a read serves only events whose ``xid``
is below ``pg_snapshot_xmin(pg_current_snapshot())``: every transaction that
old has ended, and any transaction still to write gets a larger xid, so
nothing can ever appear behind a position already handed out. The audit
sealer (:mod:`shared_gov.audit.sealer`) relies on the same rule. Cursors are
opaque to clients (:class:`Cursor`).

Modules: :mod:`.kinds` (the types, the fields an event may name),
:mod:`.shapes` (field-name and id checks), :mod:`.outbox` (writing, one or in
bulk), :mod:`.feed` (reading, cursors, rule 1). This package's names are the
public ones; import them from here.
"""

from shared_gov.domains.residents.events.feed import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    START,
    Cursor,
    Page,
    parse_kinds,
    read,
    withhold_whereabouts,
)
from shared_gov.domains.residents.events.kinds import (
    CHANGE_KINDS,
    CHANGED,
    DIED,
    ENTRY_KINDS,
    KINDS,
    MOVED_IN,
    MOVED_OUT,
    MOVED_WITHIN_TOWN,
    RECORD_TYPE,
    REGISTERED,
    RESIDENT_FIELDS,
    changed_fields,
)
from shared_gov.domains.residents.events.outbox import (
    Batch,
    batch,
    emit,
    emit_batch,
    emit_many,
)
from shared_gov.domains.residents.events.shapes import id_check

__all__ = [
    "CHANGED",
    "CHANGE_KINDS",
    "DEFAULT_LIMIT",
    "DIED",
    "ENTRY_KINDS",
    "KINDS",
    "MAX_LIMIT",
    "MOVED_IN",
    "MOVED_OUT",
    "MOVED_WITHIN_TOWN",
    "RECORD_TYPE",
    "REGISTERED",
    "RESIDENT_FIELDS",
    "START",
    "Batch",
    "Cursor",
    "Page",
    "batch",
    "changed_fields",
    "emit",
    "emit_batch",
    "emit_many",
    "id_check",
    "parse_kinds",
    "read",
    "withhold_whereabouts",
]
