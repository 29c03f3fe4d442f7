"""PostgreSQL's binary COPY format, built column by column.

A load sends a table's rows as the bytes of one binary COPY, framed where
the rows were checked (a worker process for a large file) so the loading
process only sends them. These are the field encoders and the framing;
which columns a table has, and their types, is the caller's.
"""

from __future__ import annotations

import functools
import operator
import struct
from collections.abc import Iterable, Sequence
from datetime import date
from itertools import chain, repeat
from typing import Any

# Binary COPY: signature, flags (none), header extension length (0); then per
# row a 16-bit field count and each field as a 32-bit length (-1: NULL) and
# its bytes in the column type's binary form; then -1 as the field count.
_COPY_HEAD = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TAIL = b"\xff\xff"
_field_length = struct.Struct(">i").pack
int4_field = functools.partial(struct.Struct(">ii").pack, 4)
int8_field = functools.partial(struct.Struct(">iq").pack, 8)
_UUID_LENGTH = _field_length(16)
BOOL_FIELDS = {False: _field_length(1) + b"\x00", True: _field_length(1) + b"\x01"}
PG_EPOCH = date(2000, 1, 1).toordinal()
"""PostgreSQL's binary dates count days from 2000-01-01."""


def text_fields(values: Iterable[str]) -> list[bytes]:
    encoded = list(map(str.encode, values))
    return list(map(operator.add, map(_field_length, map(len, encoded)), encoded))


def uuid_fields(ids: Iterable[str]) -> list[bytes]:
    # Ids are canonical by now (check_rows): 32 hex digits and four hyphens.
    return [_UUID_LENGTH + bytes.fromhex(rid.replace("-", "")) for rid in ids]


def utf8_values(values: Sequence[Any], dates: bool) -> list[bytes | None]:
    """A column's values as the envelopes hold them: UTF-8 text, dates in ISO form."""
    if dates:
        distinct = set(values)
        if len(distinct) * 4 <= len(values):
            # A register's record dates repeat (届出年月日, 住民となった年月日 …):
            # each distinct one formatted once.
            text = {d: None if d is None else d.isoformat().encode() for d in distinct}
            return list(map(text.__getitem__, values))
    if None not in values:  # most columns: one C-level pass
        return list(map(str.encode, map(date.isoformat, values) if dates else values))
    if dates:
        return [None if v is None else v.isoformat().encode() for v in values]
    return [None if v is None else v.encode() for v in values]


def copy_data(columns: Sequence[Sequence[bytes]], rows: int) -> bytes:
    """A whole binary COPY from its columns' fields: one join, no loop per row in Python."""
    count = struct.pack(">h", len(columns))
    # Joined row by row, then all rows: faster than one join over every field.
    body = map(b"".join, zip(repeat(count, rows), *columns, strict=True))
    return b"".join(chain((_COPY_HEAD,), body, (_COPY_TAIL,)))
