"""Sealing a chunk for binary COPY (``import_sealing``): what the single-record writers
would store, envelopes ``FieldCipher`` decrypts, and keys never shown."""

from __future__ import annotations

import io
import random
import struct
import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from shared_gov.crypto.envelope import NULL_FIELD, ColumnSealer, DecryptError, FieldCipher
from shared_gov.crypto.keyring import index_column
from shared_gov.domains.residents import import_sealing, transfer
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.transfer import to_csv_text
from tests.bulkimport.copyformat import decode_copy
from tests.domains.residents.import_files import file_row, fixed_keys


def test_write_keys_never_show_key_bytes() -> None:
    keys = fixed_keys(True).write_keys
    assert keys is not None
    text = repr(keys) + str(keys)
    for _, key in keys.deks.values():
        assert key.hex() not in text
        assert repr(key)[2:20] not in text
    for versions in keys.indexes.values():
        for _, _, key in versions:
            assert key.hex() not in text
    # What the workers get: the same keys, each index version placed in its column.
    sealing = transfer.sealing_keys(keys)
    shown = repr(sealing) + str(sealing) + repr(import_sealing.Framer(sealing))
    for _, key in sealing.deks.values():
        assert key.hex() not in shown
    for name, placed in sealing.indexes.items():
        assert [c for c, _, _ in placed] == [
            index_column(name, version) for version, _, _ in keys.indexes[name]
        ]
        for _, _, key in placed:
            assert key.hex() not in shown


def _field(column: str, raw: bytes | None) -> Any:
    """A binary COPY field as the value the single-record writers pass to asyncpg."""
    if raw is None:
        return None
    if column in ("id", "resident_id"):
        return str(uuid.UUID(bytes=raw))
    if column in ("version", "history_no"):
        return struct.unpack(">i", raw)[0]
    if column.startswith("bidx_"):
        return struct.unpack(">q", raw)[0]
    if column == "support_measure":
        return raw == b"\x01"
    if column == "processed_on":
        return date(2000, 1, 1) + timedelta(days=struct.unpack(">i", raw)[0])
    if column in ("atena_no", "state", "household_no"):
        return raw.decode()
    return raw  # an envelope


@pytest.mark.parametrize("rotating", [False, True])
def test_copy_payloads_are_what_single_writes_store(rotating: bool) -> None:
    """CopyWriter (column by column, framed as binary COPY) and row/_history_row (one
    record) agree: same plain and blind-index values, envelopes that decrypt to the
    same text in the same place, the same history entry and snapshot; one event each."""
    keys = fixed_keys(rotating)
    assert keys.write_keys is not None
    text = to_csv_text(
        [
            list(file_row(n, phone="０１５５-３１-１０００" if n == 4 else "").values())
            for n in range(9)
        ]
    )
    residents, errors = transfer.parse(io.StringIO(text))
    assert errors == []
    residents[2] = replace(residents[2], individual_number=None, juminhyo_code=None)
    processed = date(2026, 1, 5)
    sealed = transfer.CopyWriter(keys.write_keys).write(
        transfer.record_columns(residents), processed, str(uuid.UUID(int=7))
    )
    rows = decode_copy(sealed.residents)
    history = decode_copy(sealed.history)
    assert len(rows) == len(history) == len(residents)
    for r, row, entry in zip(residents, rows, history, strict=True):
        single = repo._row(keys, r)
        stored = {c: _field(c, v) for c, v in zip(transfer.RESIDENT_COLUMNS, row, strict=True)}
        assert set(stored) == set(repo._WRITTEN)
        for column in repo._WRITTEN:
            mine, theirs = stored[column], single[column]
            if column in repo.ENCRYPTED:
                assert (mine is None) == (theirs is None), column
                if mine is not None:
                    assert mine[:5] == theirs[:5]  # format and key version
                    assert keys.decrypt("residents", column, r.id, mine) == keys.decrypt(
                        "residents", column, r.id, theirs
                    )
            else:
                assert mine == theirs, column
        reference = repo._history_row(keys, r, "import", r.address_since, r.notified_on, processed)
        their_entry = dict(zip(repo._HISTORY_COLUMNS, reference, strict=True))
        mine_entry = {c: _field(c, v) for c, v in zip(transfer.HISTORY_COLUMNS, entry, strict=True)}
        assert set(mine_entry) == set(their_entry)
        place = f"{r.id}/{r.history_no}"
        for column, value in their_entry.items():
            if isinstance(value, bytes):
                assert keys.decrypt("resident_history", column, place, mine_entry[column]) == (
                    keys.decrypt("resident_history", column, place, value)
                )
            else:
                assert mine_entry[column] == value, column
        snapshot = keys.decrypt("resident_history", "snapshot", place, mine_entry["snapshot"])
        assert snapshot == repo._snapshot(r).decode()  # the same document, byte for byte
    assert sealed.events.resident_ids == [r.id for r in residents]
    assert sealed.events.each == {"atena_no": [r.atena_no for r in residents]}
    assert sealed.events.shared == {"history_no": "1", "import_id": str(uuid.UUID(int=7))}
    if rotating:  # both versions of every index are written during a rotation
        by_column = dict(zip(transfer.RESIDENT_COLUMNS, rows[0], strict=True))
        assert by_column["bidx_kana_birth"] is not None
        assert by_column["bidx_kana_birth_alt"] is not None


def test_column_sealer_writes_field_cipher_envelopes() -> None:
    """ColumnSealer's fields: a 4-byte length, then an envelope FieldCipher decrypts at
    the same place (NULL for None); a fresh nonce each; the key never in a repr."""
    key = random.Random(3).randbytes(32)  # noqa: S311 - a fixed test key, never a real one
    sealer = ColumnSealer(key, 5, ("016365", "residents", "address"))
    ids = [str(uuid.UUID(int=n)) for n in range(4)]
    values = ["帯広".encode(), None, b"", b"x" * 300]
    fields = sealer.copy_fields(ColumnSealer.places(ids), values)
    cipher = FieldCipher({5: key}, 5)
    for rid, value, field in zip(ids, values, fields, strict=True):
        (length,) = struct.unpack_from(">i", field)
        if value is None:
            assert field == NULL_FIELD
            continue
        assert length == len(field) - 4
        blob = field[4:]
        assert FieldCipher.key_version(blob) == 5
        assert cipher.decrypt(blob, ("016365", "residents", "address", rid)) == value
        with pytest.raises(DecryptError):
            cipher.decrypt(blob, ("016365", "residents", "address", ids[0] + "x"))
    assert len({f[9:21] for f in fields if f != NULL_FIELD}) == 3  # nonces
    assert key.hex() not in repr(sealer) + repr(transfer.CopyWriter(fixed_keys(False).write_keys))  # type: ignore[arg-type]
