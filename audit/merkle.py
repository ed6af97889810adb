"""RFC 9162 §2.1 (RFC 6962 §2.1) Merkle tree hashes, proofs and their verification over stored perfect subtrees."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

Coord = tuple[int, int]
"""(level, index) of the perfect subtree over leaves [index·2^level, (index+1)·2^level); level 0 is a leaf hash."""

SubtreeHashes = Callable[[list[Coord]], Mapping[Coord, bytes]]
"""Batch accessor: the stored hashes of the given perfect subtrees (one round trip for all of them)."""

Range = tuple[int, int]
HASH_SIZE = 32

# RFC 9162 §2.1.1: "The hash of an empty list is the hash of an empty string": MTH({}) = SHA-256().
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A Merkle inclusion or consistency proof failed verification."""


def leaf_hash(data: bytes) -> bytes:
    # RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0)).
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    # RFC 9162 §2.1.1: MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])).
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """RFC 9162 §2.1.1: k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _pieces(lo: int, hi: int) -> list[Coord]:
    """The maximal perfect subtrees of D[lo:hi], largest (leftmost) first.

    Every range the RFC 9162 §2.1 recursion produces starts at a multiple of the next power of two ≥ its length,
    so its pieces, sized by the binary digits of hi - lo, are aligned perfect subtrees. Splitting off the largest
    piece is exactly the "largest power of two smaller than n" split of §2.1.1 (or the whole range, when the length
    is a power of two), so folding the pieces from the right gives MTH(D[lo:hi]).
    """
    out: list[Coord] = []
    n = hi - lo
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            out.append((level, lo >> level))
            lo += 1 << level
    return out


def _fold(pieces: list[Coord], hashes: Mapping[Coord, bytes]) -> bytes:
    def get(coord: Coord) -> bytes:
        try:
            return hashes[coord]
        except KeyError:
            raise LookupError(f"subtree hash accessor did not return (level, index) {coord}") from None

    result = get(pieces[-1])
    for coord in reversed(pieces[:-1]):
        result = node_hash(get(coord), result)
    return result


def _plan(ranges: list[Range]) -> list[Coord]:
    return [coord for lo, hi in ranges for coord in _pieces(lo, hi)]


def _hash_ranges(ranges: list[Range], fetch: SubtreeHashes) -> list[bytes]:
    """MTH of each range, from one call of the accessor (none when there is nothing to fetch)."""
    plan = _plan(ranges)
    if not plan:
        return []
    hashes = fetch(plan)
    return [_fold(_pieces(lo, hi), hashes) for lo, hi in ranges]


def _inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose MTH form PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:  # PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
            ranges.append((lo + k, hi))
            hi = lo + k
        else:  # PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def _consistency_ranges(first: int, second: int) -> list[Range]:
    """The leaf ranges whose MTH form PROOF(first, D[second]) (RFC 9162 §2.1.4.1), in proof order."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from tree size {first} to {second} (need 0 < first <= second)")
    ranges: list[Range] = []
    lo, hi, whole = 0, second, True  # `whole` is SUBPROOF's flag b: D[lo:first] is the whole old tree
    while first < hi:
        k = _split(hi - lo)
        if first - lo <= k:  # SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            ranges.append((lo + k, hi))
            hi = lo + k
        else:  # SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            ranges.append((lo, lo + k))
            lo += k
            whole = False
    if not whole and lo < hi:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}; SUBPROOF(m, D[m], true) = {}
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def root_plan(size: int) -> list[Coord]:
    """Coordinates root() fetches for a tree of `size` leaves."""
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    return _pieces(0, size)


def inclusion_plan(index: int, size: int) -> list[Coord]:
    """Coordinates inclusion_proof() fetches."""
    return _plan(_inclusion_ranges(index, size))


def consistency_plan(first: int, second: int) -> list[Coord]:
    """Coordinates consistency_proof() fetches."""
    return _plan(_consistency_ranges(first, second))


def root(size: int, fetch: SubtreeHashes) -> bytes:
    """MTH(D[size]) (RFC 9162 §2.1.1) from at most one call of `fetch`."""
    plan = root_plan(size)
    return _fold(plan, fetch(plan)) if plan else EMPTY_ROOT


def inclusion_proof(index: int, size: int, fetch: SubtreeHashes) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf to root, from at most one call of `fetch`."""
    return _hash_ranges(_inclusion_ranges(index, size), fetch)


def consistency_proof(first: int, second: int, fetch: SubtreeHashes) -> list[bytes]:
    """PROOF(first, D[second]) (RFC 9162 §2.1.4.1) for 0 < first <= second, from at most one call of `fetch`."""
    return _hash_ranges(_consistency_ranges(first, second), fetch)


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not a {HASH_SIZE}-byte SHA-256 hash")


def _check_proof(proof: Sequence[bytes]) -> None:
    for i, value in enumerate(proof):
        _check_hash(f"proof hash #{i}", value)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2); raises ProofError unless it proves the leaf at `index`."""
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root hash", root)
    _check_proof(proof)
    # Step 1: the leaf index must lie inside the tree.
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    # Steps 2-4.
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof has too many hashes ({len(proof)}) for leaf {index} of tree size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    if sn != 0:
        raise ProofError(f"inclusion proof has too few hashes ({len(proof)}) for leaf {index} of tree size {size}")
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root hash of tree size {size}")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2); raises ProofError unless tree `first` is a prefix of `second`."""
    _check_hash("first root hash", first_root)
    _check_hash("second root hash", second_root)
    _check_proof(proof)
    if first <= 0:
        # RFC 9162 §2.1.4: proofs exist only for 0 < m <= n; the empty tree is trivially a prefix but has no proof.
        raise ProofError(f"no consistency proof exists from tree size {first}")
    if first > second:
        raise ProofError(f"tree size {first} cannot be a prefix of the smaller tree size {second}")
    if first == second:
        if proof:
            raise ProofError(f"consistency proof between equal tree sizes ({first}) must be empty")
        if first_root != second_root:
            raise ProofError(f"root hashes differ for the same tree size {first}")
        return
    # Step 1.
    if not proof:
        raise ProofError(f"empty consistency proof from tree size {first} to {second}")
    # Step 2: if first is an exact power of two, the proof omits the old root; put it in front.
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    fr, sr = _consistency_roots(first, second, path)
    # Step 7 (the final sn == 0 check is in _consistency_roots).
    if fr != first_root:
        raise ProofError(f"consistency proof does not lead to the root hash of tree size {first}")
    if sr != second_root:
        raise ProofError(f"consistency proof does not lead to the root hash of tree size {second}")


def _consistency_roots(first: int, second: int, path: list[bytes]) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 3-7: the old and new roots `path` leads to; ProofError if its length is wrong."""
    count = f"consistency proof from tree size {first} to {second} has too {{}} hashes"
    # Steps 3-5.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofError(count.format("many"))
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # Step 7: every level must be consumed.
    if sn != 0:
        raise ProofError(count.format("few"))
    return fr, sr


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already leaf-hashed entries (RFC 9162 §2.1.1), iteratively in O(n) time and O(log n) memory."""
    # A stack of (level, hash) for the maximal perfect subtrees seen so far: merge equal neighbours as leaves
    # arrive, then fold right to left, as _pieces() does.
    stack: list[tuple[int, bytes]] = []
    for value in leaf_hashes:
        level, h = 0, value
        while stack and stack[-1][0] == level:
            h = node_hash(stack.pop()[1], h)
            level += 1
        stack.append((level, h))
    if not stack:
        return EMPTY_ROOT
    result = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        result = node_hash(h, result)
    return result


def new_perfect_nodes(old_size: int, new_size: int) -> list[Coord]:
    """Coordinates at level >= 1 completed by growing the tree from old_size to new_size, lowest level first."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"tree cannot grow from size {old_size} to {new_size}")
    # (level, i) is complete at size s exactly when (i + 1)·2^level <= s, i.e. i < s >> level.
    return [
        (level, i) for level in range(1, new_size.bit_length()) for i in range(old_size >> level, new_size >> level)
    ]


def compute_nodes(old_size: int, new_size: int, fetch: SubtreeHashes) -> dict[Coord, bytes]:
    """Hashes of new_perfect_nodes(old_size, new_size) from their children (RFC 9162 §2.1.1 node hash).

    Children that are leaves (level 0, including the new leaves, which the caller must already serve) or that were
    complete at old_size come from one call of `fetch`; children made in this call are reused.
    """
    nodes = new_perfect_nodes(old_size, new_size)

    def is_new(coord: Coord) -> bool:
        level, i = coord
        return level >= 1 and i >= old_size >> level

    children = [(level - 1, 2 * i + side) for level, i in nodes for side in (0, 1)]
    needed = [child for child in children if not is_new(child)]
    stored = fetch(needed) if needed else {}
    made: dict[Coord, bytes] = {}
    for level, i in nodes:
        left, right = (level - 1, 2 * i), (level - 1, 2 * i + 1)
        made[level, i] = node_hash(
            made[left] if is_new(left) else _fold([left], stored),
            made[right] if is_new(right) else _fold([right], stored),
        )
    return made
