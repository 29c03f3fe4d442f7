"""Writing residents' events into the town's outbox (``events``, tenant migration t0005).

In the change's own unit of work, so an event exists exactly when its
change committed: :func:`emit` one at a time, :func:`emit_many` (or
:func:`batch` checked apart, then :func:`emit_batch`) for a bulk import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents.events.kinds import RECORD_TYPE
from shared_gov.domains.residents.events.shapes import (
    CANONICAL_UUID,
    MAX_IDS,
    checked_ids,
    checked_resident_id,
    checker,
    field_names,
    id_value,
)

_BULK_CHUNK: Final = 10_000


async def emit(
    uow: TenantUnitOfWork,
    kind: str,
    resident_id: str,
    fields: Iterable[str] = (),
    **ids: str,
) -> None:
    """Write one event in ``uow``'s transaction: it commits or rolls back with the change.

    ``fields`` are the NAMES of the record fields the change set; ``ids`` are
    other identifiers a consumer may need (``history_no``, ``atena_no``,
    ``transfer_id``, ``from_town`` …). A value that is not an id of a known
    shape, an unknown type or a name that is not a resident field raises
    ValueError — a bug in the caller, never a client's input.
    """
    names = field_names(kind, fields)
    rid = checked_resident_id(resident_id)
    checked = checked_ids(ids, {})
    await uow.execute(
        "INSERT INTO events (type, record_type, record_id, fields, ids) "  # noqa: S608 - a constant
        f"VALUES ($1, '{RECORD_TYPE}', $2, $3, $4)",
        kind,
        rid,
        names,
        checked,
    )


@dataclass(frozen=True, slots=True)
class Batch:
    """Events of one type for many residents, checked: made by :func:`batch` only.

    Picklable, so an import's worker processes check and build them while
    the loading process only writes them (:func:`emit_batch`).
    """

    kind: str
    fields: list[str]
    shared: dict[str, str]
    """Ids every event carries (``import_id``)."""
    resident_ids: list[str]
    each: dict[str, list[str]]
    """Id key -> one checked value per resident, keys sorted."""


def batch(
    kind: str,
    resident_ids: Sequence[str],
    fields: Iterable[str] = (),
    *,
    each: Mapping[str, Sequence[str]] | None = None,
    checked_each: Mapping[str, Sequence[str]] | None = None,
    **ids: str,
) -> Batch:
    """Check one ``kind`` event per resident (see :func:`emit_many`), without writing.

    ``checked_each`` is ``each`` for values that already are what
    :func:`id_check` returned for them: taken as they are. A bulk import
    checks every 宛名番号 once, when it reads the file (check digits cost
    about 3 µs each: a third of a second for 100,000 records).
    """
    names = field_names(kind, fields)
    shared = checked_ids(ids, {})
    columns = dict(each or {})
    trusted = dict(checked_each or {})
    keys = [*columns, *trusted]
    if len(set(keys)) != len(keys) or set(keys) & set(shared) or len(keys) + len(shared) > MAX_IDS:
        raise ValueError(f"ids overlap or more than {MAX_IDS} per event")
    checked: dict[str, list[str]] = {}
    for key, values in (*columns.items(), *trusted.items()):
        if len(values) != len(resident_ids):
            raise ValueError(f"{key} needs one value per resident")
        check = checker(key)  # an unknown key is refused either way
        checked[key] = list(values) if key in trusted else [id_value(key, v, check) for v in values]
    if set(map(type, resident_ids)) <= {str} and all(map(CANONICAL_UUID.match, resident_ids)):
        # Every id already in its stored form (a bulk import's): what
        # checked_resident_id returns for each, found in one pass in C.
        rids = list(resident_ids)
    else:
        rids = [checked_resident_id(r) for r in resident_ids]
    return Batch(kind, names, shared, rids, {k: checked[k] for k in sorted(checked)})


async def emit_batch(uow: TenantUnitOfWork, checked: Batch) -> int:
    """Write a checked :class:`Batch` in ``uow``'s transaction; returns how many were written.

    The server builds each event's ids, one INSERT … SELECT FROM unnest per
    10,000 events, so a load pays a few microseconds per record. Each list
    of ids travels as one comma-separated text that the server splits:
    checked ids (UUIDs, digits) hold no comma, and asyncpg's array encoding
    costs about a microsecond per element here (measured).
    """
    keys = list(checked.each)
    # Keys passed id_value: [a-z][a-z0-9_]*, safe as SQL string literals.
    pairs = ", ".join(f"'{k}', u.c{i}" for i, k in enumerate(keys))
    build = f"jsonb_build_object({pairs}) || $3::jsonb" if keys else "$3::jsonb"
    arrays = ", ".join(
        [
            "string_to_array($4::text, ',')::uuid[]",
            *(f"string_to_array(${5 + i}::text, ',')" for i in range(len(keys))),
        ]
    )
    aliases = ", ".join(["r", *(f"c{i}" for i in range(len(keys)))])
    # WITH ORDINALITY + ORDER BY: seq follows the caller's order (the file's).
    sql = (
        "INSERT INTO events (type, record_type, record_id, fields, ids) "  # noqa: S608 - see above
        f"SELECT $1, '{RECORD_TYPE}', u.r, $2::text[], {build} "
        f"FROM unnest({arrays}) WITH ORDINALITY AS u({aliases}, n) ORDER BY u.n"
    )
    rids = checked.resident_ids
    for start in range(0, len(rids), _BULK_CHUNK):
        stop = start + _BULK_CHUNK
        lists = [rids[start:stop], *(checked.each[k][start:stop] for k in keys)]
        texts = [",".join(values) for values in lists]
        # One comma fewer than values, or a value held one: never misalign ids.
        if any(t.count(",") != len(v) - 1 for t, v in zip(texts, lists, strict=True) if v):
            raise ValueError("an event id holds a comma")
        await uow.execute(sql, checked.kind, checked.fields, checked.shared, *texts)
    return len(rids)


async def emit_many(
    uow: TenantUnitOfWork,
    kind: str,
    resident_ids: Sequence[str],
    fields: Iterable[str] = (),
    *,
    each: Mapping[str, Sequence[str]] | None = None,
    **ids: str,
) -> int:
    """Write one ``kind`` event per resident, in bulk (imports).

    ``ids`` are shared by every event (``import_id``); ``each`` maps an id's
    key to one value per resident, in ``resident_ids`` order (``atena_no``).
    Same checks as :func:`emit` (:func:`batch`), then :func:`emit_batch`.
    Returns how many were written.
    """
    checked = batch(kind, resident_ids, fields, each=each, checked_each=None, **ids)
    return await emit_batch(uow, checked)
