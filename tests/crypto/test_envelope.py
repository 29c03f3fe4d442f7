"""Field envelopes: layout, binding to their place, key versions, tampering."""

from __future__ import annotations

import os
import struct
import threading

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared_gov.crypto.envelope import FORMAT_VERSION, DecryptError, FieldCipher, aad, aad_part
from shared_gov.crypto.keyring import TownKeys

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
CONTEXT = ("172065", "residents", "family_name", "0b8f7c9e-2f4e-4d8a-9d55-5b3a8c3f0a11")
VALUE = "山田".encode()


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher({1: K1}, 1)


# --- aad ---------------------------------------------------------------------------------


def test_aad_is_length_prefixed_utf8() -> None:
    assert aad() == b""
    assert aad("") == b"\x00\x00\x00\x00"
    assert aad("ab", "c") == b"\x00\x00\x00\x02ab\x00\x00\x00\x01c"
    assert aad("山") == b"\x00\x00\x00\x03" + "山".encode()


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("ab", "c"), ("a", "bc")),
        (("a", ""), ("a",)),
        (("", "a"), ("a",)),
        (("a\x00\x00\x00\x01b",), ("a", "b")),
    ],
)
def test_aad_is_unambiguous(left: tuple[str, ...], right: tuple[str, ...]) -> None:
    assert aad(*left) != aad(*right)


# --- layout --------------------------------------------------------------------------------


def test_blob_layout(cipher: FieldCipher) -> None:
    blob = cipher.encrypt(VALUE, CONTEXT)
    assert blob[0] == FORMAT_VERSION == 1
    assert struct.unpack(">I", blob[1:5]) == (1,)
    assert len(blob) == 1 + 4 + 12 + len(VALUE) + 16
    # Decryptable by any AES-GCM implementation from the documented layout,
    # with the key version bound into the associated data.
    plain = AESGCM(K1).decrypt(blob[5:17], blob[17:], aad(*CONTEXT, "1"))
    assert plain == VALUE


def test_key_version(cipher: FieldCipher) -> None:
    assert FieldCipher.key_version(cipher.encrypt(VALUE, CONTEXT)) == 1
    big = FieldCipher({2**32 - 1: K1}, 2**32 - 1)
    assert FieldCipher.key_version(big.encrypt(VALUE, CONTEXT)) == 2**32 - 1
    with pytest.raises(DecryptError):
        FieldCipher.key_version(b"\x01\x00\x00")
    with pytest.raises(DecryptError):
        FieldCipher.key_version(b"\x02" + bytes(40))


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [b"", b"x", VALUE, "東京都千代田区霞が関1-1".encode(), os.urandom(4096)]
)
def test_round_trip(cipher: FieldCipher, value: bytes) -> None:
    assert cipher.decrypt(cipher.encrypt(value, CONTEXT), CONTEXT) == value


def test_context_may_be_a_list(cipher: FieldCipher) -> None:
    blob = cipher.encrypt(VALUE, list(CONTEXT))
    assert cipher.decrypt(blob, CONTEXT) == VALUE


def test_same_plaintext_encrypts_differently(cipher: FieldCipher) -> None:
    blobs = {cipher.encrypt(VALUE, CONTEXT) for _ in range(50)}
    assert len(blobs) == 50
    assert len({b[5:17] for b in blobs}) == 50  # fresh nonces


def test_bytes_like_blobs_decrypt(cipher: FieldCipher) -> None:
    # asyncpg hands back bytes; other drivers may give memoryview/bytearray.
    blob = cipher.encrypt(VALUE, CONTEXT)
    assert cipher.decrypt(bytearray(blob), CONTEXT) == VALUE  # type: ignore[arg-type]
    assert cipher.decrypt(memoryview(blob), CONTEXT) == VALUE  # type: ignore[arg-type]


# --- binding to its place ------------------------------------------------------------------


@pytest.mark.parametrize(
    "moved",
    [
        ("172031", *CONTEXT[1:]),  # another town
        (CONTEXT[0], "resident_history", *CONTEXT[2:]),  # another table
        (CONTEXT[0], CONTEXT[1], "given_name", CONTEXT[3]),  # another column
        (*CONTEXT[:3], "0b8f7c9e-2f4e-4d8a-9d55-5b3a8c3f0a12"),  # another row
        CONTEXT[:3],  # a part missing
        (*CONTEXT, "extra"),  # a part added
        ("172065residents", "", *CONTEXT[2:]),  # parts re-split
    ],
)
def test_blob_moved_elsewhere_fails(cipher: FieldCipher, moved: tuple[str, ...]) -> None:
    blob = cipher.encrypt(VALUE, CONTEXT)
    with pytest.raises(DecryptError):
        cipher.decrypt(blob, moved)


def test_a_string_context_is_refused(cipher: FieldCipher) -> None:
    # A str is a Sequence[str]: binding per character would be a silent bug.
    with pytest.raises(TypeError):
        cipher.encrypt(VALUE, "172065")
    with pytest.raises(TypeError):
        cipher.decrypt(cipher.encrypt(VALUE, CONTEXT), "172065")


def test_every_tampered_byte_fails(cipher: FieldCipher) -> None:
    blob = cipher.encrypt(VALUE, CONTEXT)
    for i in range(len(blob)):
        for flip in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[i] ^= flip
            with pytest.raises(DecryptError):
                cipher.decrypt(bytes(tampered), CONTEXT)


def test_every_truncation_fails(cipher: FieldCipher) -> None:
    blob = cipher.encrypt(VALUE, CONTEXT)
    for n in range(len(blob)):
        with pytest.raises(DecryptError):
            cipher.decrypt(blob[:n], CONTEXT)
    with pytest.raises(DecryptError):
        cipher.decrypt(blob + b"\x00", CONTEXT)


def test_relabelled_key_version_fails() -> None:
    # Both versions held, same key bytes: only the AAD notices the relabel.
    cipher = FieldCipher({1: K1, 2: K1}, 1)
    blob = bytearray(cipher.encrypt(VALUE, CONTEXT))
    blob[1:5] = (2).to_bytes(4, "big")
    with pytest.raises(DecryptError):
        cipher.decrypt(bytes(blob), CONTEXT)


# --- key versions and rotation -------------------------------------------------------------


def test_unknown_key_version_fails(cipher: FieldCipher) -> None:
    other = FieldCipher({2: K2}, 2)
    with pytest.raises(DecryptError, match="no data key version 2"):
        cipher.decrypt(other.encrypt(VALUE, CONTEXT), CONTEXT)


def test_wrong_key_for_a_version_fails() -> None:
    blob = FieldCipher({1: K1}, 1).encrypt(VALUE, CONTEXT)
    with pytest.raises(DecryptError):
        FieldCipher({1: K2}, 1).decrypt(blob, CONTEXT)


def test_rotation_reads_both_versions() -> None:
    before = FieldCipher({1: K1}, 1)
    old = before.encrypt(VALUE, CONTEXT)
    during = FieldCipher({1: K1, 2: K2}, 2)
    new = during.encrypt(VALUE, CONTEXT)
    assert FieldCipher.key_version(new) == 2
    assert during.write_version == 2
    assert during.decrypt(old, CONTEXT) == VALUE
    assert during.decrypt(new, CONTEXT) == VALUE
    # Re-encryption moves a row to the write version.
    moved = during.encrypt(during.decrypt(old, CONTEXT), CONTEXT)
    after = FieldCipher({2: K2}, 2)
    assert after.decrypt(moved, CONTEXT) == VALUE
    with pytest.raises(DecryptError):
        after.decrypt(old, CONTEXT)


def test_unknown_format_fails(cipher: FieldCipher) -> None:
    blob = bytearray(cipher.encrypt(VALUE, CONTEXT))
    blob[0] = 2
    with pytest.raises(DecryptError, match="format"):
        cipher.decrypt(bytes(blob), CONTEXT)


# --- construction --------------------------------------------------------------------------


def test_construction_is_checked() -> None:
    with pytest.raises(ValueError, match="write version"):
        FieldCipher({1: K1}, 2)
    with pytest.raises(ValueError, match="not 32"):
        FieldCipher({1: K1[:16]}, 1)
    with pytest.raises(ValueError, match="4 bytes"):
        FieldCipher({2**32: K1}, 2**32)
    with pytest.raises(ValueError, match="4 bytes"):
        FieldCipher({-1: K1, 1: K1}, 1)


def test_errors_carry_no_plaintext_or_key() -> None:
    secret = "SECRET個人番号123456789012".encode()
    cipher = FieldCipher({1: K1}, 1)
    blob = cipher.encrypt(secret, CONTEXT)
    messages = []
    for bad in (blob[:-1] + bytes([blob[-1] ^ 1]), blob[:10], b"\x01" + bytes(40)):
        with pytest.raises(DecryptError) as caught:
            cipher.decrypt(bad, CONTEXT)
        messages.append(f"{caught.value!s} {caught.value!r}")
    with pytest.raises(DecryptError) as caught:
        cipher.decrypt(blob, ("172031", *CONTEXT[1:]))
    messages.append(f"{caught.value!s} {caught.value!r}")
    for text in messages:
        assert "SECRET" not in text
        assert K1.hex() not in text
        assert repr(K1)[2:-1] not in text
        assert blob.hex() not in text


# --- the cached context prefix ---------------------------------------------------------------


def test_changing_contexts_on_one_cipher(cipher: FieldCipher) -> None:
    # The cipher caches the encoding of all parts but the last: alternating
    # contexts must never reuse another context's bytes.
    contexts = [CONTEXT, ("172031", *CONTEXT[1:]), (*CONTEXT[:3], "other-row"), ("x",), ()]
    blobs = [cipher.encrypt(VALUE, c) for c in contexts]
    for _ in range(2):
        for c, blob in zip(contexts, blobs, strict=True):
            assert cipher.decrypt(blob, c) == VALUE
            assert AESGCM(K1).decrypt(blob[5:17], blob[17:], aad(*c, "1")) == VALUE
            for other in contexts:
                if other != c:
                    with pytest.raises(DecryptError):
                        cipher.decrypt(blob, other)


def test_threads_with_different_contexts(cipher: FieldCipher) -> None:
    failures: list[BaseException] = []

    def work(town: str) -> None:
        try:
            for i in range(2_000):
                context = (town, "residents", "phone", str(i))
                value = f"{town}/{i}".encode()
                assert cipher.decrypt(cipher.encrypt(value, context), context) == value
        except BaseException as exc:  # collected: a thread's failure is otherwise lost
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(town,)) for town in ("172065", "172031")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_decrypt_parts_is_decrypt_with_the_context_encoded(cipher: FieldCipher) -> None:
    ctx = ("172065", "residents", "family_name", "5f0c…row")
    blob = cipher.encrypt("山田".encode(), ctx)
    head, last = aad(*ctx[:-1]), aad_part(ctx[-1])
    assert head + last == aad(*ctx)
    assert cipher.decrypt_parts(blob, head, last) == "山田".encode()
    with pytest.raises(DecryptError):
        cipher.decrypt_parts(blob, head, aad_part("another row"))
    with pytest.raises(DecryptError):
        cipher.decrypt_parts(blob, aad("172031", "residents", "family_name"), last)


def test_a_towns_keys_never_decrypt_one_rows_field_under_another_rows_id() -> None:
    """TownKeys keeps the last row id's encoding: switching rows must not reuse it."""
    keys = TownKeys(
        tenant="172065",
        ciphers={"residents.address": FieldCipher({1: os.urandom(32)}, 1)},
        indexes={},
    )
    a = keys.encrypt("residents", "address", "row-a", "加賀市")
    b = keys.encrypt("residents", "address", "row-b", "小松市")
    assert keys.decrypt("residents", "address", "row-a", a) == "加賀市"
    assert keys.decrypt("residents", "address", "row-b", b) == "小松市"
    with pytest.raises(DecryptError):
        keys.decrypt("residents", "address", "row-b", a)
    with pytest.raises(DecryptError):
        keys.decrypt("residents", "address", "row-a", b)
    assert keys.decrypt("residents", "address", "row-a", a) == "加賀市"
