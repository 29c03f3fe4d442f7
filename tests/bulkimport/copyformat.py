"""Reading binary COPY data back (PostgreSQL's format), for tests of what loads send."""

from __future__ import annotations

import struct


def decode_copy(data: bytes) -> list[list[bytes | None]]:
    """Rows of a binary COPY payload, each field as bytes (None for NULL)."""
    assert data[:11] == b"PGCOPY\n\xff\r\n\x00"
    at = 19
    rows: list[list[bytes | None]] = []
    while True:
        (count,) = struct.unpack_from(">h", data, at)
        at += 2
        if count == -1:
            assert at == len(data)
            return rows
        row: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, at)
            at += 4
            if length < 0:
                row.append(None)
            else:
                row.append(data[at : at + length])
                at += length
        rows.append(row)
