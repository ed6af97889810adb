"""Offline verification of an exported audit log against signed checkpoints (DESIGN.md §6, issue 3 item 6).

Pure: no database, no settings, no network. Everything is recomputed from the export's bytes: each entry's
leaf hash (RFC 9162 §2.1.1), the Merkle root at every checkpoint size in one O(n) pass, each checkpoint's
Ed25519 signature (C2SP signed note) and the consistency of the checkpoints with each other.

Export format ``licence-hub-audit-export/1`` (JSON Lines, written by ``audit.export``)::

    {"format": "licence-hub-audit-export/1", "origin": "<log origin>", "tree_size": n}
    {"leaf_index": 0, "leaf_hash": "<base64>", "body": "<base64 of the stored RFC 8785 bytes>", "redacted": false}
    {"leaf_index": 1, "leaf_hash": "<base64>", "body": null, "redacted": true}
    ...

Failures raise ``AuditVerificationError`` with a stable ``reason`` code and, when one entry is at fault, its
``leaf_index``; a root mismatch cannot name one entry (the checkpoints sign roots, not leaves), so it names the
range ``leaf_range`` between the last checkpoint that matched and the first that did not.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, NoReturn

import rfc8785

from audit import merkle
from audit.entries import canonical
from audit.note import Checkpoint, NoteError, Verifier, open_checkpoint

EXPORT_FORMAT = "licence-hub-audit-export/1"
_LINE_KEYS = frozenset({"leaf_index", "leaf_hash", "body", "redacted"})

# Stable reason codes (AuditVerificationError.reason).
BAD_KEY = "bad_key"
BAD_HEADER = "bad_header"
BAD_LINE = "bad_line"
INDEX_GAP = "index_gap"
INDEX_ORDER = "index_order"
LEAF_HASH_MISMATCH = "leaf_hash_mismatch"
ENTRY_NOT_CANONICAL = "entry_not_canonical"
TRUNCATED = "truncated"
UNCOVERED = "uncovered"
NO_CHECKPOINT = "no_checkpoint"
CHECKPOINT_SIGNATURE = "checkpoint_signature"
ORIGIN_MISMATCH = "origin_mismatch"
ROOT_MISMATCH = "root_mismatch"
INCONSISTENT_CHECKPOINTS = "inconsistent_checkpoints"
CHECKPOINT_SHRINKS = "checkpoint_shrinks"
CONSISTENCY_PROOF = "consistency_proof"


class AuditVerificationError(ValueError):
    """The export or a checkpoint does not verify.

    ``reason`` is a stable code (the module constants); ``leaf_index`` names the first entry at fault when one
    does; ``leaf_range`` ([start, stop)) bounds it when only a root is known to differ; ``line`` is the 1-based
    line of the export where the problem was seen, when it was seen in the export.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        leaf_index: int | None = None,
        leaf_range: tuple[int, int] | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.leaf_index = leaf_index
        self.leaf_range = leaf_range
        self.line = line

    def to_json(self) -> dict[str, Any]:
        return {
            "verified": False,
            "reason": self.reason,
            "message": self.message,
            "leaf_index": self.leaf_index,
            "leaf_range": list(self.leaf_range) if self.leaf_range is not None else None,
            "line": self.line,
        }


@dataclass(frozen=True)
class VerifyReport:
    """What verified: the export's ``entries`` (``redacted`` of them without a body, taken on their leaf hash).

    ``tree_size`` is the size of the largest checkpoint, which covers every entry; ``root_hash`` its root.
    """

    tree_size: int
    entries: int
    redacted: int
    checkpoints_verified: int
    root_hash: bytes
    origin: str
    checkpoint_sizes: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "verified": True,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "entries": self.entries,
            "redacted": self.redacted,
            "checkpoints_verified": self.checkpoints_verified,
            "checkpoint_sizes": list(self.checkpoint_sizes),
            "root_hash": base64.b64encode(self.root_hash).decode("ascii"),
        }


# --------------------------------------------------------------------------- keys and checkpoints


def parse_verifier_key(verifier_key: str) -> Verifier:
    """The note verifier key ``<name>+<key ID>+<base64 key>`` (surrounding whitespace ignored)."""
    try:
        return Verifier.from_verifier_key(verifier_key.strip())
    except NoteError as exc:
        raise AuditVerificationError(BAD_KEY, f"verifier key: {exc}") from exc


def _open(signed: str, verifier: Verifier, what: str) -> Checkpoint:
    try:
        return open_checkpoint(signed, verifier)
    except NoteError as exc:
        raise AuditVerificationError(CHECKPOINT_SIGNATURE, f"{what} does not verify under the key: {exc}") from exc


def _same_origin(checkpoints: Sequence[Checkpoint], origin: str | None) -> str:
    expected = origin if origin is not None else checkpoints[0].origin
    for checkpoint in checkpoints:
        if checkpoint.origin != expected:
            raise AuditVerificationError(
                ORIGIN_MISMATCH,
                f"checkpoint of tree size {checkpoint.size} is for log {checkpoint.origin!r}, not {expected!r}",
            )
    return expected


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _fork(a: Checkpoint, b: Checkpoint) -> AuditVerificationError:
    return AuditVerificationError(
        INCONSISTENT_CHECKPOINTS,
        f"two signed checkpoints of log {a.origin!r} at tree size {a.size} have different roots "
        f"({_b64(a.root_hash)} and {_b64(b.root_hash)}): the log forked",
    )


def check_no_fork(checkpoints: Iterable[Checkpoint]) -> list[Checkpoint]:
    """The checkpoints sorted by size without duplicates; two of one size with different roots are a fork."""
    by_size: dict[int, Checkpoint] = {}
    for checkpoint in checkpoints:
        seen = by_size.setdefault(checkpoint.size, checkpoint)
        if seen.root_hash != checkpoint.root_hash:
            raise _fork(seen, checkpoint)
    return [by_size[size] for size in sorted(by_size)]


def verify_checkpoint_history(signed: Sequence[str], verifier_key: str) -> list[Checkpoint]:
    """Checkpoints in the order they were observed (oldest first), opened; a rollback or fork raises.

    Each must verify, be of the same log and never shrink; an equal size must have an equal root.

    Without the entries this catches a log that presents a shorter tree as newer (``checkpoint_shrinks``) or
    two trees of one size (``inconsistent_checkpoints``); different sizes need a consistency proof
    (``verify_consistency_pair``) or an export (``verify_export``).
    """
    verifier = parse_verifier_key(verifier_key)
    opened = [_open(text, verifier, f"checkpoint #{i + 1}") for i, text in enumerate(signed)]
    if not opened:
        raise AuditVerificationError(NO_CHECKPOINT, "no checkpoint was given")
    _same_origin(opened, None)
    for older, newer in pairwise(opened):
        if newer.size < older.size:
            raise AuditVerificationError(
                CHECKPOINT_SHRINKS,
                f"a newer checkpoint of log {newer.origin!r} has tree size {newer.size}, "
                f"smaller than the earlier {older.size}: the log was rolled back or forked",
            )
        if newer.size == older.size and newer.root_hash != older.root_hash:
            raise _fork(older, newer)
    return opened


def _proof_hash(value: str | bytes, position: int) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise AuditVerificationError(CONSISTENCY_PROOF, f"proof hash #{position} is not base64") from exc
    return raw


def verify_consistency_pair(
    older_signed: str, newer_signed: str, proof_hashes: Sequence[str | bytes], verifier_key: str
) -> tuple[Checkpoint, Checkpoint]:
    """Check that the older checkpoint's tree is a prefix of the newer one's (RFC 9162 §2.1.4.2).

    ``proof_hashes`` is the ``hashes`` of ``GET /v1/audit/proof/consistency?first=<older size>&second=<newer
    size>`` (base64 strings or raw bytes). Both checkpoints must verify under ``verifier_key``.
    """
    verifier = parse_verifier_key(verifier_key)
    older = _open(older_signed, verifier, "older checkpoint")
    newer = _open(newer_signed, verifier, "newer checkpoint")
    _same_origin([older, newer], None)
    if newer.size < older.size:
        raise AuditVerificationError(
            CHECKPOINT_SHRINKS,
            f"the newer checkpoint has tree size {newer.size}, smaller than the older {older.size}",
        )
    proof = [_proof_hash(value, i) for i, value in enumerate(proof_hashes)]
    if older.size == newer.size:
        if older.root_hash != newer.root_hash:
            raise _fork(older, newer)
        if proof:
            raise AuditVerificationError(CONSISTENCY_PROOF, "a proof between equal tree sizes must be empty")
        return older, newer
    if older.size == 0:  # the empty tree is a prefix of every tree; RFC 9162 has no proof for it
        if proof:
            raise AuditVerificationError(CONSISTENCY_PROOF, "a proof from the empty tree must be empty")
        return older, newer
    try:
        merkle.verify_consistency(older.size, newer.size, older.root_hash, newer.root_hash, proof)
    except merkle.ProofError as exc:
        raise AuditVerificationError(
            CONSISTENCY_PROOF,
            f"checkpoint of tree size {older.size} is not proven a prefix of tree size {newer.size}: {exc}",
        ) from exc
    return older, newer


# --------------------------------------------------------------------------- the export


class _RunningRoot:
    """MTH of a growing leaf sequence (RFC 9162 §2.1.1): O(log n) state, the root at any size in O(log n).

    The stack holds the maximal perfect subtrees so far, largest first, as ``merkle.root_from_leaves`` does.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []

    def push(self, leaf_hash: bytes) -> None:
        level, value = 0, leaf_hash
        while self._stack and self._stack[-1][0] == level:
            value = merkle.node_hash(self._stack.pop()[1], value)
            level += 1
        self._stack.append((level, value))

    def root(self) -> bytes:
        if not self._stack:
            return merkle.EMPTY_ROOT
        result = self._stack[-1][1]
        for _, value in reversed(self._stack[:-1]):
            result = merkle.node_hash(value, result)
        return result


class _Malformed(ValueError):
    """A line of the export that is not what the format says."""


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constants)


def _strict_b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _Malformed(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise _Malformed(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise _Malformed(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True)
class _Leaf:
    index: int
    leaf_hash: bytes
    body: bytes | None


def _parse_line(text: str) -> _Leaf:
    value = _loads(text)
    if not isinstance(value, dict):
        raise _Malformed("not a JSON object")
    if set(value) != _LINE_KEYS:
        raise _Malformed(f"members must be exactly {sorted(_LINE_KEYS)}")
    index = value["leaf_index"]
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise _Malformed("leaf_index is not a non-negative integer")
    leaf_hash = _strict_b64(value["leaf_hash"], "leaf_hash")
    if len(leaf_hash) != merkle.HASH_SIZE:
        raise _Malformed(f"leaf_hash is {len(leaf_hash)} bytes, not {merkle.HASH_SIZE}")
    redacted = value["redacted"]
    if not isinstance(redacted, bool):
        raise _Malformed("redacted is not a boolean")
    if redacted != (value["body"] is None):
        raise _Malformed("a redacted entry has a null body and only a redacted one does")
    body = None if redacted else _strict_b64(value["body"], "body")
    return _Leaf(index, leaf_hash, body)


def _lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers."""
    for number, text in enumerate(lines, 1):
        if text.strip():
            yield number, text


@dataclass(frozen=True)
class _Header:
    origin: str
    tree_size: int


def _parse_header(numbered: Iterator[tuple[int, str]]) -> _Header:
    first = next(numbered, None)
    if first is None:
        raise AuditVerificationError(BAD_HEADER, "the export is empty: it has no header line", line=1)
    number, text = first
    try:
        value = _loads(text)
    except ValueError as exc:
        raise AuditVerificationError(BAD_HEADER, f"line {number}: the header is not JSON: {exc}", line=number) from exc
    if not isinstance(value, dict) or value.get("format") != EXPORT_FORMAT:
        raise AuditVerificationError(
            BAD_HEADER, f"line {number}: not a {EXPORT_FORMAT} header (an audit export starts with one)", line=number
        )
    origin, size = value.get("origin"), value.get("tree_size")
    if not isinstance(origin, str) or not origin:
        raise AuditVerificationError(BAD_HEADER, f"line {number}: the header has no origin", line=number)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise AuditVerificationError(BAD_HEADER, f"line {number}: the header's tree_size is not valid", line=number)
    return _Header(origin, size)


def _misplaced(expected: int, found: int, number: int, rest: Iterator[tuple[int, str]]) -> AuditVerificationError:
    """Line ``number`` holds leaf ``found`` where ``expected`` belongs: tell a missing entry from a moved one."""
    if found < expected:
        return AuditVerificationError(
            INDEX_ORDER,
            f"line {number}: leaf index {found} appears again or out of order where {expected} belongs",
            leaf_index=expected,
            line=number,
        )
    for later_number, text in rest:  # failure path only: is the expected entry somewhere further down?
        try:
            later = _loads(text)
        except ValueError:
            continue
        if isinstance(later, dict) and later.get("leaf_index") == expected:
            return AuditVerificationError(
                INDEX_ORDER,
                f"line {number}: leaf index {found} appears where {expected} belongs "
                f"(leaf {expected} is on line {later_number}): entries are out of order",
                leaf_index=expected,
                line=number,
            )
    return AuditVerificationError(
        INDEX_GAP,
        f"line {number}: leaf index {expected} is missing (the export jumps to {found}): an entry was removed",
        leaf_index=expected,
        line=number,
    )


def _is_canonical(body: bytes) -> bool:
    """Whether ``body`` is a JSON object in its RFC 8785 form; ValueError when it is not a JSON object at all."""
    entry = _loads(body.decode("utf-8"))
    if not isinstance(entry, dict):
        raise _Malformed("not a JSON object")
    return canonical(entry) == body


def _check_body(leaf: _Leaf, number: int) -> None:
    body = leaf.body
    if body is None:
        return
    actual = merkle.leaf_hash(body)
    if actual != leaf.leaf_hash:
        raise AuditVerificationError(
            LEAF_HASH_MISMATCH,
            f"line {number}: entry {leaf.index} was altered: SHA-256(0x00 ‖ body) is {_b64(actual)}, "
            f"its leaf hash says {_b64(leaf.leaf_hash)}",
            leaf_index=leaf.index,
            line=number,
        )
    try:
        canonical_ok = _is_canonical(body)
    except (ValueError, rfc8785.CanonicalizationError) as exc:
        raise AuditVerificationError(
            ENTRY_NOT_CANONICAL,
            f"line {number}: entry {leaf.index} is not a canonical JSON object: {exc}",
            leaf_index=leaf.index,
            line=number,
        ) from exc
    if not canonical_ok:
        raise AuditVerificationError(
            ENTRY_NOT_CANONICAL,
            f"line {number}: entry {leaf.index} is not in RFC 8785 canonical form",
            leaf_index=leaf.index,
            line=number,
        )


class _Roots:
    """The checkpoints to meet, in size order, and the running root that meets them as leaves arrive."""

    def __init__(self, ordered: list[Checkpoint]) -> None:
        self.running = _RunningRoot()
        self.pending = list(reversed(ordered))  # smallest last: pop() is the next size to reach
        self.matched: list[Checkpoint] = []
        self.first_bad: tuple[Checkpoint, bytes] | None = None

    def reached(self, size: int) -> None:
        """Compare the root of the first ``size`` leaves with every checkpoint of that size."""
        while self.pending and self.pending[-1].size == size:
            checkpoint = self.pending.pop()
            root = self.running.root()
            if root == checkpoint.root_hash:
                self.matched.append(checkpoint)
            elif self.first_bad is None:
                self.first_bad = (checkpoint, root)

    def error(self) -> AuditVerificationError | None:
        return None if self.first_bad is None else _root_error(*self.first_bad, self.matched)


def verify_export(lines: Iterable[str], checkpoints: Sequence[str], verifier_key: str) -> VerifyReport:
    """Verify an export against one or more signed checkpoints (any order), in one streaming pass.

    Every checkpoint must verify under ``verifier_key`` and name the export's origin; the root recomputed from
    the export's leaf hashes must equal each checkpoint's root at its size; the largest checkpoint must cover
    the whole export. Entries with a body must hash to their leaf hash and be canonical JSON; redacted ones
    are taken on their leaf hash (which the roots still check). The first problem in log order is reported.
    """
    verifier = parse_verifier_key(verifier_key)
    if not checkpoints:
        raise AuditVerificationError(NO_CHECKPOINT, "no checkpoint was given: nothing to verify the export against")
    opened = [_open(text, verifier, f"checkpoint #{i + 1}") for i, text in enumerate(checkpoints)]
    numbered = _lines(lines)
    header = _parse_header(numbered)
    _same_origin(opened, header.origin)
    ordered = check_no_fork(opened)
    roots = _Roots(ordered)
    roots.reached(0)
    count = redacted = 0
    for number, text in numbered:
        try:
            leaf = _read_leaf(number, text, count, header, numbered)
        except AuditVerificationError as exc:
            earlier = roots.error()  # a root that already failed to match points at an earlier entry
            if earlier is not None:
                raise earlier from exc
            raise
        if leaf.body is None:
            redacted += 1
        roots.running.push(leaf.leaf_hash)
        count += 1
        roots.reached(count)
        if roots.first_bad is not None and not roots.pending:
            break  # nothing left to compare against: report the mismatch without reading the rest
    error = roots.error()
    if error is not None:
        raise error
    largest = ordered[-1]
    _check_coverage(count, header, largest)
    return VerifyReport(
        tree_size=count,
        entries=count,
        redacted=redacted,
        checkpoints_verified=len(ordered),
        root_hash=largest.root_hash,
        origin=header.origin,
        checkpoint_sizes=tuple(c.size for c in ordered),
    )


def _check_coverage(count: int, header: _Header, largest: Checkpoint) -> None:
    """The export must hold what its header says, and the largest checkpoint must cover exactly that."""
    if count < header.tree_size:
        raise AuditVerificationError(
            TRUNCATED,
            f"the export ends after {count} entries but its header says {header.tree_size}: "
            f"entries from {count} on are missing",
            leaf_index=count,
        )
    if largest.size > count:
        raise AuditVerificationError(
            TRUNCATED,
            f"the export holds {count} entries but a checkpoint covers {largest.size}: "
            f"entries from {count} on are missing",
            leaf_index=count,
        )
    if largest.size < count:
        raise AuditVerificationError(
            UNCOVERED,
            f"entries {largest.size}..{count - 1} are not covered by any checkpoint given: "
            f"pass the checkpoint of tree size {count} (GET /v1/audit/checkpoint?tree_size={count})",
            leaf_index=largest.size,
            leaf_range=(largest.size, count),
        )


def _read_leaf(number: int, text: str, position: int, header: _Header, rest: Iterator[tuple[int, str]]) -> _Leaf:
    """Line ``number``, which should hold entry ``position``: parsed, in place and intact."""
    try:
        leaf = _parse_line(text)
    except ValueError as exc:
        raise AuditVerificationError(
            BAD_LINE, f"line {number} (entry {position}): {exc}", leaf_index=position, line=number
        ) from exc
    if leaf.index != position:
        raise _misplaced(position, leaf.index, number, rest)
    if position >= header.tree_size:
        raise AuditVerificationError(
            BAD_LINE,
            f"line {number}: entry {position} is beyond the header's tree size {header.tree_size}",
            leaf_index=position,
            line=number,
        )
    _check_body(leaf, number)
    return leaf


def _root_error(bad: Checkpoint, computed: bytes, matched: list[Checkpoint]) -> AuditVerificationError:
    before = max((c.size for c in matched if c.size < bad.size), default=0)
    later = [c.size for c in matched if c.size > bad.size]
    if later:
        # The export agrees with a larger signed tree, which contains this prefix: the signed checkpoints
        # themselves contradict each other.
        return AuditVerificationError(
            INCONSISTENT_CHECKPOINTS,
            f"the signed checkpoint of tree size {bad.size} is not a prefix of the signed checkpoint of tree size "
            f"{later[0]}, which the export matches: the log forked between entries {before} and {bad.size - 1}",
            leaf_range=(before, bad.size),
        )
    known_good = f" (entries 0..{before - 1} match the checkpoint of tree size {before})" if before else ""
    return AuditVerificationError(
        ROOT_MISMATCH,
        f"the root of entries 0..{bad.size - 1} is {_b64(computed)}, but the signed checkpoint of tree size "
        f"{bad.size} says {_b64(bad.root_hash)}: an entry in {before}..{bad.size - 1} was altered, inserted, "
        f"removed or reordered{known_good}",
        leaf_range=(before, bad.size),
    )
