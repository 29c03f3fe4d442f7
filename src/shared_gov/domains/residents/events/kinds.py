"""The types of residents' events, and which record fields an event may name.

One event per 異動 and person (the package's docstring has the table of
which change writes which type); an event's ``fields`` are NAMES of the
resident record's fields, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Final

from shared_gov.domains.residents.models import ChangeEvent, EntryEvent, Resident
from shared_gov.domains.residents.spec import RESIDENT

RECORD_TYPE: Final = RESIDENT.name
"""The outbox's ``record_type`` of residents' events (t0009); an identifier, inlined."""
REGISTERED: Final = "resident.registered"
MOVED_IN: Final = "resident.moved_in"
MOVED_WITHIN_TOWN: Final = "resident.moved_within_town"
MOVED_OUT: Final = "resident.moved_out"
DIED: Final = "resident.died"
CHANGED: Final = "resident.changed"
KINDS: Final = frozenset({REGISTERED, MOVED_IN, MOVED_WITHIN_TOWN, MOVED_OUT, DIED, CHANGED})

ENTRY_KINDS: Final[Mapping[EntryEvent, str]] = {
    EntryEvent.BIRTH: REGISTERED,
    EntryEvent.EX_OFFICIO_ENTRY: REGISTERED,
    EntryEvent.MOVE_IN_DOMESTIC: MOVED_IN,
    EntryEvent.MOVE_IN_FROM_ABROAD: MOVED_IN,
}
CHANGE_KINDS: Final[Mapping[ChangeEvent, str]] = {
    ChangeEvent.MOVE_WITHIN_TOWN: MOVED_WITHIN_TOWN,
    ChangeEvent.HEAD_OF_HOUSEHOLD_CHANGE: CHANGED,
    ChangeEvent.NAME_CHANGE: CHANGED,
    ChangeEvent.HOUSEHOLD_SPLIT: CHANGED,
    ChangeEvent.MOVE_OUT_DOMESTIC: MOVED_OUT,
    ChangeEvent.MOVE_OUT_ABROAD: MOVED_OUT,
    ChangeEvent.EX_OFFICIO_REMOVAL: MOVED_OUT,
    ChangeEvent.DEATH: DIED,
}

RESIDENT_FIELDS: Final = frozenset(f.name for f in fields(Resident))
"""The names an event's ``fields`` may hold: the resident record's fields."""
BOOKKEEPING: Final = frozenset({"id", "version", "history_no"})
"""Change with every write (or never): not news for a consumer."""


def changed_fields(before: Resident, after: Resident) -> list[str]:
    """Names of the record fields that differ (bookkeeping left out)."""
    return [
        f for f in sorted(RESIDENT_FIELDS - BOOKKEEPING) if getattr(before, f) != getattr(after, f)
    ]
