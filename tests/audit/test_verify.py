"""Offline verification of an exported audit log: the good case, the tamper cases and the command line."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from factories import audit_event
from sqlalchemy import delete, insert, text

from audit import merkle, service, tree, verify
from audit.entries import AuditEvent, canonical, entry_leaf_hash
from audit.export import export_log
from audit.models import AuditNode
from audit.note import Checkpoint, Signer, sign_checkpoint
from audit.verify import AuditVerificationError, verify_checkpoint_history, verify_consistency_pair, verify_export
from hub.clock import utcnow
from hub.runtime import Runtime

SIZES = (10, 30, 50)
TAMPERED = 17
ROOT = Path(__file__).resolve().parents[2]


def event(**overrides: Any) -> AuditEvent:
    return audit_event(**{"extra": {"note": "临江市 · 电子证照"}, **overrides})


@dataclass
class Log:
    runtime: Runtime
    notes: dict[int, str]  # tree size -> signed checkpoint
    key: str

    def export(self, *, upto: int | None = None, chunk: int = 5_000) -> list[str]:
        out = io.StringIO()
        with self.runtime.session_scope() as session:
            export_log(session, out, upto=upto, chunk=chunk)
        return out.getvalue().splitlines(keepends=True)

    def checkpoint(self, size: int) -> Checkpoint:
        return verify.verify_checkpoint_history([self.notes[size]], self.key)[0]

    def sql(self, statement: str, **params: Any) -> None:
        with self.runtime.session_scope() as session:
            session.execute(text(statement), params)

    def row(self, index: int) -> tuple[bytes, bytes | None]:
        with self.runtime.session_scope() as session:
            leaf_hash, body = session.execute(
                text("SELECT leaf_hash, body FROM audit_entries WHERE leaf_index = :i"), {"i": index}
            ).one()
        return bytes(leaf_hash), None if body is None else bytes(body)


def verifier_key(runtime: Runtime) -> str:
    signer = runtime.audit_signer
    return Signer(signer.origin, signer.private_key).verifier_key()


def build_log(runtime: Runtime, *, old: int = 0) -> Log:
    """50 entries (the first ``old`` of them 11 years old), integrated after 10, 30 and 50."""
    with runtime.session_scope() as session:
        assert tree.integrated_size(session) == 0, "each test starts from an empty log"
    notes: dict[int, str] = {}
    done = 0
    for size in SIZES:
        with runtime.session_scope() as session:
            for index in range(done, size):
                moment = utcnow() - timedelta(days=4000) if index < old else utcnow()
                service.record(session, runtime.audit_signer, event(time=moment))
        with runtime.session_scope() as session:
            made = tree.integrate(session, runtime.audit_signer)
            assert made is not None
            assert made.tree_size == size
            notes[size] = made.signed_note
        done = size
    return Log(runtime, notes, verifier_key(runtime))


@pytest.fixture
def log(runtime: Runtime) -> Log:
    return build_log(runtime)


def fails(log: Log, lines: list[str], sizes: tuple[int, ...] = SIZES, *, reason: str) -> AuditVerificationError:
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [log.notes[s] for s in sizes], log.key)
    assert caught.value.reason == reason, caught.value.message
    return caught.value


def other_canonical_body(body: bytes) -> bytes:
    """The same entry, but denied: valid canonical JSON with a different meaning."""
    entry = json.loads(body)
    entry["outcome"] = "denied"
    return canonical(entry)


# --------------------------------------------------------------------------- pure: the running root


def test_running_root_equals_the_root_from_leaves_at_every_size() -> None:
    leaves = [entry_leaf_hash(secrets.token_bytes(8)) for _ in range(70)]
    running = verify._RunningRoot()
    assert running.root() == merkle.EMPTY_ROOT
    for size, leaf in enumerate(leaves, 1):
        running.push(leaf)
        assert running.root() == merkle.root_from_leaves(leaves[:size]), size


# --------------------------------------------------------------------------- the good case


def test_fifty_entries_with_three_checkpoints_export_and_verify(log: Log) -> None:
    lines = log.export()
    assert len(lines) == 51
    assert json.loads(lines[0]) == {
        "format": "licence-hub-audit-export/1",
        "origin": log.runtime.audit_signer.origin,
        "tree_size": 50,
    }
    line = json.loads(lines[1 + TAMPERED])
    leaf_hash, body = log.row(TAMPERED)
    assert line == {
        "leaf_index": TAMPERED,
        "leaf_hash": base64.b64encode(leaf_hash).decode(),
        "body": base64.b64encode(body or b"").decode(),
        "redacted": False,
    }
    assert base64.b64decode(line["body"]) == body  # the stored bytes, not a re-serialisation

    report = verify_export(lines, list(log.notes.values()), log.key)
    assert report.tree_size == 50
    assert report.entries == 50
    assert report.redacted == 0
    assert report.checkpoints_verified == 3
    assert report.checkpoint_sizes == SIZES
    assert report.root_hash == log.checkpoint(50).root_hash
    assert report.origin == log.runtime.audit_signer.origin
    assert report.to_json()["root_hash"] == base64.b64encode(report.root_hash).decode()

    # Any order, a single checkpoint, duplicates and a chunked export give the same answer.
    assert verify_export(lines, [log.notes[50], log.notes[10], log.notes[30]], log.key) == report
    assert verify_export(lines, [log.notes[50]], log.key).checkpoints_verified == 1
    assert verify_export(lines, [log.notes[50], log.notes[50]], log.key).checkpoints_verified == 1
    assert log.export(chunk=7) == lines
    assert verify_export([*lines, "\n"], [log.notes[50]], log.key).entries == 50  # a trailing blank line


def test_export_up_to_an_earlier_checkpoint(log: Log) -> None:
    lines = log.export(upto=30)
    assert len(lines) == 31
    report = verify_export(lines, [log.notes[10], log.notes[30]], log.key)
    assert (report.tree_size, report.checkpoints_verified) == (30, 2)
    error = fails(log, lines, (10, 30, 50), reason="truncated")
    assert error.leaf_index == 30
    with log.runtime.session_scope() as session, pytest.raises(ValueError, match="latest checkpoint"):
        export_log(session, io.StringIO(), upto=51)


def test_entries_beyond_every_checkpoint_given_are_not_vouched_for(log: Log) -> None:
    error = fails(log, log.export(), (10, 30), reason="uncovered")
    assert error.leaf_index == 30
    assert error.leaf_range == (30, 50)
    assert "tree_size=50" in error.message


# --------------------------------------------------------------------------- (a) an edited row


def test_an_edited_row_fails_its_leaf_hash_at_that_index(log: Log) -> None:
    _, body = log.row(TAMPERED)
    assert body is not None
    log.sql("UPDATE audit_entries SET body = :b WHERE leaf_index = :i", b=other_canonical_body(body), i=TAMPERED)
    error = fails(log, log.export(), reason="leaf_hash_mismatch")
    assert error.leaf_index == TAMPERED
    assert error.line == TAMPERED + 2  # after the header, 1-based
    assert f"entry {TAMPERED} was altered" in str(error)


def test_an_edit_with_a_recomputed_leaf_hash_fails_the_signed_roots_and_proofs(log: Log) -> None:
    old_hash, body = log.row(TAMPERED)
    assert body is not None
    forged = other_canonical_body(body)
    log.sql(
        "UPDATE audit_entries SET body = :b, leaf_hash = :h WHERE leaf_index = :i",
        b=forged,
        h=entry_leaf_hash(forged),
        i=TAMPERED,
    )
    lines = log.export()
    # Every entry is now self-consistent, so the signed roots are what catch it: checkpoint 10 still
    # matches, checkpoint 30 does not, which puts the change in entries 10..29.
    error = fails(log, lines, reason="root_mismatch")
    assert error.leaf_index is None
    assert error.leaf_range == (10, 30)
    assert error.leaf_range[0] <= TAMPERED < error.leaf_range[1]
    assert verify_export(log.export(upto=10), [log.notes[10]], log.key).tree_size == 10  # the prefix is intact
    cp10, cp30, cp50 = (log.checkpoint(size) for size in SIZES)

    with log.runtime.session_scope() as session:
        # The forged leaf has no inclusion proof in the signed tree.
        proof = tree.inclusion_proof(session, TAMPERED, 30)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(entry_leaf_hash(forged), TAMPERED, 30, proof, cp30.root_hash)
        merkle.verify_inclusion(old_hash, TAMPERED, 30, proof, cp30.root_hash)  # the stored nodes still remember
        # The insider goes further and rebuilds the stored tree from the edited leaves.
        session.execute(delete(AuditNode))
        nodes = merkle.compute_nodes(0, 50, tree.fetcher(session))
        session.execute(insert(AuditNode), [{"level": lv, "index": i, "hash": h} for (lv, i), h in nodes.items()])
    with log.runtime.session_scope() as session:
        assert tree.stored_root(session, 30) != cp30.root_hash
        fresh = {(a, b): tree.consistency_proof(session, a, b) for a, b in ((10, 30), (30, 50), (10, 50))}
    # Proofs computed fresh from the rebuilt tree cannot connect the old signed roots.
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(10, 30, cp10.root_hash, cp30.root_hash, fresh[10, 30])
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(30, 50, cp30.root_hash, cp50.root_hash, fresh[30, 50])
    with pytest.raises(AuditVerificationError) as caught:
        verify_consistency_pair(
            log.notes[10], log.notes[50], [base64.b64encode(h).decode() for h in fresh[10, 50]], log.key
        )
    assert caught.value.reason == "consistency_proof"
    assert isinstance(caught.value.__cause__, merkle.ProofError)


# --------------------------------------------------------------------------- (b) a deleted row


def test_a_deleted_row_is_a_gap_at_that_index(log: Log) -> None:
    log.sql("DELETE FROM audit_entries WHERE leaf_index = :i", i=TAMPERED)
    out = io.StringIO()
    with log.runtime.session_scope() as session:
        assert export_log(session, out) == 49  # the export shows the damage rather than hiding it
    error = fails(log, out.getvalue().splitlines(), reason="index_gap")
    assert error.leaf_index == TAMPERED
    assert f"leaf index {TAMPERED} is missing" in str(error)


# --------------------------------------------------------------------------- (c) reordered rows


def test_rows_swapped_in_the_database_fail_at_the_first_swapped_index(log: Log) -> None:
    other = 23
    (hash_a, body_a), (hash_b, body_b) = log.row(TAMPERED), log.row(other)
    # Bodies swapped, leaf hashes left in place: the leaf check names the first swapped index.
    log.sql("UPDATE audit_entries SET body = :b WHERE leaf_index = :i", b=body_b, i=TAMPERED)
    log.sql("UPDATE audit_entries SET body = :b WHERE leaf_index = :i", b=body_a, i=other)
    error = fails(log, log.export(), reason="leaf_hash_mismatch")
    assert error.leaf_index == TAMPERED
    # Bodies and leaf hashes swapped: each row is self-consistent, the root of 30 is not.
    log.sql("UPDATE audit_entries SET leaf_hash = :h WHERE leaf_index = :i", h=hash_b, i=TAMPERED)
    log.sql("UPDATE audit_entries SET leaf_hash = :h WHERE leaf_index = :i", h=hash_a, i=other)
    error = fails(log, log.export(), reason="root_mismatch")
    assert error.leaf_range == (10, 30)
    assert error.leaf_range[0] <= TAMPERED < error.leaf_range[1]


def test_lines_swapped_in_the_export_are_an_order_error_at_the_first_swapped_index(log: Log) -> None:
    lines = log.export()
    lines[1 + TAMPERED], lines[1 + 23] = lines[1 + 23], lines[1 + TAMPERED]
    error = fails(log, lines, reason="index_order")
    assert error.leaf_index == TAMPERED
    assert "out of order" in str(error)
    duplicated = log.export()
    duplicated[1 + TAMPERED] = duplicated[TAMPERED]  # entry 16 twice, 17 gone
    error = fails(log, duplicated, reason="index_order")
    assert error.leaf_index == TAMPERED


# --------------------------------------------------------------------------- (d) a forged signature


def test_a_checkpoint_signed_by_another_key_under_the_same_name_is_rejected(log: Log) -> None:
    origin = log.runtime.audit_signer.origin
    impostor = Signer(origin, Ed25519PrivateKey.generate())
    lines = log.export()
    for root in (log.checkpoint(50).root_hash, secrets.token_bytes(32)):
        forged = sign_checkpoint(Checkpoint(origin, 50, root), impostor)
        with pytest.raises(AuditVerificationError) as caught:
            verify_export(lines, [log.notes[10], forged], log.key)
        assert caught.value.reason == "checkpoint_signature"
        assert "checkpoint #2" in str(caught.value)
    with pytest.raises(AuditVerificationError) as caught:
        verify_checkpoint_history([forged], log.key)
    assert caught.value.reason == "checkpoint_signature"
    # A signature line edited by hand, and a note that is not a checkpoint at all.
    text_part, sig_part = log.notes[50].rsplit("\n\n", 1)
    flipped = sig_part[:-6] + ("A" if sig_part[-6] != "A" else "B") + sig_part[-5:]
    for bad in (f"{text_part}\n\n{flipped}", "not a checkpoint\n"):
        with pytest.raises(AuditVerificationError) as caught:
            verify_export(lines, [bad], log.key)
        assert caught.value.reason == "checkpoint_signature"
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [log.notes[50]], impostor.verifier_key())
    assert caught.value.reason == "checkpoint_signature"
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [log.notes[50]], "not-a-key")
    assert caught.value.reason == "bad_key"
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [], log.key)
    assert caught.value.reason == "no_checkpoint"


def test_origins_must_agree(log: Log) -> None:
    signer = log.runtime.audit_signer
    lines = log.export()
    header = json.loads(lines[0])
    renamed = [json.dumps({**header, "origin": "another-log.example/audit"}) + "\n", *lines[1:]]
    assert fails(log, renamed, reason="origin_mismatch")
    # Same key and key name, but a checkpoint for another log's origin line.
    foreign = sign_checkpoint(
        Checkpoint("another-log.example/audit", 50, log.checkpoint(50).root_hash),
        Signer(signer.origin, signer.private_key),
    )
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [log.notes[30], foreign], log.key)
    assert caught.value.reason == "origin_mismatch"


# --------------------------------------------------------------------------- (e) rollbacks and forks


def test_a_smaller_tree_presented_as_newer_and_a_fork_are_detected(log: Log) -> None:
    signer = log.runtime.audit_signer
    honest = Signer(signer.origin, signer.private_key)
    opened = verify_checkpoint_history([log.notes[10], log.notes[30], log.notes[30], log.notes[50]], log.key)
    assert [c.size for c in opened] == [10, 30, 30, 50]
    with pytest.raises(AuditVerificationError) as caught:
        verify_checkpoint_history([log.notes[10], log.notes[50], log.notes[30]], log.key)
    assert caught.value.reason == "checkpoint_shrinks"
    with pytest.raises(AuditVerificationError) as caught:
        verify_consistency_pair(log.notes[50], log.notes[30], [], log.key)
    assert caught.value.reason == "checkpoint_shrinks"

    # The log's own key signs a second tree of size 30: a split view.
    fork30 = sign_checkpoint(Checkpoint(signer.origin, 30, secrets.token_bytes(32)), honest)
    with pytest.raises(AuditVerificationError) as caught:
        verify_checkpoint_history([log.notes[30], fork30], log.key)
    assert caught.value.reason == "inconsistent_checkpoints"
    with pytest.raises(AuditVerificationError) as caught:
        verify_consistency_pair(log.notes[30], fork30, [], log.key)
    assert caught.value.reason == "inconsistent_checkpoints"
    lines = log.export()
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [fork30, log.notes[50], log.notes[30]], log.key)
    assert caught.value.reason == "inconsistent_checkpoints"

    # A signed tree of size 10 that is not a prefix of the signed tree of size 50 the export matches.
    fork10 = sign_checkpoint(Checkpoint(signer.origin, 10, secrets.token_bytes(32)), honest)
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [fork10, log.notes[50]], log.key)
    assert caught.value.reason == "inconsistent_checkpoints"
    assert caught.value.leaf_range == (0, 10)


def test_consistency_pair_with_the_logs_proof(log: Log) -> None:
    with log.runtime.session_scope() as session:
        proofs = {(a, b): tree.consistency_proof(session, a, b) for a, b in ((10, 30), (30, 50), (10, 50))}
    for (a, b), proof in proofs.items():
        as_api = [base64.b64encode(h).decode() for h in proof]  # the JSON of GET /v1/audit/proof/consistency
        older, newer = verify_consistency_pair(log.notes[a], log.notes[b], as_api, log.key)
        assert (older.size, newer.size) == (a, b)
        verify_consistency_pair(log.notes[a], log.notes[b], proof, log.key)
    verify_consistency_pair(log.notes[30], log.notes[30], [], log.key)
    with pytest.raises(AuditVerificationError) as caught:
        verify_consistency_pair(log.notes[10], log.notes[30], ["not base64!"], log.key)
    assert caught.value.reason == "consistency_proof"


# --------------------------------------------------------------------------- (f) proofs against the wrong root


def test_proofs_against_the_wrong_root_fail(log: Log) -> None:
    cp10, cp30, cp50 = (log.checkpoint(size) for size in SIZES)
    leaf_hash, _ = log.row(TAMPERED)
    with log.runtime.session_scope() as session:
        inclusion = tree.inclusion_proof(session, TAMPERED, 30)
        consistency = tree.consistency_proof(session, 10, 30)
    merkle.verify_inclusion(leaf_hash, TAMPERED, 30, inclusion, cp30.root_hash)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(leaf_hash, TAMPERED, 30, inclusion, cp50.root_hash)
    merkle.verify_consistency(10, 30, cp10.root_hash, cp30.root_hash, consistency)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(10, 30, cp10.root_hash, cp50.root_hash, consistency)
    # The (10, 30) proof presented for the checkpoints of 10 and 50.
    with pytest.raises(AuditVerificationError) as caught:
        verify_consistency_pair(log.notes[10], log.notes[50], consistency, log.key)
    assert caught.value.reason == "consistency_proof"
    assert isinstance(caught.value.__cause__, merkle.ProofError)


# --------------------------------------------------------------------------- (g) truncated or damaged exports


def test_a_truncated_export_fails(log: Log) -> None:
    lines = log.export()
    cut = [*lines[:-1], lines[-1][: len(lines[-1]) // 2]]
    error = fails(log, cut, reason="bad_line")
    assert (error.leaf_index, error.line) == (49, 51)
    error = fails(log, lines[:-5], reason="truncated")
    assert error.leaf_index == 45
    assert "45" in str(error)
    assert "50" in str(error)
    header = json.loads(lines[0])
    shortened = [json.dumps({**header, "tree_size": 45}) + "\n", *lines[1:-5]]
    error = fails(log, shortened, reason="truncated")  # the header agrees, the checkpoint of 50 does not
    assert error.leaf_index == 45
    error = fails(log, [lines[0], *lines[1:-5]], (10, 30), reason="truncated")
    assert error.leaf_index == 45
    error = fails(
        log, [lines[0], *lines[1:], lines[-1].replace('"leaf_index":49', '"leaf_index":50')], reason="bad_line"
    )
    assert error.leaf_index == 50


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([], "bad_header"),
        (["{not json\n"], "bad_header"),
        (['{"format": "something-else/1", "origin": "x", "tree_size": 0}\n'], "bad_header"),
        (['{"format": "licence-hub-audit-export/1", "tree_size": 0}\n'], "bad_header"),
        (['{"format": "licence-hub-audit-export/1", "origin": "x", "tree_size": -1}\n'], "bad_header"),
    ],
)
def test_a_missing_or_malformed_header_fails(lines: list[str], reason: str) -> None:
    signer = Signer("log.example/audit", Ed25519PrivateKey.generate())
    note = sign_checkpoint(Checkpoint("log.example/audit", 0, merkle.EMPTY_ROOT), signer)
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [note], signer.verifier_key())
    assert caught.value.reason == reason


# --------------------------------------------------------------------------- synthetic logs (no database)


def synthetic(bodies: list[bytes | None], hashes: list[bytes] | None = None) -> tuple[list[str], str, str]:
    """An export of ``bodies`` (None: redacted, needs ``hashes``), its checkpoint and the verifier key."""
    origin = "log.example/audit"
    signer = Signer(origin, Ed25519PrivateKey.generate())
    leaf_hashes = hashes or [entry_leaf_hash(b or b"") for b in bodies]
    lines = [json.dumps({"format": "licence-hub-audit-export/1", "origin": origin, "tree_size": len(bodies)}) + "\n"]
    for i, (body, leaf_hash) in enumerate(zip(bodies, leaf_hashes, strict=True)):
        line = {
            "leaf_index": i,
            "leaf_hash": base64.b64encode(leaf_hash).decode(),
            "body": None if body is None else base64.b64encode(body).decode(),
            "redacted": body is None,
        }
        lines.append(json.dumps(line) + "\n")
    note = sign_checkpoint(Checkpoint(origin, len(bodies), merkle.root_from_leaves(leaf_hashes)), signer)
    return lines, note, signer.verifier_key()


def test_a_synthetic_log_verifies_including_the_empty_one() -> None:
    lines, note, key = synthetic([canonical({"n": i}) for i in range(5)])
    assert verify_export(lines, [note], key).entries == 5
    lines, note, key = synthetic([])
    report = verify_export(lines, [note], key)
    assert (report.tree_size, report.root_hash) == (0, merkle.EMPTY_ROOT)


@pytest.mark.parametrize(
    "body",
    [
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b"[1,2]",
        b"not json",
        b'{"a":NaN}',
        b'{"a":"\\u00e9"}',
        b'{"a":9007199254740993}',
        b"\xff",
    ],
)
def test_an_entry_that_is_not_canonical_json_fails_even_with_a_matching_hash(body: bytes) -> None:
    lines, note, key = synthetic([canonical({"n": 0}), body])
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [note], key)
    assert caught.value.reason == "entry_not_canonical"
    assert caught.value.leaf_index == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda line: {**line, "leaf_hash": "AAAA"},
        lambda line: {**line, "leaf_hash": line["leaf_hash"].rstrip("=")},
        lambda line: {**line, "body": "***"},
        lambda line: {**line, "redacted": True},
        lambda line: {**line, "redacted": "no"},
        lambda line: {**line, "leaf_index": "1"},
        lambda line: {**line, "leaf_index": True},
        lambda line: {**line, "extra": 1},
        lambda line: [line],
    ],
    ids=[
        "short-hash",
        "unpadded-hash",
        "body-not-base64",
        "redacted-with-body",
        "redacted-not-bool",
        "index-string",
        "index-bool",
        "extra-member",
        "not-an-object",
    ],
)
def test_a_malformed_entry_line_is_a_bad_line(mutate: Any) -> None:
    lines, note, key = synthetic([canonical({"n": i}) for i in range(3)])
    lines[2] = json.dumps(mutate(json.loads(lines[2]))) + "\n"
    with pytest.raises(AuditVerificationError) as caught:
        verify_export(lines, [note], key)
    assert caught.value.reason == "bad_line"
    assert (caught.value.leaf_index, caught.value.line) == (1, 3)


# --------------------------------------------------------------------------- (h) redacted entries


def test_redacted_entries_still_verify_and_are_counted(runtime: Runtime) -> None:
    log = build_log(runtime, old=8)
    with runtime.session_scope() as session:
        assert service.redact(session, before=utcnow() - timedelta(days=3650), now=utcnow()) == 8
    lines = log.export()
    redacted = [json.loads(line) for line in lines[1:9]]
    assert all(line["redacted"] and line["body"] is None for line in redacted)
    assert not json.loads(lines[9])["redacted"]
    report = verify_export(lines, list(log.notes.values()), log.key)
    assert (report.entries, report.redacted, report.tree_size) == (50, 8, 50)
    # A redacted entry is taken on its leaf hash, which the roots still check.
    line = json.loads(lines[3])
    lines[3] = json.dumps({**line, "leaf_hash": base64.b64encode(secrets.token_bytes(32)).decode()}) + "\n"
    error = fails(log, lines, reason="root_mismatch")
    assert error.leaf_range == (0, 10)


# --------------------------------------------------------------------------- the command line


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No HUB_ settings but a database that cannot be reached and a data directory that must not appear."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        HUB_DATA_DIR=str(tmp_path / "must-not-exist"),
        COLUMNS="200",
    )
    env.update(extra)
    return env


def test_verify_command_works_offline(log: Log, tmp_path: Path) -> None:
    export = tmp_path / "audit.jsonl"
    export.write_text("".join(log.export()), encoding="utf-8")
    notes = []
    for size, note in log.notes.items():
        path = tmp_path / f"checkpoint-{size}.txt"
        path.write_text(note, encoding="utf-8")
        notes += ["--checkpoint", str(path)]
    key_file = tmp_path / "verifier.key"
    key_file.write_text(log.key + "\n", encoding="utf-8")
    env = offline_env(tmp_path)

    done = run_cli(
        "audit", "verify", "--export", str(export), *notes, "--key", log.key, "--json", env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["verified"] is True
    assert (summary["tree_size"], summary["entries"], summary["redacted"]) == (50, 50, 0)
    assert (summary["checkpoints_verified"], summary["checkpoint_sizes"]) == (3, [10, 30, 50])
    assert summary["root_hash"] == base64.b64encode(log.checkpoint(50).root_hash).decode()

    done = run_cli("audit", "verify", "--export", str(export), *notes, "--key", str(key_file), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stdout

    _, body = log.row(TAMPERED)
    assert body is not None
    log.sql("UPDATE audit_entries SET body = :b WHERE leaf_index = :i", b=other_canonical_body(body), i=TAMPERED)
    export.write_text("".join(log.export()), encoding="utf-8")
    done = run_cli("audit", "verify", "--export", str(export), *notes, "--key", str(key_file), env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert f"at entry {TAMPERED}" in done.stderr
    assert "leaf_hash_mismatch" in done.stderr
    done = run_cli(
        "audit", "verify", "--export", str(export), *notes, "--key", log.key, "--json", env=env, cwd=tmp_path
    )
    assert done.returncode == 1
    failure = json.loads(done.stdout)
    assert (failure["verified"], failure["reason"], failure["leaf_index"]) == (False, "leaf_hash_mismatch", TAMPERED)
    assert str(TAMPERED) in failure["message"]

    done = run_cli(
        "audit", "verify", "--export", str(tmp_path / "absent.jsonl"), *notes, "--key", log.key, env=env, cwd=tmp_path
    )
    assert done.returncode == 2
    done = run_cli(
        "audit", "verify", "--export", str(export), *notes, "--key", str(tmp_path / "absent.key"), env=env, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "neither a readable file nor a verifier key" in done.stderr
    assert not (tmp_path / "must-not-exist").exists()


def test_checkpoint_export_and_verify_round_trip_on_a_fresh_data_dir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(tmp_path / "var"), HUB_ENV="demo", COLUMNS="200")
    init = run_cli("init", env=env, cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    snippet = (
        "from hub.runtime import get_runtime\n"
        "from hub import audited\n"
        "from audit import service\n"
        "runtime = get_runtime()\n"
        "with runtime.session_scope() as session:\n"
        "    for i in range(int(__import__('sys').argv[1])):\n"
        "        service.record(session, runtime.audit_signer, audited.event(\n"
        "            action='exchange.licence.fetched', outcome='ok', actor_type='system', actor='system',\n"
        "            case_number=f'LJ{i:05d}'))\n"
    )

    def append(count: int) -> None:
        done = subprocess.run(
            [sys.executable, "-c", snippet, str(count)], env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr

    append(7)
    first = run_cli("audit", "checkpoint", "--json", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    first_data = json.loads(first.stdout)
    assert (first_data["tree_size"], first_data["published"]) == (7, 1)
    append(5)
    second = json.loads(run_cli("audit", "checkpoint", "--json", env=env, cwd=tmp_path).stdout)
    assert second["tree_size"] == 12
    again = json.loads(run_cli("audit", "checkpoint", "--json", env=env, cwd=tmp_path).stdout)
    assert (again["tree_size"], again["published"]) == (12, 0)

    key = run_cli("audit", "verifier-key", env=env, cwd=tmp_path)
    assert key.returncode == 0, key.stderr
    (tmp_path / "key").write_text(key.stdout, encoding="utf-8")
    (tmp_path / "cp7.txt").write_text(first_data["signed_note"], encoding="utf-8")
    exported = run_cli(
        "audit", "export", "--out", "log.jsonl", "--checkpoint-out", "cp.txt", "--json", env=env, cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["entries"] == 12

    done = run_cli(
        "audit", "verify", "--export", "log.jsonl", "--checkpoint", "cp.txt", "--checkpoint", "cp7.txt",
        "--key", "key", "--json", env=offline_env(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["tree_size"], report["checkpoint_sizes"]) == (12, [7, 12])
    assert report["root_hash"] == second["root_hash"]

    older = run_cli(
        "audit",
        "export",
        "--out",
        "log7.jsonl",
        "--tree-size",
        "7",
        "--checkpoint-out",
        "c7.txt",
        env=env,
        cwd=tmp_path,
    )
    assert older.returncode == 0, older.stderr
    assert (tmp_path / "c7.txt").read_text(encoding="utf-8") == first_data["signed_note"]
    done = run_cli(
        "audit", "verify", "--export", "log7.jsonl", "--checkpoint", "cp.txt", "--key", "key",
        env=offline_env(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "truncated" in done.stderr

    redacted = run_cli("audit", "redact", "--older-than-days", "30", "--json", env=env, cwd=tmp_path)
    assert redacted.returncode == 0, redacted.stderr
    assert json.loads(redacted.stdout) == {"redacted": 0, "older_than_days": 30}  # all entries are new
    refused = run_cli("audit", "redact", "--older-than-days", "0", env=env, cwd=tmp_path)
    assert refused.returncode == 2  # Typer refuses a retention below one day
