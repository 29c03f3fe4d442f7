"""The bulk-import shortcuts of the crypto package give exactly what the one-value
paths give: blind-index values (precomputed HMAC pads) and envelopes (BulkSealer)."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from shared_gov.crypto.blind import BlindIndex
from shared_gov.crypto.envelope import FieldCipher
from shared_gov.crypto.keyring import BulkSealer, WriteKeys


@pytest.mark.parametrize("key_bytes", [32, 64, 65, 100])
def test_blind_index_values_are_truncated_hmac_sha256(key_bytes: int) -> None:
    """Keys up to and beyond the SHA-256 block size (longer ones are hashed first)."""
    key = os.urandom(key_bytes)
    inputs = ["", "09012345678", "4:ヤマダ10:1980-04-01", "x" * 300, None]
    for bits in (8, 16, 32, 63):
        index = BlindIndex(key, bits)
        expected = [
            None
            if text is None
            else int.from_bytes(hmac.digest(key, text.encode(), hashlib.sha256)[:8], "big")
            >> (64 - bits)
            for text in inputs
        ]
        assert index.values(inputs) == expected
        assert [index.value(t) for t in inputs if t is not None] == [
            e for e in expected if e is not None
        ]


def test_bulk_sealer_envelopes_are_field_cipher_envelopes() -> None:
    """Same header (format, key version), fresh nonces, and each decrypts with
    FieldCipher in its own place only."""
    key = os.urandom(32)
    keys = WriteKeys("172065", {"residents.address": (7, key)}, {})
    sealer = BulkSealer(keys, {"residents": ("address",)})
    cipher = FieldCipher({7: key}, 7)
    ids = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]
    values = ["石川県加賀市大聖寺1-1".encode(), None]
    sealed = sealer.seal_column("residents", 0, BulkSealer.places(ids), values)
    assert sealed[1] is None
    blob = sealed[0]
    assert blob is not None
    reference = cipher.encrypt(b"x", ("172065", "residents", "address", ids[0]))
    assert blob[:5] == reference[:5]
    assert cipher.decrypt(blob, ("172065", "residents", "address", ids[0])) == values[0]
    for wrong in (
        ("172065", "residents", "address", ids[1]),
        ("172031", "residents", "address", ids[0]),
    ):
        with pytest.raises(Exception, match="authentication failed"):
            cipher.decrypt(blob, wrong)
    again = sealer.seal_column("residents", 0, BulkSealer.places(ids), values)[0]
    assert again is not None
    assert again[5:17] != blob[5:17]  # a fresh nonce every time
