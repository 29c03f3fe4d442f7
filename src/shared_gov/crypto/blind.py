"""Blind indexes: equality search over encrypted fields (CipherSweet-style).

A blind index value is HMAC-SHA256(index key, normalised input), truncated to
a few bits and stored beside the ciphertext. To search, the service computes
the value of what it looks for, fetches the rows sharing it, decrypts them
and compares. Truncation is deliberate: a full-length HMAC would let anyone
holding the database link equal values across rows; a short one only says
"one of these few people".

Inputs must be normalised the same way on write and on search, so the
normalisers live here: :func:`normalize_digits` (phone numbers, individual
numbers, 住民票コード), :func:`normalize_kana` (family-name kana) and
:func:`compound` (several normalised parts as one input).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from typing import Final

__all__ = ["BlindIndex", "compound", "normalize_digits", "normalize_kana", "plan_bits"]

MIN_KEY_BYTES: Final = 32
_SHA256_BLOCK: Final = 64
MAX_BITS: Final = 63  # PostgreSQL bigint is signed: 63 bits stay non-negative

# Hiragana ぁ (U+3041) … ゖ (U+3096) and the iteration marks ゝゞ sit exactly
# 0x60 below their katakana; ゟ (U+309F) has no katakana counterpart.
_HIRAGANA_TO_KATAKANA: Final = {c: c + 0x60 for c in range(0x3041, 0x3097)} | {
    0x309D: 0x30FD,
    0x309E: 0x30FE,
}
_ASCII_DIGITS: Final = frozenset("0123456789")
_DROP_ASCII_NON_DIGITS: Final = str.maketrans(
    "", "", "".join(chr(c) for c in range(128) if chr(c) not in _ASCII_DIGITS)
)


def plan_bits(
    population: int, *, per_value: float = 2.0, minimum: int = 8, maximum: int = 32
) -> int:
    """How many bits a blind index keeps for a town of ``population`` people.

    With N records and b bits, each index value is shared by about N / 2^b
    records. We choose b = floor(log2(N / per_value)), clamped to
    [minimum, maximum], so that a lookup returns a handful of candidates —
    about ``per_value`` — which are decrypted and compared:

    - short enough that an index value never identifies one person by itself:
      an attacker holding the database (or a dump) learns only that a row
      belongs to a bucket of ~2 or more people, and cannot link rows that
      share a value with certainty;
    - long enough that a lookup decrypts few rows, so search stays cheap.

    The clamp has a cost at the small end: below N = per_value * 2^minimum
    (512 people with the defaults) ``minimum`` wins, buckets hold fewer than
    ``per_value`` records on average, and a value may then single out one
    person. Pass a lower ``minimum`` for very small towns if that matters
    more than search cost. ``maximum`` caps index width whatever the town.

    Use the town's *expected* population (from its manifest), not today's
    row count: the index is sized for the records it will hold. Populations
    grow, and a bit count cannot change in place, so callers re-plan when
    they rotate the index key (a new column is filled during the switch).

    >>> plan_bits(206_000)
    16
    """
    if per_value <= 0:
        raise ValueError("per_value must be positive")
    if not 1 <= minimum <= maximum <= MAX_BITS:
        raise ValueError(f"need 1 <= minimum <= maximum <= {MAX_BITS}")
    # Largest b with per_value * 2^b <= N, found by doubling rather than
    # math.log2 so that exact powers of two never round the wrong way.
    bits = 0
    while bits < maximum and per_value * 2.0 ** (bits + 1) <= population:
        bits += 1
    return max(minimum, bits)


class BlindIndex:
    """Computes one blind index's values with its own key.

    Each index (individual number, kana + birth date, phone, …) has a key of
    its own, so values of different indexes cannot be correlated. Instances
    are immutable and safe to share between threads and tasks.
    """

    __slots__ = ("_inner", "_key", "_outer", "_shift", "bits")

    def __init__(self, key: bytes, bits: int) -> None:
        if len(key) < MIN_KEY_BYTES:
            # The length only: never the key.
            raise ValueError(f"blind-index key is {len(key)} bytes, need at least 32")
        if not 1 <= bits <= MAX_BITS:
            raise ValueError(f"bits must be between 1 and {MAX_BITS}")
        self._key = bytes(key)
        self._shift = 64 - bits
        self.bits: int = bits
        # HMAC (RFC 2104) from two SHA-256 states that have absorbed the key
        # pads: each value copies them instead of re-deriving the pads, which
        # makes it about 2.5 times cheaper than hmac.digest (measured; tests
        # hold it to hmac.digest's output).
        block = self._key if len(self._key) <= _SHA256_BLOCK else hashlib.sha256(self._key).digest()
        block = block.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __repr__(self) -> str:
        return f"BlindIndex(bits={self.bits})"  # never the key

    def key_bytes(self) -> bytes:
        """The key itself, to hand to a worker process (never log it)."""
        return self._key

    def value(self, normalized: str) -> int:
        """HMAC-SHA256 of ``normalized`` (UTF-8), first ``bits`` bits, as 0 <= v < 2^bits.

        ``normalized`` must already be normalised (see the ``normalize_*``
        functions): the index compares bytes, not meanings.
        """
        inner = self._inner.copy()
        inner.update(normalized.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return int.from_bytes(outer.digest()[:8], "big") >> self._shift

    def values(self, inputs: Iterable[str | None]) -> list[int | None]:
        """:meth:`value` of each input (None stays None), for bulk writes."""
        ipad, opad, shift, from_bytes = self._inner, self._outer, self._shift, int.from_bytes
        out: list[int | None] = []
        append = out.append
        for text in inputs:
            if text is None:
                append(None)
                continue
            inner = ipad.copy()
            inner.update(text.encode())
            outer = opad.copy()
            outer.update(inner.digest())
            append(from_bytes(outer.digest()[:8], "big") >> shift)
        return out


def normalize_digits(value: str) -> str:
    """NFKC, then keep ASCII digits only.

    For phone numbers, individual numbers and 住民票コード, which people write
    with full-width digits, hyphens, spaces or brackets:
    "０９０-１２３４-５６７８" -> "09012345678".
    """
    if value.isascii():
        # ASCII is its own NFKC form; isdigit() on ASCII means 0-9 only.
        return value if value.isdigit() else value.translate(_DROP_ASCII_NON_DIGITS)
    return "".join(c for c in unicodedata.normalize("NFKC", value) if c in _ASCII_DIGITS)


def normalize_kana(value: str) -> str:
    """NFKC, hiragana to katakana, whitespace removed.

    NFKC turns half-width katakana into full-width ones and composes their
    separate (han)dakuten, so "ﾔﾏﾀﾞ", "ヤマダ" and "やまだ　" all become "ヤマダ".
    Small kana (ァ, ッ) and the long-vowel mark stay as written: they are
    part of the name. All whitespace goes, not only U+0020 and U+3000
    (which NFKC already maps to U+0020), because a tab or a line break in a
    name field is never meaningful either.

    A full-width voiced mark typed apart ("ウ゛", U+309B) is a space and a
    combining mark to NFKC, which therefore cannot compose it; once the space
    is gone it is composed ("ヴ"). Stored names never hold a combining mark
    (registration refuses one), so their index values do not change.
    """
    if not unicodedata.is_normalized("NFKC", value):  # a quick check, cheaper than normalize
        value = unicodedata.normalize("NFKC", value)
    return compose_marks("".join(value.translate(_HIRAGANA_TO_KATAKANA).split()))


def compose_marks(kana: str) -> str:
    """Compose combining (han)dakuten left beside their kana (see :func:`normalize_kana`)."""
    if "\u3099" in kana or "\u309a" in kana:
        return unicodedata.normalize("NFC", kana)
    return kana


def compound(*parts: str) -> str:
    """Join normalised parts into one index input, unambiguously.

    Each part is prefixed with its length in code points and a colon, so no
    two different tuples give the same string: ("ab", "c") -> "2:ab1:c" but
    ("a", "bc") -> "1:a2:bc".
    """
    if len(parts) == 1:  # one part at a time: a bulk import's, per column
        (part,) = parts
        return f"{len(part)}:{part}"
    return "".join([f"{len(p)}:{p}" for p in parts])
