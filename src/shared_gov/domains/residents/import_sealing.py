"""Sealing checked residents and framing them as binary COPY data per table.

The residents table's layout written out (a worker must not import the
repository; :mod:`.transfer` holds the two together), the keys a worker
gets (:class:`SealingKeys`) and the :class:`Framer` that turns checked
records into what a load writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

import msgspec

from shared_gov.bulkimport.pgcopy import (
    BOOL_FIELDS,
    PG_EPOCH,
    copy_data,
    int4_field,
    int8_field,
    text_fields,
    utf8_values,
    uuid_fields,
)
from shared_gov.crypto.blind import BlindIndex, compound, normalize_digits, normalize_kana
from shared_gov.crypto.envelope import NULL_FIELD, ColumnSealer
from shared_gov.domains.residents.import_layout import _DATE_COLUMNS, RECORD_FIELDS, Columns

# --- COPY payloads -------------------------------------------------------------------
#
# A clean chunk becomes the bytes of a binary COPY per table, built where it
# was checked (a worker process for a large file), so the loading process
# only sends them: encoding a hundred thousand records again there, value by
# value (``copy_records_to_table``), cost about a second of its CPU
# (measured), all of it while PostgreSQL waited for the next chunk.

# The residents table's layout, written out rather than imported (the
# repository and the keyring import the database layer); :mod:`.transfer`
# refuses to load if it ever differs from theirs.
PLAIN: tuple[str, ...] = (
    "id",
    "atena_no",
    "version",
    "state",
    "household_no",
    "history_no",
    "support_measure",
)
"""The record's fields stored as they are (``repository.PLAIN``), in record order."""
ENCRYPTED = tuple(c for c in RECORD_FIELDS if c not in PLAIN)
"""The record's fields stored encrypted (``repository.ENCRYPTED``), in record order."""
INDEXES: tuple[str, ...] = ("individual_number", "kana_birth", "phone", "juminhyo_code")
"""The blind indexes stored beside residents (``keyring.RESIDENT_INDEXES``)."""
BLIND = tuple(f"bidx_{name}{alt}" for name in INDEXES for alt in ("", "_alt"))
"""Both columns of every index (``repository.BLIND``), always written."""
RESIDENT_COLUMNS: tuple[str, ...] = (*PLAIN, *ENCRYPTED, *BLIND)
"""The residents columns a load writes, in COPY order (those ``repository.insert`` writes)."""
HISTORY_COLUMNS = (
    "resident_id",
    "history_no",
    "reason",
    "move_date",
    "notified_on",
    "snapshot",
    "processed_on",
)
_HISTORY_SEALED = ("reason", "move_date", "notified_on", "snapshot")
_IMPORT_REASON = b"import"
"""The history entry's 異動事由 (what ``repository.append_history`` stores for an import)."""


_PLAIN_TYPES = {
    "id": "uuid",
    "atena_no": "text",
    "version": "int4",
    "state": "text",
    "household_no": "text",
    "history_no": "int4",
    "support_measure": "bool",
}
if set(_PLAIN_TYPES) != set(PLAIN):
    raise RuntimeError("_PLAIN_TYPES must follow PLAIN")  # pragma: no cover


def _plain_fields(name: str, values: Sequence[Any]) -> list[bytes]:
    kind = _PLAIN_TYPES[name]
    if kind == "uuid":
        return uuid_fields(values)
    if kind == "int4":
        return list(map(int4_field, values))
    if kind == "bool":
        return list(map(BOOL_FIELDS.__getitem__, values))
    return text_fields(values)


@dataclass(frozen=True, slots=True, repr=False)
class SealingKeys:
    """A town's write keys as a worker gets them: plain bytes, picklable.

    What ``keyring.WriteKeys`` holds (:mod:`.transfer` converts it), with
    each blind index's live versions already placed in their residents
    columns; unpickling it needs only this module. Key bytes never appear
    in the repr, so they cannot reach a log or a traceback through it.
    """

    tenant: str
    deks: dict[str, tuple[int, bytes]]
    """Data key name (``table.column``) -> its write version and key."""
    indexes: dict[str, tuple[tuple[str, int, bytes], ...]]
    """Blind index name -> (residents column, bits, key) of each live version
    (two while its key is rotated: both are written)."""

    def __repr__(self) -> str:
        return (
            f"SealingKeys(tenant={self.tenant!r}, {len(self.deks)} data keys, "
            f"{len(self.indexes)} blind indexes)"
        )


class Framed(NamedTuple):
    """A clean chunk, sealed and framed: what it writes to each table."""

    residents: bytes
    """Binary COPY of the residents rows (:data:`RESIDENT_COLUMNS`)."""
    history: bytes
    """Binary COPY of their history entries (:data:`HISTORY_COLUMNS`)."""
    ids: list[str]
    """The records' ids (canonical UUIDs), in file order: their events' resident ids."""
    atena: list[str]
    """Their 宛名番号, each accepted by :func:`event_atena` (the events' rule)."""


class Framer:
    """Turns checked records into what a load writes, for one town's write keys.

    The same values ``repository.insert`` and ``repository.append_history``
    store (envelopes that decrypt to the same text at the same place, the
    same blind-index values, the same snapshot), built column by column
    (:class:`ColumnSealer`) and framed as binary COPY. Never shows a key in
    a repr.
    """

    __slots__ = ("_history", "_indexes", "_residents")

    def __init__(self, keys: SealingKeys) -> None:
        def sealer(table: str, column: str) -> ColumnSealer:
            version, key = keys.deks[f"{table}.{column}"]
            return ColumnSealer(key, version, (keys.tenant, table, column))

        self._residents = tuple(sealer("residents", c) for c in ENCRYPTED)
        self._history = tuple(sealer("resident_history", c) for c in _HISTORY_SEALED)
        self._indexes = {
            name: tuple((column, BlindIndex(key, bits)) for column, bits, key in versions)
            for name, versions in keys.indexes.items()
        }

    def __repr__(self) -> str:
        return "Framer()"  # never the keys

    def write(self, columns: Columns, processed_on: date) -> Framed:
        """What loading these records (new, as an import makes them) writes.

        ``columns``: valid records column by column, as :func:`check_columns`
        (or :func:`record_columns` of what :func:`check_rows` accepted) gives
        them; their 宛名番号 are not checked again for the events.
        """
        record = dict(zip(RECORD_FIELDS, columns, strict=True))
        ids: list[str] = record["id"]
        count = len(ids)
        if not count:
            raise ValueError("no records to write")  # a chunk always has rows
        places = ColumnSealer.places(ids)
        # Struct instances with the record's fields: the snapshot JSON is the
        # same document msgspec makes of a Resident; built in C, unlike dataclasses.
        records: list[Any] = list(map(_Record, *columns))
        blind = dict.fromkeys(BLIND, [NULL_FIELD] * count)
        for name, inputs in zip(INDEXES, _index_inputs(record), strict=True):
            for column, index in self._indexes[name]:
                blind[column] = [
                    NULL_FIELD if v is None else int8_field(v) for v in index.values(inputs)
                ]
        utf8 = {name: utf8_values(record[name], name in _DATE_COLUMNS) for name in ENCRYPTED}
        id_fields = uuid_fields(ids)  # residents.id and resident_history.resident_id
        rows = copy_data(
            [
                *(
                    id_fields if name == "id" else _plain_fields(name, record[name])
                    for name in PLAIN
                ),
                *(
                    sealer.copy_fields(places, utf8[name])
                    for name, sealer in zip(ENCRYPTED, self._residents, strict=True)
                ),
                *(blind[c] for c in BLIND),
            ],
            count,
        )
        history_nos: list[int] = record["history_no"]
        entries = ColumnSealer.places(f"{rid}/{n}" for rid, n in zip(ids, history_nos, strict=True))
        history_values: tuple[list[bytes | None], ...] = (
            [_IMPORT_REASON] * count,
            utf8["address_since"],  # the history's move date: the record's address_since
            utf8["notified_on"],
            list(map(msgspec.json.encode, records)),
        )
        reason, move_date, notified_on, snapshot = (
            sealer.copy_fields(entries, values)
            for sealer, values in zip(self._history, history_values, strict=True)
        )
        history = copy_data(
            [
                id_fields,
                list(map(int4_field, history_nos)),
                reason,
                move_date,
                notified_on,
                snapshot,
                [int4_field(processed_on.toordinal() - PG_EPOCH)] * count,
            ],
            count,
        )
        return Framed(rows, history, ids, record["atena_no"])


if INDEXES != ("individual_number", "kana_birth", "phone", "juminhyo_code"):
    raise RuntimeError("_index_inputs must follow INDEXES")  # pragma: no cover


def _index_inputs(record: dict[str, list[Any]]) -> tuple[list[str | None], ...]:
    """indexing.index_texts, column by column: the same inputs for every record
    (tests hold the two together), without a Python call per record and index."""

    def digits(values: list[str | None]) -> list[str | None]:
        if "" not in values:
            joined = "".join(filter(None, values))
            if joined.isascii() and joined.isdigit():
                # Every value ASCII digits only (checked numbers): each is
                # already what normalize_digits makes of it.
                return list(values)
        return [normalize_digits(v) if v else None for v in values]

    # compound(kana, birth) == compound(kana) + compound(birth): the kana part
    # once per distinct name (family names repeat within a chunk).
    kana: list[str] = record["family_name_kana"]
    kana_parts = {k: compound(normalize_kana(k)) for k in set(kana)}
    births = map(compound, map(date.isoformat, record["birth_date"]))
    return (
        digits(record["individual_number"]),
        list(map(str.__add__, map(kana_parts.__getitem__, kana), births)),
        digits(record["phone"]),
        digits(record["juminhyo_code"]),
    )


_Record = msgspec.defstruct("_Record", [(name, Any) for name in RECORD_FIELDS])
"""A record as a msgspec Struct (see :meth:`Framer.write`)."""
