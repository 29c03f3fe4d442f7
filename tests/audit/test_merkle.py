"""RFC 6962 Merkle trees: roots, inclusion and consistency proofs, and their
verification (RFC 9162), against hand-computed trees, an independent
recursive reference, and the Certificate Transparency test vectors."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from shared_gov.audit import merkle
from shared_gov.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_path,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def H(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def L(i: int) -> bytes:
    """Leaf hash of the i-th test entry, written out: SHA-256(0x00 || entry)."""
    return H(b"\x00", f"event-{i}".encode())


def N(left: bytes, right: bytes) -> bytes:
    return H(b"\x01", left, right)


LEAVES = [L(i) for i in range(9)]

# --- an independent reference, straight from RFC 6962 §2.1 ----------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    if not d:
        return H(b"")
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return N(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


# --- hand-computed trees ----------------------------------------------------------------

l0, l1, l2, l3, l4, l5, l6, l7, l8 = LEAVES
HAND_ROOTS = {
    1: l0,
    2: N(l0, l1),
    3: N(N(l0, l1), l2),
    4: N(N(l0, l1), N(l2, l3)),
    5: N(N(N(l0, l1), N(l2, l3)), l4),
    6: N(N(N(l0, l1), N(l2, l3)), N(l4, l5)),
    7: N(N(N(l0, l1), N(l2, l3)), N(N(l4, l5), l6)),
    8: N(N(N(l0, l1), N(l2, l3)), N(N(l4, l5), N(l6, l7))),
    9: N(N(N(N(l0, l1), N(l2, l3)), N(N(l4, l5), N(l6, l7))), l8),
}


def test_hashes_have_the_rfc_6962_prefixes() -> None:
    assert leaf_hash(b"event-3") == l3
    assert node_hash(l0, l1) == H(b"\x01" + l0 + l1)
    assert root([]) == EMPTY_ROOT == H(b"")


@pytest.mark.parametrize("n", range(1, 10))
def test_roots_of_hand_computed_trees(n: int) -> None:
    assert root(LEAVES[:n]) == HAND_ROOTS[n] == ref_mth(LEAVES[:n])


def test_split_is_the_largest_power_of_two_below_n_not_the_midpoint() -> None:
    expected = {2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 8: 4, 9: 8, 1000: 512, 1025: 1024}
    assert {n: merkle.split_point(n) for n in expected} == expected
    # Six leaves: 4 + 2, not 3 + 3.
    assert root(LEAVES[:6]) != N(N(N(l0, l1), l2), N(N(l3, l4), l5))


def test_hand_computed_inclusion_paths() -> None:
    assert inclusion_path(LEAVES[:1], 0) == []
    assert inclusion_path(LEAVES[:7], 6) == [N(l4, l5), N(N(l0, l1), N(l2, l3))]
    assert inclusion_path(LEAVES[:7], 3) == [l2, N(l0, l1), N(N(l4, l5), l6)]
    assert inclusion_path(LEAVES[:9], 8) == [HAND_ROOTS[8]]
    assert inclusion_path(LEAVES[:9], 0) == [l1, N(l2, l3), N(N(l4, l5), N(l6, l7)), l8]


def test_hand_computed_consistency_proofs() -> None:
    # RFC 6962 §2.1.3's examples (tree of 7): 3 -> 7, 4 -> 7, 6 -> 7.
    d = LEAVES[:7]
    assert consistency_proof(d, 3) == [l2, l3, N(l0, l1), N(N(l4, l5), l6)]
    assert consistency_proof(d, 4) == [N(N(l4, l5), l6)]
    assert consistency_proof(d, 6) == [N(l4, l5), l6, N(N(l0, l1), N(l2, l3))]
    assert consistency_proof(d, 7) == []


@pytest.mark.parametrize("n", range(1, 10))
def test_every_inclusion_proof_verifies_and_matches_the_reference(n: int) -> None:
    tree = LEAVES[:n]
    head = root(tree)
    for m in range(n):
        path = inclusion_path(tree, m)
        assert path == ref_path(m, tree)
        assert verify_inclusion(tree[m], m, n, path, head)


@pytest.mark.parametrize("second", range(1, 10))
def test_every_consistency_proof_verifies_and_matches_the_reference(second: int) -> None:
    tree = LEAVES[:second]
    for first in range(1, second + 1):
        proof = consistency_proof(tree, first)
        assert proof == (ref_subproof(first, tree, True) if first < second else [])
        assert verify_consistency(first, second, root(tree[:first]), root(tree), proof)


def _tampered(proof: list[bytes]) -> list[list[bytes]]:
    """Every way we mangle a proof: flip a bit in each element, drop, add, swap, reverse."""
    out = []
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 1]) + proof[i][1:]
        out.append(flipped)
    if proof:
        out.append(proof[:-1])
        out.append(proof[1:])
    out.append([*proof, L(99)])
    out.append([L(99), *proof])
    if len(proof) > 1 and proof[0] != proof[1]:
        out.append([proof[1], proof[0], *proof[2:]])
        out.append(list(reversed(proof)))
    return out


@pytest.mark.parametrize("n", range(1, 10))
def test_tampered_inclusion_proofs_fail(n: int) -> None:
    tree = LEAVES[:n]
    head = root(tree)
    for m in range(n):
        path = inclusion_path(tree, m)
        for bad in _tampered(path):
            assert not verify_inclusion(tree[m], m, n, bad, head)
        # The right path, but the wrong leaf, index, size or root.
        assert not verify_inclusion(L(99), m, n, path, head)
        assert not verify_inclusion(tree[m], m, n, path, L(99))
        for other in range(n + 1):
            if other != m and tree[other % n] != tree[m]:
                assert not verify_inclusion(tree[m], other, n, path, head)
        # (A path of the same shape can fit another size: the size is bound by
        # the signed checkpoint, not by the path. Sizes it cannot fit fail.)
        assert not verify_inclusion(tree[m], m, m, path, head)
        assert not verify_inclusion(tree[m], m, 2 * n + 2, path, head)
        assert not verify_inclusion(tree[m], -1, n, path, head)
        assert not verify_inclusion(tree[m][:31], m, n, path, head)


@pytest.mark.parametrize("second", range(2, 10))
def test_tampered_consistency_proofs_fail(second: int) -> None:
    tree = LEAVES[:second]
    head = root(tree)
    for first in range(1, second):
        proof = consistency_proof(tree, first)
        old = root(tree[:first])
        for bad in _tampered(proof):
            assert not verify_consistency(first, second, old, head, bad)
        assert not verify_consistency(first, second, L(99), head, proof)
        assert not verify_consistency(first, second, old, L(99), proof)
        assert not verify_consistency(first, second, old, head, [])
        assert not verify_consistency(second, first, head, old, proof)
        # A forked log: the same size but one leaf rewritten.
        forked = [*tree[: first - 1], L(98), *tree[first:]]
        assert not verify_consistency(first, second, old, root(forked), proof)


def test_consistency_degenerate_cases() -> None:
    head = root(LEAVES[:4])
    assert verify_consistency(4, 4, head, head, [])
    assert not verify_consistency(4, 4, head, root(LEAVES[:5]), [])
    assert not verify_consistency(4, 4, head, head, [head])
    assert verify_consistency(0, 4, EMPTY_ROOT, head, [])
    assert not verify_consistency(0, 4, l0, head, [])


# --- Certificate Transparency's published vectors (RFC 6962 reference data) ------------

CT_ENTRIES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_LEAVES = [leaf_hash(bytes.fromhex(e)) for e in CT_ENTRIES]


def test_certificate_transparency_roots() -> None:
    for n in range(1, 9):
        assert root(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]


def test_certificate_transparency_proofs() -> None:
    assert [p.hex() for p in inclusion_path(CT_LEAVES, 0)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [p.hex() for p in inclusion_path(CT_LEAVES, 5)] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [p.hex() for p in consistency_proof(CT_LEAVES, 2)] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [p.hex() for p in consistency_proof(CT_LEAVES, 6)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]


# --- growing a tree ------------------------------------------------------------------


def test_compact_range_grows_like_the_definition_and_records_complete_subtrees() -> None:
    leaves = [L(i) for i in range(70)]
    tree = CompactRange()
    nodes: list[tuple[int, int, bytes]] = []
    for i, leaf in enumerate(leaves):
        tree.append_recording(leaf, nodes)
        assert tree.size == i + 1
        assert tree.root() == ref_mth(leaves[: i + 1])
    # Every complete subtree of level >= 1, exactly once, with its hash.
    expected = {
        (level, index): ref_mth(leaves[index << level : (index + 1) << level])
        for level in range(1, 7)
        for index in range(70 >> level)
    }
    assert {(lv, i): h for lv, i, h in nodes} == expected
    assert len(nodes) == len(expected)
    # Resuming from the stored edge gives the same tree.
    resumed = CompactRange(tree.size, tree.hashes)
    resumed.append(L(70))
    tree.append(L(70))
    assert resumed.root() == tree.root() == ref_mth([*leaves, L(70)])
    assert [(s, n) for s, n, _ in tree.subtrees()] == [(0, 64), (64, 4), (68, 2), (70, 1)]


def test_stored_ranges_fold_to_the_proofs() -> None:
    """What the database serves (folds of complete subtrees) equals PATH and PROOF."""
    leaves = [L(i) for i in range(40)]

    def stored(start: int, end: int) -> bytes:
        return merkle.fold(
            [
                ref_mth(leaves[i << lv : (i + 1) << lv])
                for lv, i in merkle.perfect_subtrees(start, end)
            ]
        )

    for n in range(1, 41):
        for m in range(n):
            ranges = merkle.inclusion_ranges(m, n)
            assert [stored(a, b) for a, b in ranges] == ref_path(m, leaves[:n])
        for first in range(1, n):
            ranges = merkle.consistency_ranges(first, n)
            assert [stored(a, b) for a, b in ranges] == ref_subproof(first, leaves[:n], True)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_ranges(3, 3)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_ranges(4, 3)
    with pytest.raises(ValueError, match="subtrees"):
        CompactRange(3, [l0])
