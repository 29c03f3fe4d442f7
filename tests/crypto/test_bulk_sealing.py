"""The bulk-import shortcuts of the crypto package give exactly what the one-value
paths give: blind-index values (precomputed HMAC pads)."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from shared_gov.crypto.blind import BlindIndex


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
