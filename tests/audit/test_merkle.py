"""RFC 9162 §2.1 Merkle tree: batched accessors against a naive reference, published vectors, tamper detection."""

from __future__ import annotations

import hashlib
import itertools
import math

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.merkle import (
    EMPTY_ROOT,
    Coord,
    ProofError,
    compute_nodes,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    leaf_hash,
    new_perfect_nodes,
    node_hash,
    root,
    root_from_leaves,
    root_plan,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 300
PROPERTY = settings(max_examples=150, deadline=None)


# --- Naive reference, transcribed from RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 (independent of audit.merkle) ---


def ref_leaf(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def ref_k(n: int) -> int:
    """The largest power of two smaller than n, n > 1."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return ref_leaf(d[0])
    k = ref_k(n)
    return ref_node(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def entries(n: int, salt: bytes = b"") -> list[bytes]:
    return [salt + i.to_bytes(4, "big") for i in range(n)]


class Store:
    """Every perfect subtree hash of a tree, built bottom-up by the reference hashes; records each batch call."""

    def __init__(self, data: list[bytes]) -> None:
        self.hashes: dict[Coord, bytes] = {}
        self.calls: list[list[Coord]] = []
        row = [ref_leaf(d) for d in data]
        level = 0
        while row:
            self.hashes.update(((level, i), h) for i, h in enumerate(row))
            row = [ref_node(row[2 * i], row[2 * i + 1]) for i in range(len(row) // 2)]
            level += 1

    def __call__(self, coords: list[Coord]) -> dict[Coord, bytes]:
        self.calls.append(list(coords))
        return {c: self.hashes[c] for c in coords}  # KeyError: asked for a subtree that is not complete


def bound(n: int) -> int:
    """The brief's O(log n) ceiling on coordinates fetched for one proof or root."""
    return 2 * math.ceil(math.log2(n)) + 2 if n > 1 else 2


def flipped(value: bytes, position: int, mask: int = 0xFF) -> bytes:
    return value[:position] + bytes([value[position] ^ mask]) + value[position + 1 :]


# --- Published vectors: transparency-dev/merkle proof/verify_test.go and proof/proof_test.go (the RFC 6962 tree) ---

CT_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # size 0: SHA-256("")
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (0-based leaf index, tree size, proof); the Go file numbers leaves from 1.
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# Node IDs (level, index) of each proof element from proof_test.go; a group of several IDs is one element that the
# Go code "rehashes" from the ephemeral right edge, listed there smallest first (our plans list it largest first).
GO_INCLUSION_NODES: list[tuple[int, int, list[list[Coord]]]] = [
    (0, 1, []),
    (0, 2, [[(0, 1)]]),
    (1, 2, [[(0, 0)]]),
    (1, 3, [[(0, 0)], [(0, 2)]]),
    (0, 7, [[(0, 1)], [(1, 1)], [(0, 6), (1, 2)]]),
    (1, 7, [[(0, 0)], [(1, 1)], [(0, 6), (1, 2)]]),
    (2, 7, [[(0, 3)], [(1, 0)], [(0, 6), (1, 2)]]),
    (3, 7, [[(0, 2)], [(1, 0)], [(0, 6), (1, 2)]]),
    (4, 7, [[(0, 5)], [(0, 6)], [(2, 0)]]),
    (5, 7, [[(0, 4)], [(0, 6)], [(2, 0)]]),
    (6, 7, [[(1, 2)], [(2, 0)]]),
    (2, 4, [[(0, 3)], [(1, 0)]]),
    (3, 5, [[(0, 2)], [(1, 0)], [(0, 4)]]),
    (3, 6, [[(0, 2)], [(1, 0)], [(1, 2)]]),
    (4, 6, [[(0, 5)], [(2, 0)]]),
    (10, 15, [[(0, 11)], [(1, 4)], [(0, 14), (1, 6)], [(3, 0)]]),
    (24, 31, [[(0, 25)], [(1, 13)], [(0, 30), (1, 14)], [(3, 2)], [(4, 0)]]),
    (81, 95, [[(0, 80)], [(1, 41)], [(2, 21)], [(0, 94), (1, 46), (2, 22)], [(4, 4)], [(6, 0)]]),
]
GO_CONSISTENCY_NODES: list[tuple[int, int, list[list[Coord]]]] = [
    (1, 2, [[(0, 1)]]),
    (1, 4, [[(0, 1)], [(1, 1)]]),
    (1, 6, [[(0, 1)], [(1, 1)], [(1, 2)]]),
    (2, 3, [[(0, 2)]]),
    (2, 8, [[(1, 1)], [(2, 1)]]),
    (3, 7, [[(0, 2)], [(0, 3)], [(1, 0)], [(0, 6), (1, 2)]]),
    (4, 7, [[(0, 6), (1, 2)]]),
    (5, 7, [[(0, 4)], [(0, 5)], [(0, 6)], [(2, 0)]]),
    (6, 7, [[(1, 2)], [(0, 6)], [(2, 0)]]),
    (7, 8, [[(0, 6)], [(0, 7)], [(1, 2)], [(2, 0)]]),
    *((n, n, []) for n in (1, 2, 3, 4, 5, 7, 8)),
    (2, 4, [[(1, 1)]]),
    (3, 5, [[(0, 2)], [(0, 3)], [(1, 0)], [(0, 4)]]),
    (3, 6, [[(0, 2)], [(0, 3)], [(1, 0)], [(1, 2)]]),
    (4, 6, [[(1, 2)]]),
    (1, 7, [[(0, 1)], [(1, 1)], [(0, 6), (1, 2)]]),
    (10, 15, [[(1, 4)], [(1, 5)], [(0, 14), (1, 6)], [(3, 0)]]),
    (24, 31, [[(3, 2)], [(0, 30), (1, 14), (2, 6)], [(4, 0)]]),
    (81, 95, [[(0, 80)], [(0, 81)], [(1, 41)], [(2, 21)], [(0, 94), (1, 46), (2, 22)], [(4, 4)], [(6, 0)]]),
]


def go_plan(groups: list[list[Coord]]) -> list[Coord]:
    return [coord for group in groups for coord in reversed(group)]


def test_hash_primitives() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    assert issubclass(ProofError, ValueError)


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_ct_roots(size: int) -> None:
    store = Store(CT_LEAVES)
    expected = bytes.fromhex(CT_ROOTS[size])
    assert ref_mth(CT_LEAVES[:size]) == expected
    assert root(size, store) == expected
    assert root_from_leaves([leaf_hash(d) for d in CT_LEAVES[:size]]) == expected
    assert len(store.calls) == (1 if size else 0)


@pytest.mark.parametrize(("index", "size", "proof_hex"), CT_INCLUSION)
def test_ct_inclusion(index: int, size: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    assert ref_path(index, CT_LEAVES[:size]) == proof
    assert inclusion_proof(index, size, Store(CT_LEAVES)) == proof
    verify_inclusion(leaf_hash(CT_LEAVES[index]), index, size, proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("first", "second", "proof_hex"), CT_CONSISTENCY)
def test_ct_consistency(first: int, second: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    if first < second:
        assert ref_proof(first, CT_LEAVES[:second]) == proof
    assert consistency_proof(first, second, Store(CT_LEAVES)) == proof
    verify_consistency(first, second, bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second]), proof)


@pytest.mark.parametrize(("index", "size", "groups"), GO_INCLUSION_NODES)
def test_go_inclusion_nodes(index: int, size: int, groups: list[list[Coord]]) -> None:
    assert inclusion_plan(index, size) == go_plan(groups)
    assert len(inclusion_proof(index, size, Store(entries(size)))) == len(groups)


@pytest.mark.parametrize(("first", "second", "groups"), GO_CONSISTENCY_NODES)
def test_go_consistency_nodes(first: int, second: int, groups: list[list[Coord]]) -> None:
    assert consistency_plan(first, second) == go_plan(groups)
    assert len(consistency_proof(first, second, Store(entries(second)))) == len(groups)


# --- Properties against the reference ---

tree_data = st.builds(entries, st.integers(1, MAX_SIZE), st.binary(max_size=4))


def test_store_is_the_reference_tree() -> None:
    data = entries(37)
    store = Store(data)
    for (level, i), h in store.hashes.items():
        assert h == ref_mth(data[i << level : (i + 1) << level])


@PROPERTY
@given(st.integers(1, 200), st.integers(0, 6), st.binary(max_size=4))
def test_aligned_range_is_fold_of_its_binary_decomposition(n: int, slot: int, salt: bytes) -> None:
    # Ranges of the RFC recursion start at a multiple of the next power of two >= their length.
    lo = slot * (1 << (n - 1).bit_length())
    data = entries(lo + n, salt)
    pieces = merkle._pieces(lo, lo + n)
    assert [1 << level for level, _ in pieces] == [1 << b for b in reversed(range(n.bit_length())) if n >> b & 1]
    assert merkle._fold(pieces, Store(data).hashes) == ref_mth(data[lo:])


@PROPERTY
@given(tree_data, st.data())
def test_root_matches_reference(data: list[bytes], draw: st.DataObject) -> None:
    size = draw.draw(st.integers(0, len(data)))
    store = Store(data)
    expected = ref_mth(data[:size])
    assert root(size, store) == expected
    assert root_from_leaves([ref_leaf(d) for d in data[:size]]) == expected
    assert store.calls == ([root_plan(size)] if size else [])
    assert len(root_plan(size)) == size.bit_count() <= bound(max(size, 1))


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    """A tree's entries, a leaf index and a tree size no bigger than the stored tree."""
    data = draw(tree_data)
    size = draw(st.integers(1, len(data)))
    return data, draw(st.integers(0, size - 1)), size


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    """A tree's entries and two sizes 0 < first <= second no bigger than the stored tree."""
    data = draw(tree_data)
    second = draw(st.integers(1, len(data)))
    return data, draw(st.integers(1, second)), second


EDGES = [(entries(MAX_SIZE), MAX_SIZE - 1, MAX_SIZE), (entries(257), 256, 257), (entries(256), 255, 256)]
masks = st.integers(1, 255)


@PROPERTY
@given(inclusion_cases())
@example((entries(MAX_SIZE), 0, MAX_SIZE)).via("edge")
@example(EDGES[0]).via("edge")
@example(EDGES[1]).via("edge")
@example(EDGES[2]).via("edge")
def test_inclusion_matches_reference(case: tuple[list[bytes], int, int]) -> None:
    data, index, size = case
    store = Store(data)
    proof = inclusion_proof(index, size, store)
    assert proof == ref_path(index, data[:size])
    plan = inclusion_plan(index, size)
    assert store.calls == ([plan] if proof else [])
    assert len(plan) <= bound(size)
    verify_inclusion(ref_leaf(data[index]), index, size, proof, ref_mth(data[:size]))


@PROPERTY
@given(inclusion_cases(), masks)
@example(EDGES[0], 1).via("edge")
def test_inclusion_tampered_proof_fails(case: tuple[list[bytes], int, int], mask: int) -> None:
    data, index, size = case
    proof = ref_path(index, data[:size])
    leaf, tree_root = ref_leaf(data[index]), ref_mth(data[:size])
    for i, h in enumerate(proof):
        for position in range(len(h)):
            bad = [*proof[:i], flipped(h, position, mask), *proof[i + 1 :]]
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, bad, tree_root)
    for bad in ([*proof, tree_root], [tree_root, *proof], proof[:-1], proof[1:]):
        if bad != proof:
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, bad, tree_root)


@PROPERTY
@given(inclusion_cases(), masks, st.integers(0, 31), st.integers(1, MAX_SIZE))
def test_inclusion_wrong_claims_fail(
    case: tuple[list[bytes], int, int], mask: int, position: int, random_size: int
) -> None:
    data, index, size = case
    proof = ref_path(index, data[:size])
    leaf, tree_root = ref_leaf(data[index]), ref_mth(data[:size])
    for other in range(size):
        if other != index:
            with pytest.raises(ProofError):
                verify_inclusion(leaf, other, size, proof, tree_root)
    for other_size in {size - 1, size + 1, size * 2, size // 2, random_size} - {size}:
        # A wrong size with that size's genuine root. (With *this* root a different size may share the path
        # shape, e.g. leaf 0 of sizes 5 and 6: RFC 9162 §2.1.3.2 binds the proof to the root, not to the size.)
        if other_size > len(data):
            other_root = EMPTY_ROOT
        elif index < other_size and ref_path(index, data[:other_size]) == proof:
            continue
        else:
            other_root = ref_mth(data[:other_size])
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, other_size, proof, other_root)
    for bad_root in {flipped(tree_root, position, mask), EMPTY_ROOT, leaf} - {tree_root}:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof, bad_root)
    with pytest.raises(ProofError):
        verify_inclusion(flipped(leaf, position, mask), index, size, proof, tree_root)


@PROPERTY
@given(consistency_cases())
@example((entries(MAX_SIZE), 1, MAX_SIZE)).via("edge")
@example((entries(MAX_SIZE), 256, MAX_SIZE)).via("edge")
@example((entries(MAX_SIZE), MAX_SIZE - 1, MAX_SIZE)).via("edge")
@example((entries(257), 255, 257)).via("edge")
def test_consistency_matches_reference(case: tuple[list[bytes], int, int]) -> None:
    data, first, second = case
    store = Store(data)
    proof = consistency_proof(first, second, store)
    assert proof == (ref_proof(first, data[:second]) if first < second else [])
    plan = consistency_plan(first, second)
    assert store.calls == ([plan] if proof else [])
    assert len(plan) <= bound(second)
    verify_consistency(first, second, ref_mth(data[:first]), ref_mth(data[:second]), proof)


@PROPERTY
@given(consistency_cases(), masks)
@example((entries(MAX_SIZE), 129, MAX_SIZE), 1).via("edge")
def test_consistency_tampered_proof_fails(case: tuple[list[bytes], int, int], mask: int) -> None:
    data, first, second = case
    assume(first < second)
    proof = ref_proof(first, data[:second])
    root1, root2 = ref_mth(data[:first]), ref_mth(data[:second])
    for i, h in enumerate(proof):
        for position in range(len(h)):
            bad = [*proof[:i], flipped(h, position, mask), *proof[i + 1 :]]
            with pytest.raises(ProofError):
                verify_consistency(first, second, root1, root2, bad)
    for bad in ([], [*proof, root1], [*proof, root2], [root1, *proof], [root2, *proof], [proof[0], *proof], proof[:-1]):
        if bad != proof:
            with pytest.raises(ProofError):
                verify_consistency(first, second, root1, root2, bad)


@PROPERTY
@given(consistency_cases(), masks, st.integers(1, MAX_SIZE))
def test_consistency_wrong_claims_fail(case: tuple[list[bytes], int, int], mask: int, random_size: int) -> None:
    data, first, second = case
    assume(first < second)
    proof = ref_proof(first, data[:second])
    root1, root2 = ref_mth(data[:first]), ref_mth(data[:second])

    def genuine_root(size: int) -> bytes:
        return ref_mth(data[:size]) if 0 <= size <= len(data) else EMPTY_ROOT

    others = {first - 1, first + 1, first ^ 2, second - 1, second + 1, second * 2, second // 2, random_size}
    # Each wrong size, at either end, with that size's genuine root.
    for f, s in ({(other, second) for other in others} | {(first, other) for other in others}) - {(first, second)}:
        if 0 < f < s <= len(data) and ref_proof(f, data[:s]) == proof:
            continue
        with pytest.raises(ProofError):
            verify_consistency(f, s, genuine_root(f), genuine_root(s), proof)
    for r1, r2 in ((root2, root1), (flipped(root1, 0, mask), root2), (root1, flipped(root2, 31, mask))):
        with pytest.raises(ProofError):
            verify_consistency(first, second, r1, r2, proof)


@PROPERTY
@given(st.lists(st.integers(0, MAX_SIZE), min_size=3, max_size=3), st.binary(max_size=4))
def test_compute_nodes_over_growth(sizes: list[int], salt: bytes) -> None:
    steps = [0, *sorted(sizes)]
    data = entries(steps[-1], salt)
    reference = Store(data).hashes
    stored: dict[Coord, bytes] = {}  # what the integrator has persisted so far
    for old, new in itertools.pairwise(steps):
        stored.update({(0, i): ref_leaf(data[i]) for i in range(old, new)})  # new leaves first
        calls: list[list[Coord]] = []

        def fetch(coords: list[Coord], calls: list[list[Coord]] = calls) -> dict[Coord, bytes]:
            calls.append(coords)
            return {c: stored[c] for c in coords}  # KeyError: asked for something not persisted yet

        made = compute_nodes(old, new, fetch)
        expected = {(level, i) for (level, i) in reference if level >= 1 and old < (i + 1) << level <= new}
        assert list(made) == new_perfect_nodes(old, new)
        assert set(made) == expected
        assert all(made[c] == reference[c] for c in made)
        assert len(calls) == (1 if made else 0)
        if calls:
            assert len(calls[0]) == len(set(calls[0])) <= (new - old) + new.bit_length()
            assert not set(calls[0]) & set(made)
        stored.update(made)
    assert stored == {c: h for c, h in reference.items() if (c[1] + 1) << c[0] <= steps[-1]}


# --- Growth with tree size and the edge cases ---


def test_coordinates_grow_logarithmically() -> None:
    n = 5000
    data = entries(n)
    store = Store(data)
    widest: dict[int, int] = {}
    for size in (1, 2, 3, 7, 8, 100, 1023, 1024, 4095, 4096, n - 1, n):
        tree_root = root(size, store)
        assert tree_root == root_from_leaves([store.hashes[0, i] for i in range(size)])
        plans = [inclusion_plan(i, size) for i in range(size)]
        plans += [consistency_plan(f, size) for f in range(1, size + 1)]
        widest[size] = max(len(p) for p in plans)
        assert widest[size] <= bound(size)
    assert widest[n] <= 2 * 13 + 2 < n // 100
    store.calls.clear()
    tree_root = root(n, store)
    for i in range(0, n, 7):
        verify_inclusion(store.hashes[0, i], i, n, inclusion_proof(i, n, store), tree_root)
    for first in range(1, n, 11):
        verify_consistency(first, n, root(first, store), tree_root, consistency_proof(first, n, store))
    assert max(len(call) for call in store.calls) <= bound(n)


def test_single_leaf_and_equal_sizes() -> None:
    h = leaf_hash(b"data")
    verify_inclusion(h, 0, 1, [], h)
    with pytest.raises(ProofError):
        verify_inclusion(h, 0, 1, [], EMPTY_ROOT)
    verify_consistency(3, 3, h, h, [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(3, 3, h, h, [h])
    with pytest.raises(ProofError, match="differ"):
        verify_consistency(3, 3, h, EMPTY_ROOT, [])
    assert consistency_plan(5, 5) == []


@pytest.mark.parametrize(("first", "second"), [(0, 0), (0, 1), (0, 8), (-1, 4), (2, 1), (9, 8)])
def test_consistency_outside_the_rfc_domain(first: int, second: int) -> None:
    # RFC 9162 §2.1.4 defines PROOF(m, D[n]) only for 0 < m <= n; transparency-dev accepts m == 0 trivially.
    with pytest.raises(ProofError):
        verify_consistency(first, second, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ValueError, match="consistency proof"):
        consistency_plan(first, second)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (8, 7), (-1, 4)])
def test_inclusion_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ProofError, match="not in a tree"):
        verify_inclusion(EMPTY_ROOT, index, size, [], EMPTY_ROOT)
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_plan(index, size)


def test_malformed_hashes_are_proof_errors() -> None:
    store = Store(CT_LEAVES)
    proof = inclusion_proof(1, 8, store)
    tree_root, leaf = bytes.fromhex(CT_ROOTS[8]), leaf_hash(CT_LEAVES[1])
    for bad in ([*proof, b""], [b"", *proof], [proof[0][:31], *proof[1:]]):
        with pytest.raises(ProofError, match="not a 32-byte"):
            verify_inclusion(leaf, 1, 8, bad, tree_root)
    with pytest.raises(ProofError, match="root hash"):
        verify_inclusion(leaf, 1, 8, proof, b"WrongRoot")
    with pytest.raises(ProofError, match="leaf hash"):
        verify_inclusion(b"WrongLeaf", 1, 8, proof, tree_root)
    with pytest.raises(ProofError, match="first root"):
        verify_consistency(2, 8, b"x", tree_root, consistency_proof(2, 8, store))


def test_nothing_to_fetch_means_no_call() -> None:
    def refuse(coords: list[Coord]) -> dict[Coord, bytes]:
        raise AssertionError(coords)

    assert root(0, refuse) == EMPTY_ROOT
    assert root_plan(0) == []
    assert inclusion_proof(0, 1, refuse) == []
    assert consistency_proof(4, 4, refuse) == []
    assert compute_nodes(5, 5, refuse) == {}
    assert compute_nodes(0, 1, refuse) == {}


def test_incomplete_accessor_answer() -> None:
    with pytest.raises(LookupError, match=r"\(1, 0\)"):
        root(3, lambda _coords: {(0, 2): EMPTY_ROOT})


def test_new_perfect_nodes() -> None:
    assert new_perfect_nodes(0, 8) == [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (3, 0)]
    assert new_perfect_nodes(5, 8) == [(1, 2), (1, 3), (2, 1), (3, 0)]
    assert new_perfect_nodes(6, 7) == []
    assert new_perfect_nodes(0, 0) == []
    with pytest.raises(ValueError, match="cannot grow"):
        new_perfect_nodes(8, 5)
    with pytest.raises(ValueError, match="negative"):
        root_plan(-1)
