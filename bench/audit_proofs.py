"""Proof cost: logs of 100k and 1M real entries, checkpoint integration of 100k new entries, proof times.

Entries are generated once (``AuditEvent`` → RFC 8785 body → RFC 9162 leaf hash, exactly as ``append()``
does) and bulk-loaded into every backend in lockstep: COPY on PostgreSQL, one executemany per 10,000 on
SQLite, each chunk in one transaction that also advances the sequencer row. Integration and proofs then
run through ``audit.tree`` unchanged, and every timed proof is verified with ``audit.merkle`` against the
signed checkpoints and an independent in-memory tree.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, event, or_, select, text
from sqlalchemy.orm import Session

from audit import merkle, tree
from audit.entries import canonical, entry_leaf_hash
from audit.models import STATE_ROW, AuditEntry, AuditNode
from audit.note import NoteError, Signer, open_checkpoint
from bench.audit_common import POSTGRESQL, Backend, make_event, percentile
from bench.scenarios import log
from hub.db import begin_read_only

SIZES = (100_000, 1_000_000)
QUICK_SIZES = (20_000, 200_000)
CHUNK = 10_000  # entries per generated chunk and per load transaction
SAMPLES = 500  # timed inclusion proofs and consistency proofs per backend and size
WARM_CALLS = 20
TARGET_MS = 1.0
FLAT_RATIO = 1.5  # "flat": the median at 10× the entries within 1.5× (log2 grows 17 → 20)
COLUMNS = (
    "leaf_index",
    "leaf_hash",
    "body",
    "time",
    "integrated_time",
    "action",
    "outcome",
    "error_code",
    "actor_type",
    "actor",
    "department_code",
    "officer_id",
    "holder_ref",
    "certificate_identifier",
    "resource_code",
    "matter_code",
    "case_number",
    "hidden_until",
)
_COPY = f"COPY audit_entries ({', '.join(COLUMNS)}) FROM STDIN"
_INSERT = f"INSERT INTO audit_entries ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608 - constants
_ADVANCE = "UPDATE audit_state SET next_index = next_index + {p} WHERE id = {p} RETURNING next_index"
Row = tuple[Any, ...]


@dataclass
class _Log:
    """One backend's side of the lockstep build and its measured figures."""

    backend: Backend
    load_s: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    roots: dict[int, bytes] = field(default_factory=dict)  # tree size → root from the signed checkpoint
    failures: int = 0


class Entries:
    """The generated log: leaf hashes kept in memory for the independent checks."""

    def __init__(self) -> None:
        self.leaf_hashes: list[bytes] = []
        self.generate_s = 0.0

    def chunk(self, count: int) -> list[Row]:
        started = time.perf_counter()
        first = len(self.leaf_hashes)
        integrated_time = int(time.time())
        rows = []
        for index in range(first, first + count):
            event = make_event(index)
            body = canonical(event.to_entry())
            leaf_hash = entry_leaf_hash(body)
            self.leaf_hashes.append(leaf_hash)
            rows.append(
                (
                    index,
                    leaf_hash,
                    body,
                    event.time,
                    integrated_time,
                    event.action,
                    event.outcome,
                    event.error_code,
                    event.actor_type,
                    event.actor,
                    event.department_code,
                    event.officer_id,
                    event.holder_ref,
                    event.certificate_identifier,
                    event.resource_code,
                    event.matter_code,
                    event.case_number,
                    event.hidden_until,
                )
            )
        self.generate_s += time.perf_counter() - started
        return rows


def _load_postgresql(engine: Engine, rows: list[Row]) -> int:
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection  # psycopg.Connection
        assert conn is not None
        with conn.cursor() as cur:
            with cur.copy(_COPY) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(_ADVANCE.format(p="%s"), (len(rows), STATE_ROW))
            end = int(cur.fetchone()[0])
        conn.commit()
    finally:
        raw.close()
    return end


def _load_sqlite(engine: Engine, rows: list[Row]) -> int:
    column = AuditEntry.__table__.c
    time_type = column.time.type.dialect_impl(engine.dialect)
    to_text = time_type.bind_processor(engine.dialect)
    assert to_text is not None
    at, hidden = COLUMNS.index("time"), COLUMNS.index("hidden_until")
    params = [(*r[:at], to_text(r[at]), *r[at + 1 : hidden], to_text(r[hidden])) for r in rows]
    with engine.begin() as conn:  # hub/db.py: BEGIN IMMEDIATE
        conn.exec_driver_sql(_INSERT, params)
        return int(conn.exec_driver_sql(_ADVANCE.format(p="?"), (len(rows), STATE_ROW)).scalar_one())


def _grow(logs: list[_Log], entries: Entries, size: int) -> None:
    """Generate entries up to ``size`` and load each chunk into every backend."""
    while len(entries.leaf_hashes) < size:
        rows = entries.chunk(min(CHUNK, size - len(entries.leaf_hashes)))
        for one in logs:
            engine = one.backend.runtime.engine
            started = time.perf_counter()
            load = _load_postgresql if one.backend.name == POSTGRESQL else _load_sqlite
            end = load(engine, rows)
            one.load_s += time.perf_counter() - started
            if end != len(entries.leaf_hashes):
                raise RuntimeError(f"{one.backend.name}: sequencer at {end}, expected {len(entries.leaf_hashes)}")
    for one in logs:
        _vacuum(one)


def _vacuum(one: _Log) -> None:
    """Fresh planner statistics and visibility maps on PostgreSQL, as autovacuum would have by now.

    With a plain ANALYZE, autovacuum vacuumed the freshly written tables during the timed proofs: medians at
    100 k entries swung 2x between runs.
    """
    if one.backend.name != POSTGRESQL:
        return
    autocommit = one.backend.runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    with autocommit as conn:  # VACUUM cannot run inside a transaction
        for table in ("audit_entries", "audit_nodes", "audit_checkpoints"):
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))


def _integrate(one: _Log, max_entries: int, *, once: bool) -> dict[str, Any]:
    """``audit.tree.integrate`` in its own committed transaction(s): one call, or until nothing is new."""
    runtime = one.backend.runtime
    signer = runtime.audit_signer
    calls, size = 0, 0
    started = time.perf_counter()
    while True:
        with runtime.session_factory() as session:
            checkpoint = tree.integrate(session, signer, max_entries=max_entries)
            session.commit()
        if checkpoint is None:
            break
        calls, size = calls + 1, checkpoint.tree_size
        if once:
            break
    elapsed = time.perf_counter() - started
    if once:
        with runtime.session_factory() as session:  # nothing may be left over
            left = tree.integrate(session, signer, max_entries=max_entries)
            session.rollback()
        if left is not None:
            raise RuntimeError(f"{one.backend.name}: one integrate() call did not reach the committed size")
    with runtime.session_factory() as session:
        nodes = tree.node_count(session)
    return {"seconds": round(elapsed, 3), "calls": calls, "tree_size": size, "nodes_stored": nodes}


def _open_root(one: _Log, size: int) -> bytes:
    """The root hash of the signed checkpoint at ``size``, after checking its signature and origin."""
    signer = one.backend.runtime.audit_signer
    verifier = Signer(signer.origin, signer.private_key).verifier()
    with one.backend.runtime.session_factory() as session:
        stored = tree.checkpoint_at(session, size)
        opened = open_checkpoint(stored.signed_note, verifier, origin=signer.origin)
    if opened.size != size or opened.root_hash != stored.root_hash:
        raise NoteError(f"checkpoint {size}: the signed note does not match the stored row")
    return opened.root_hash


class MemoryTree:
    """Every perfect subtree hash of the generated leaves, computed here, independent of the database."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.levels = [list(leaf_hashes)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def fetch(self, coords: list[merkle.Coord]) -> dict[merkle.Coord, bytes]:
        return {(level, index): self.levels[level][index] for level, index in coords}

    def root(self, size: int) -> bytes:
        return merkle.root(size, self.fetch)


def _proof_session(backend: Backend) -> Session:
    session = backend.runtime.session_factory()
    if backend.name != POSTGRESQL:
        begin_read_only(session)  # as the API's read-only requests do: no SQLite write lock
    return session


def _summary(seconds: list[float], queries_per_proof: float) -> dict[str, Any]:
    ordered = sorted(seconds)
    return {
        "median_ms": round(1000 * statistics.median(ordered), 4),
        "p99_ms": round(1000 * percentile(ordered, 99), 4),
        "max_ms": round(1000 * ordered[-1], 4),
        "queries_per_proof": round(queries_per_proof, 2),
    }


def _queries_per_proof(session: Session, prove: Callable[[], object], times: int = WARM_CALLS) -> float:
    """Statements the database receives for one proof, counted on the connection over ``times`` untimed proofs."""
    sent = 0

    def count(*_: object) -> None:
        nonlocal sent
        sent += 1

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(times):
            prove()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return sent / times


def two_query_fetcher(session: Session) -> merkle.SubtreeHashes:
    """What-if (not the hub's code): all leaf hashes in one query and all inner nodes in another."""

    def fetch(coords: list[merkle.Coord]) -> dict[merkle.Coord, bytes]:
        leaves = [index for level, index in coords if level == 0]
        nodes = [(level, index) for level, index in coords if level > 0]
        found: dict[merkle.Coord, bytes] = {}
        if leaves:
            stmt = select(AuditEntry.leaf_index, AuditEntry.leaf_hash).where(AuditEntry.leaf_index.in_(leaves))
            found.update({(0, int(i)): h for i, h in session.execute(stmt)})
        if nodes:
            pairs = or_(*(and_(AuditNode.level == level, AuditNode.index == index) for level, index in nodes))
            stmt2 = select(AuditNode.level, AuditNode.index, AuditNode.hash).where(pairs)
            found.update({(int(level), int(i)): h for level, i, h in session.execute(stmt2)})
        return found

    return fetch


def _what_if(
    session: Session, indexes: list[int], pairs: list[tuple[int, int]], size: int, check: _Check
) -> dict[str, Any]:
    """The same proofs through ``two_query_fetcher``, timed and verified, and the cost of one PK lookup."""
    fetch = two_query_fetcher(session)
    for index in indexes[:WARM_CALLS]:
        merkle.inclusion_proof(index, size, fetch)
    inclusion, consistency, lookups = [], [], []
    for index in indexes:
        started = time.perf_counter()
        proof = merkle.inclusion_proof(index, size, fetch)
        inclusion.append(time.perf_counter() - started)
        check.inclusion(index, size, proof)
    for first, second in pairs:
        started = time.perf_counter()
        proof = merkle.consistency_proof(first, second, fetch)
        consistency.append(time.perf_counter() - started)
        check.consistency(first, second, proof)
    one_leaf = select(AuditEntry.leaf_hash)
    for index in indexes:
        started = time.perf_counter()
        session.execute(one_leaf.where(AuditEntry.leaf_index == index)).scalar_one()
        lookups.append(time.perf_counter() - started)
    return {
        "note": "comparison: merkle.*_proof over leaves IN + nodes OR-list, without the hub's integrated_size() check",
        "inclusion": _summary(inclusion, 2),
        "consistency": _summary(consistency, 2),
        "one_pk_lookup_median_ms": round(1000 * statistics.median(lookups), 4),
    }


@dataclass
class _Check:
    """Verifies proofs against the signed checkpoint root (inclusion) and the independent tree (consistency)."""

    leaf_hashes: list[bytes]
    memory: MemoryTree
    root: bytes
    failures: int = 0

    def inclusion(self, index: int, size: int, proof: list[bytes]) -> None:
        try:
            merkle.verify_inclusion(self.leaf_hashes[index], index, size, proof, self.root)
        except merkle.ProofError:
            self.failures += 1

    def consistency(self, first: int, second: int, proof: list[bytes]) -> None:
        try:
            merkle.verify_consistency(first, second, self.memory.root(first), self.memory.root(second), proof)
        except merkle.ProofError:
            self.failures += 1


def _time_proofs(one: _Log, size: int, memory: MemoryTree, leaf_hashes: list[bytes], seed: int) -> dict[str, Any]:
    """SAMPLES inclusion proofs at ``size`` and SAMPLES consistency proofs of random pairs, one reused session."""
    rng = random.Random(seed)  # noqa: S311 - sampling, not security
    indexes = [rng.randrange(size) for _ in range(SAMPLES)]
    pairs = [(min(a, b), max(a, b)) for a, b in ((rng.randint(1, size), rng.randint(1, size)) for _ in range(SAMPLES))]
    check = _Check(leaf_hashes, memory, one.roots[size])
    inclusion: list[float] = []
    consistency: list[float] = []
    session = _proof_session(one.backend)
    try:
        for index in indexes[:WARM_CALLS]:
            tree.inclusion_proof(session, index, size)
        for index in indexes:
            started = time.perf_counter()
            proof = tree.inclusion_proof(session, index, size)
            inclusion.append(time.perf_counter() - started)
            check.inclusion(index, size, proof)
        for first, second in pairs:
            started = time.perf_counter()
            proof = tree.consistency_proof(session, first, second)
            consistency.append(time.perf_counter() - started)
            check.consistency(first, second, proof)
        what_if = _what_if(session, indexes, pairs, size, check)
        queries = (
            _queries_per_proof(session, lambda: tree.inclusion_proof(session, indexes[0], size)),
            _queries_per_proof(session, lambda: tree.consistency_proof(session, *pairs[0])),
        )
    finally:
        session.close()
    one.failures += check.failures
    return {
        "tree_size": size,
        "samples": SAMPLES,
        "inclusion": _summary(inclusion, queries[0]),
        "consistency": _summary(consistency, queries[1]),
        "verified": 4 * SAMPLES,
        "verification_failures": check.failures,
        "what_if_two_queries": what_if,
    }


def _check_roots(one: _Log, size: int, memory: MemoryTree, leaf_hashes: list[bytes]) -> None:
    """Signed checkpoint root == in-memory tree root == RFC 9162 root over the generated leaf hashes."""
    one.roots[size] = _open_root(one, size)
    independent = merkle.root_from_leaves(leaf_hashes[:size])
    if not one.roots[size] == memory.root(size) == independent:
        one.failures += 1
        log(f"audit proofs {one.backend.name}: checkpoint root at {size} differs from the generated leaves")


def _sampled_bodies(one: _Log, leaf_hashes: list[bytes], rng: random.Random) -> None:
    """Stored rows must be real entries: leaf hash = SHA-256(0x00 ‖ stored body) = the generated hash."""
    picks = [rng.randrange(len(leaf_hashes)) for _ in range(200)]
    with one.backend.runtime.session_factory() as session:
        stored = session.execute(
            select(AuditEntry.leaf_index, AuditEntry.leaf_hash, AuditEntry.body).where(AuditEntry.leaf_index.in_(picks))
        ).all()
    bad = sum(1 for i, h, body in stored if body is None or entry_leaf_hash(body) != h or h != leaf_hashes[i])
    one.failures += bad + len(set(picks)) - len(stored)


def _checkpoint_consistency(one: _Log, small: int, big: int) -> None:
    """The published checkpoints themselves: the small tree is a prefix of the big one."""
    with one.backend.runtime.session_factory() as session:
        proof = tree.consistency_proof(session, small, big)
    try:
        merkle.verify_consistency(small, big, one.roots[small], one.roots[big], proof)
    except merkle.ProofError:
        one.failures += 1


def _ratio(big: dict[str, Any], small: dict[str, Any], kind: str, stat: str) -> float:
    return round(big[kind][stat] / small[kind][stat], 3) if small[kind][stat] else 0.0


def _verdict(small: dict[str, Any], big: dict[str, Any]) -> dict[str, Any]:
    verdict: dict[str, Any] = {}
    for kind in ("inclusion", "consistency"):
        ratio = _ratio(big, small, kind, "median_ms")
        verdict[kind] = {
            "ratio_median_big_to_small": ratio,
            "ratio_p99_big_to_small": _ratio(big, small, kind, "p99_ms"),
            "median_under_1ms": small[kind]["median_ms"] < TARGET_MS and big[kind]["median_ms"] < TARGET_MS,
            "p99_under_1ms": small[kind]["p99_ms"] < TARGET_MS and big[kind]["p99_ms"] < TARGET_MS,
            "flat": ratio <= FLAT_RATIO,
        }
    return verdict


def run(backends: list[Backend], *, quick: bool) -> dict[str, Any]:
    """Build both logs on every backend, integrate, time and verify proofs; figures per backend."""
    small, big = QUICK_SIZES if quick else SIZES
    new = small  # the timed integration: `small` new entries, first on an empty log, then on big - small
    logs = [_Log(b) for b in backends]
    entries = Entries()
    rng = random.Random(20261123)  # noqa: S311 - sampling, not security

    _grow(logs, entries, small)
    memory = MemoryTree(entries.leaf_hashes)
    for one in logs:
        one.figures["integrate_first"] = _integrate(one, new, once=True) | {"from": 0, "to": small}
        _check_roots(one, small, memory, entries.leaf_hashes)
        _vacuum(one)  # integration just wrote the nodes
        one.figures["proofs_small"] = _time_proofs(one, small, memory, entries.leaf_hashes, seed=1)
        log(f"audit proofs {one.backend.name} at {small}: {_brief(one.figures['proofs_small'])}")

    _grow(logs, entries, big - new)
    for one in logs:
        one.figures["integrate_backlog"] = _integrate(one, tree.INTEGRATION_CHUNK, once=False) | {
            "from": small,
            "to": big - new,
            "max_entries": tree.INTEGRATION_CHUNK,
        }
    _grow(logs, entries, big)
    memory = MemoryTree(entries.leaf_hashes)
    for one in logs:
        one.figures["integrate_last"] = _integrate(one, new, once=True) | {"from": big - new, "to": big}
        _check_roots(one, big, memory, entries.leaf_hashes)
        _checkpoint_consistency(one, small, big)
        _sampled_bodies(one, entries.leaf_hashes, rng)
        _vacuum(one)
        one.figures["proofs_big"] = _time_proofs(one, big, memory, entries.leaf_hashes, seed=2)
        log(f"audit proofs {one.backend.name} at {big}: {_brief(one.figures['proofs_big'])}")

    result: dict[str, Any] = {
        "sizes": [small, big],
        "timed_integration_new_entries": new,
        "generate_s": round(entries.generate_s, 1),
        "method": (
            "entries generated once as AuditEvent → RFC 8785 body → leaf hash (as append() does), loaded with "
            f"COPY (PostgreSQL) / executemany (SQLite) in {CHUNK}-entry transactions that advance the sequencer; "
            "PostgreSQL tables VACUUM (ANALYZE)d after each load and before timing proofs; integration and proofs "
            "through audit.tree unchanged"
        ),
    }
    for one in logs:
        load_entries = len(entries.leaf_hashes)
        result[one.backend.name] = {
            "durability": one.backend.durability,
            "bulk_load_s": round(one.load_s, 1),
            "bulk_load_entries_per_s": round(load_entries / one.load_s, 0) if one.load_s else 0.0,
            **one.figures,
            "target": _verdict(one.figures["proofs_small"], one.figures["proofs_big"]),
            "verification_failures": one.failures,
        }
    result["verification_failures"] = sum(one.failures for one in logs)
    result["notes"] = [_note(one.backend.name, one.figures["proofs_big"]) for one in logs]
    return result


def _note(backend: str, p: dict[str, Any]) -> str:
    inc, what_if = p["inclusion"], p["what_if_two_queries"]
    lookup = what_if["one_pk_lookup_median_ms"]
    return (
        f"{backend} at {p['tree_size']:,}: an inclusion proof sends {inc['queries_per_proof']} statement(s) (its "
        f"nodes and the covering checkpoint's size together); one PK lookup through Session.execute costs {lookup} "
        f"ms; measured {inc['median_ms']} ms. Through the ORM, leaves and inner nodes in 2 queries and no "
        f"checkpoint check: {what_if['inclusion']['median_ms']} ms."
    )


def _brief(p: dict[str, Any]) -> str:
    inc, con = p["inclusion"], p["consistency"]
    return (
        f"inclusion median {inc['median_ms']:.3f} ms p99 {inc['p99_ms']:.3f} ms; consistency median "
        f"{con['median_ms']:.3f} ms p99 {con['p99_ms']:.3f} ms; failures {p['verification_failures']}"
    )
