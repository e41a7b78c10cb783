"""RFC 6962 / RFC 9162 Merkle log: reference vectors, properties, O(log n) reads."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ProofInvalid
from core.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    consistency_ok,
    consistency_proof,
    inclusion_ok,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_completed_by_append,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# Reference data: the Certificate Transparency test leaves and the roots / proofs of
# transparency-dev/merkle, file proof/verify_test.go (vars `leaves`, `roots`,
# `inclusionProofs`, `consistencyProofs`; their leaf numbers are 1-based).
LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
H = bytes.fromhex
INCLUSION = [  # (0-based leaf index, tree size, proof)
    (
        0,
        8,
        [
            H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
CONSISTENCY = [  # (old size, new size, proof)
    (
        1,
        8,
        [
            H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]


@pytest.fixture(scope="module")
def ref_tree() -> MemoryTree:
    t = MemoryTree()
    for leaf in LEAVES:
        t.append_data(leaf)
    return t


def test_hashing_uses_the_rfc6962_prefixes() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == MemoryTree().root()


def test_reference_roots_for_every_prefix(ref_tree: MemoryTree) -> None:
    assert (
        ref_tree.root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )
    assert [ref_tree.root(n) for n in range(1, 9)] == ROOTS


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_reference_inclusion_proofs(
    ref_tree: MemoryTree, index: int, size: int, proof: list[bytes]
) -> None:
    assert ref_tree.inclusion_proof(index, size) == proof
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_reference_consistency_proofs(
    ref_tree: MemoryTree, old: int, new: int, proof: list[bytes]
) -> None:
    assert ref_tree.consistency_proof(old, new) == proof
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def test_trivial_and_invalid_requests(ref_tree: MemoryTree) -> None:
    assert ref_tree.inclusion_proof(0, 1) == []
    verify_inclusion(leaf_hash(LEAVES[0]), 0, 1, [], ROOTS[0])
    assert ref_tree.consistency_proof(0, 8) == [] == ref_tree.consistency_proof(8, 8)
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[7], [])
    verify_consistency(8, 8, ROOTS[7], ROOTS[7], [])
    for bad in [
        (0, 8, ROOTS[0], ROOTS[7], []),
        (8, 8, ROOTS[6], ROOTS[7], []),
        (3, 2, ROOTS[2], ROOTS[1], []),
        (2, 5, ROOTS[1], ROOTS[4], []),
    ]:
        with pytest.raises(ProofInvalid):
            verify_consistency(*bad)
    with pytest.raises(ProofInvalid, match="not in a tree"):
        verify_inclusion(leaf_hash(b""), 8, 8, [], ROOTS[7])
    with pytest.raises(ProofInvalid, match="32"):
        verify_inclusion(b"short", 0, 1, [], ROOTS[0])
    with pytest.raises(ValueError):
        inclusion_proof(ref_tree, 8, 8)
    with pytest.raises(ValueError):
        consistency_proof(ref_tree, 5, 4)


def _flip(b: bytes, bit: int) -> bytes:
    bit %= len(b) * 8
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


_BIG = MemoryTree()
for _i in range(300):
    _BIG.append_data(_i.to_bytes(4, "big"))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_inclusion_proof_verifies_and_any_bit_flip_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 256), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf = leaf_hash(index.to_bytes(4, "big"))
    proof, root = _BIG.inclusion_proof(index, size), _BIG.root(size)
    verify_inclusion(leaf, index, size, proof, root)

    bit = data.draw(st.integers(0, 255), label="bit")
    assert not inclusion_ok(_flip(leaf, bit), index, size, proof, root)
    assert not inclusion_ok(leaf, index, size, proof, _flip(root, bit))
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="node")
        assert not inclusion_ok(
            leaf, index, size, [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]], root
        )
    # A different size fails whenever its audit path has a different shape. (A bare
    # RFC 9162 proof does not bind the size by itself — index 0 has the same path in
    # trees of 5, 6 and 7 leaves; the signed checkpoint binds it, see test_verify.py.)
    other = size ^ (1 << data.draw(st.integers(0, 8), label="size bit"))
    if (
        other == 0
        or index >= other
        or len(_BIG.inclusion_proof(index, min(other, 300))) != len(proof)
    ):
        assert not inclusion_ok(leaf, index, other, proof, root)


def test_a_bare_inclusion_proof_does_not_bind_the_tree_size() -> None:
    """Documents the RFC 9162 property the checkpoint signature exists to cover."""
    assert inclusion_ok(leaf_hash(LEAVES[0]), 0, 7, _ref_proof(0, 5), ROOTS[4])


def _ref_proof(index: int, size: int) -> list[bytes]:
    t = MemoryTree()
    for leaf in LEAVES:
        t.append_data(leaf)
    return t.inclusion_proof(index, size)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_consistency_proof_verifies_and_any_bit_flip_fails(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, 256), label="new")
    old = data.draw(st.integers(1, new), label="old")
    proof = _BIG.consistency_proof(old, new)
    old_root, new_root = _BIG.root(old), _BIG.root(new)
    verify_consistency(old, new, old_root, new_root, proof)

    bit = data.draw(st.integers(0, 255), label="bit")
    assert not consistency_ok(old, new, _flip(old_root, bit), new_root, proof)
    assert not consistency_ok(old, new, old_root, _flip(new_root, bit), proof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="node")
        assert not consistency_ok(
            old, new, old_root, new_root, [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
        )
    sbit = 1 << data.draw(st.integers(0, 8), label="size bit")
    for o, n in [(old ^ sbit, new), (old, new ^ sbit)]:
        if not 0 < o <= n or len(_BIG.consistency_proof(o, min(n, 300))) != len(proof) or o == n:
            assert not consistency_ok(o, n, old_root, new_root, proof)


class CountingReader:
    """Answers any node with a made-up hash and counts the reads."""

    def __init__(self) -> None:
        self.reads = 0

    def node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return hashlib.sha256(f"{level}/{index}".encode()).digest()


@pytest.mark.parametrize("size", [1, 2, 3, 1000, 2**20 + 7, 2**40 - 1, 2**40 + 2**39 + 12345])
def test_operations_need_only_logarithmically_many_node_reads(size: int) -> None:
    log = max(1, (size - 1).bit_length())
    r = CountingReader()
    root_hash(r, size)
    assert r.reads <= log
    for index in {0, size // 3, size - 1}:
        r = CountingReader()
        inclusion_proof(r, index, size)
        assert r.reads <= 2 * log, (index, r.reads)
    for old in {1, size // 2 or 1, size - 1 or 1}:
        r = CountingReader()
        consistency_proof(r, old, size)
        assert r.reads <= 3 * log, (old, r.reads)
    r = CountingReader()
    nodes_completed_by_append(r, size, b"\x00" * 32)
    assert r.reads <= log


def test_append_stores_exactly_the_completed_aligned_subtrees() -> None:
    t = MemoryTree()
    for i in range(7):
        t.append_data(bytes([i]))
    completed = nodes_completed_by_append(t, 7, leaf_hash(b"\x07"))
    assert [(lvl, idx) for lvl, idx, _ in completed] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    t.append_data(b"\x07")
    assert completed[-1][2] == t.root() == t.node(3, 0)
    with pytest.raises(ValueError, match="leaf hash"):
        nodes_completed_by_append(t, 8, b"raw leaf data")
