"""Durable append throughput: group commit against one commit per entry, 1/8/64 writer threads; a profile."""

from __future__ import annotations

import cProfile
import multiprocessing
import os
import pstats
import queue
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, select

from audit import service
from audit.append import append, append_direct
from audit.committer import GroupCommitter, Waiter
from audit.entries import AuditEvent, canonical, entry_leaf_hash
from audit.models import STATE_ROW, AuditEntry, AuditState
from bench.audit_common import POSTGRESQL, Backend, EventSource, make_event, percentile
from bench.cpu import named_cpu_seconds
from bench.scenarios import log
from hub.runtime import build_runtime
from hub.settings import Settings

WRITERS = (1, 8, 64)
MULTIPROCESS = ((2, 32), (4, 16))  # processes x writer threads each: 64 writers in all, as in the 64 cell
TARGET_ENTRIES_PER_S = 20_000
PROFILE_WRITERS = 64
PROFILE_SECONDS = 2
PROFILE_TOP = 15
HANDOFF_BOUND = 1.5  # batched diagnostic this much faster: the hand-offs, not the per-entry work, dominate
BATCHED_PER_CALL = 64  # diagnostic: one caller handing the committer 64 entries per record()
MICRO_BATCH = 2000  # the committer's max_batch: SQLAlchemy insert cost per row at full batches
COMMITTER_THREAD = "audit-group-commit"
_REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class _Writer:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None


def _drive(
    writers: int,
    duration_s: float,
    source: EventSource,
    call: Callable[[list[AuditEvent]], object],
    per_call: int = 1,
) -> dict[str, Any]:
    """``writers`` threads calling ``call`` back to back until the deadline; rate over the whole span.

    Events are built before the clock of each call starts; the rate counts entries of successful calls.
    """
    state = [_Writer() for _ in range(writers)]
    clock: dict[str, float] = {}

    def start() -> None:
        clock["cpu"] = time.process_time()
        clock["start"] = time.perf_counter()
        clock["deadline"] = clock["start"] + duration_s

    barrier = threading.Barrier(writers, action=start)

    def loop(me: _Writer) -> None:
        barrier.wait()
        deadline, latencies = clock["deadline"], me.latencies
        while time.perf_counter() < deadline:
            events = [source.next() for _ in range(per_call)]
            began = time.perf_counter()
            try:
                call(events)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the cell goes on
                me.errors += 1
                me.first_error = me.first_error or f"{type(exc).__name__}: {exc}"[:300]
                continue
            latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=loop, args=(w,), name=f"audit-writer-{n}") for n, w in enumerate(state)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - clock["start"]
    cpu = time.process_time() - clock["cpu"]
    latencies = sorted(x for w in state for x in w.latencies)
    errors = sum(w.errors for w in state)
    result: dict[str, Any] = {
        "writers": writers,
        "entries": per_call * len(latencies),
        "elapsed_s": round(elapsed, 3),
        "entries_per_s": round(per_call * len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 3),
        "p99_ms": round(1000 * percentile(latencies, 99), 3),
        "errors": errors,
        "process_cpu_cores": round(cpu / elapsed, 2),  # this Python process, all threads (the GIL caps ~1)
    }
    if per_call != 1:
        result["entries_per_call"] = per_call
    if errors:
        result["first_error"] = next(w.first_error for w in state if w.first_error)
    return result


def _committer(backend: Backend) -> GroupCommitter:
    signer = backend.runtime.audit_signer
    runtime = backend.runtime
    return GroupCommitter(
        runtime.audit_session_factory or runtime.session_factory, lambda: signer, dsn=runtime.audit_dsn
    )


def _committer_thread_cpu_s() -> float:
    """CPU time so far of the (one live) committer writer thread, from /proc/self/task/<tid>/stat."""
    for thread in threading.enumerate():
        if thread.name == COMMITTER_THREAD and thread.native_id is not None:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (proc(5) fields 14, 15)
    return 0.0


def group_cell(
    backend: Backend, writers: int, duration_s: float, source: EventSource, per_call: int = 1
) -> dict[str, Any]:
    """Every writer loops ``committer.record(events)``: one entry per call (like requests) unless ``per_call``."""
    committer = _committer(backend)
    try:
        cell = _drive(writers, duration_s, source, committer.record, per_call)
        committer_cpu = _committer_thread_cpu_s()  # the thread is fresh: all of it is this cell
    finally:
        committer.close()
    cell["batches"] = committer.batches
    cell["avg_batch"] = round(committer.entries / committer.batches, 2) if committer.batches else 0.0
    cell["committed_entries"] = committer.entries  # ≥ entries: a batch may land after its caller's deadline
    cell["committer_thread_cpu_cores"] = round(committer_cpu / cell["elapsed_s"], 2)
    return cell


def _process_cell(settings: Settings, writers: int, duration_s: float, start_at: float, out: Any) -> None:
    """One committer process of a multi-process cell: its own runtime and committer on the shared database."""
    runtime = build_runtime(settings)
    committer = _committer(Backend("child", runtime, {}))
    source = EventSource()
    try:
        for _ in range(20):
            committer.record([source.next()])  # connections and code warm before the common start
        time.sleep(max(0.0, start_at - time.time()))
        cell = _drive(writers, duration_s, source, committer.record)
        cell["committed_entries"] = committer.entries
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        cell = {"errors": 1, "first_error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        committer.close()
        runtime.close()
    out.put(cell)


def multiprocess_cell(backend: Backend, processes: int, writers: int, duration_s: float) -> dict[str, Any]:
    """``processes`` hub processes appending to one log at once, ``writers`` threads each, one committer each.

    A deployment runs several API processes (``licence-hub serve --workers``); each has its own group
    committer and they share the sequencer row. The cell shows how far that scales on this machine.
    """
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 3 + processes  # after every child has started and warmed up
    children = [
        context.Process(
            target=_process_cell, args=(backend.runtime.settings, writers, duration_s, start_at, out), daemon=True
        )
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    cells = [out.get(timeout=duration_s + 120) for _ in children]
    for child in children:
        child.join(timeout=30)
    entries = sum(cell.get("entries", 0) for cell in cells)
    elapsed = max((cell.get("elapsed_s", 0.0) for cell in cells), default=0.0)
    return {
        "processes": processes,
        "writers_per_process": writers,
        "entries": entries,
        "elapsed_s": elapsed,
        "entries_per_s": round(entries / elapsed, 1) if elapsed else 0.0,
        "p99_ms": max((cell.get("p99_ms", 0.0) for cell in cells), default=0.0),
        "errors": sum(cell.get("errors", 0) for cell in cells),
        "per_process": cells,
    }


def plain_cell(backend: Backend, writers: int, duration_s: float, source: EventSource) -> dict[str, Any]:
    """Every writer commits its own entry: ``audit.service.record`` (append + receipt), then COMMIT."""
    runtime = backend.runtime
    signer = runtime.audit_signer

    def one(events: list[AuditEvent]) -> None:
        with runtime.session_factory() as session:
            for event in events:
                service.record(session, signer, event)
            session.commit()

    return _drive(writers, duration_s, source, one)


def log_is_gap_free(backend: Backend) -> dict[str, Any]:
    """Rows, highest index + 1 and the sequencer's next index must all agree."""
    with backend.runtime.session_factory() as session:
        rows, top = session.execute(select(func.count(), func.coalesce(func.max(AuditEntry.leaf_index) + 1, 0))).one()
        next_index = session.scalar(select(AuditState.next_index).where(AuditState.id == STATE_ROW))
    return {"rows": int(rows), "gap_free": int(rows) == int(top) == int(next_index or 0)}


def _warm(backend: Backend, source: EventSource) -> None:
    committer = _committer(backend)
    try:
        for _ in range(50):
            committer.record([source.next()])
    finally:
        committer.close()
    plain_cell(backend, 4, 0.3, source)


def run_backend(backend: Backend, duration_s: float) -> dict[str, Any]:
    """Group and plain cells for 1, 8 and 64 writers, the ratios, and a gap check of the whole log."""
    source = EventSource()
    _warm(backend, source)
    group: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for writers in WRITERS:
        group[str(writers)] = cell = group_cell(backend, writers, duration_s, source)
        log(
            f"audit {backend.name} group  {writers:2d} writers: {cell['entries_per_s']:8.1f} entries/s, "
            f"batch {cell['avg_batch']:6.1f}, p50 {cell['p50_ms']:.2f} ms, p99 {cell['p99_ms']:.2f} ms, "
            f"errors {cell['errors']}"
        )
    for writers in WRITERS:
        plain[str(writers)] = cell = plain_cell(backend, writers, duration_s, source)
        log(
            f"audit {backend.name} plain {writers:2d} writers: {cell['entries_per_s']:8.1f} entries/s, "
            f"p50 {cell['p50_ms']:.2f} ms, p99 {cell['p99_ms']:.2f} ms, errors {cell['errors']}"
        )
    batched = group_cell(backend, 1, duration_s, source, per_call=BATCHED_PER_CALL)
    log(
        f"audit {backend.name} diagnostic: 1 caller x {BATCHED_PER_CALL} entries per record(): "
        f"{batched['entries_per_s']:8.1f} entries/s, errors {batched['errors']}"
    )
    processes: dict[str, Any] = {}
    if backend.name == POSTGRESQL:  # SQLite has one writer per database file: processes would only queue
        for count, writers in MULTIPROCESS:
            processes[f"{count}x{writers}"] = cell = multiprocess_cell(backend, count, writers, duration_s)
            log(
                f"audit {backend.name} group, {count} processes x {writers} writers: "
                f"{cell['entries_per_s']:8.1f} entries/s, p99 {cell['p99_ms']:.2f} ms, errors {cell['errors']}"
            )
    ratios = {w: round(group[w]["entries_per_s"] / plain[w]["entries_per_s"], 2) for w in group if w in plain}
    best = max(cell["entries_per_s"] for cell in (*group.values(), *processes.values()))
    return {
        "durability": backend.durability,
        "group": group,
        "plain": plain,
        "ratio_group_to_plain": ratios,
        "best_group_entries_per_s": best,
        "diagnostic_one_caller_batched": batched,
        "processes": processes,
        "log_after": log_is_gap_free(backend),
    }


def _mean_us(repeat: int, action: Callable[[int], object]) -> float:
    """CPU µs per call of ``action`` (single thread, so this is also its wall time)."""
    started = time.process_time()
    for n in range(repeat):
        action(n)
    return round(1e6 * (time.process_time() - started) / repeat, 2)


def _handoff_us(rounds: int = 2000) -> tuple[float, float]:
    """One caller → writer thread → caller round trip through a SimpleQueue and a Waiter (as record() does)."""
    inbox: queue.SimpleQueue[Waiter | None] = queue.SimpleQueue()

    def serve() -> None:
        while (waiter := inbox.get()) is not None:
            waiter.set_result([])

    server = threading.Thread(target=serve, name="handoff")
    server.start()
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        waiter = Waiter()
        inbox.put(waiter)
        waiter.wait(10.0)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    inbox.put(None)
    server.join()
    return round(1e6 * elapsed / rounds, 2), round(1e6 * cpu / rounds, 2)


def micro_costs(backend: Backend) -> dict[str, float]:
    """Per-entry costs measured alone (no profiler), in µs: what one entry costs the single GIL; the machine floor."""
    dsn = backend.runtime.audit_dsn
    if dsn is None:
        msg = "micro_costs measures the PostgreSQL committer's path: the backend has no audit DSN"
        raise RuntimeError(msg)
    signer = backend.runtime.audit_signer
    events = [make_event(n) for n in range(MICRO_BATCH)]
    bodies = [canonical(e.to_entry()) for e in events]
    hashes = [entry_leaf_hash(b) for b in bodies]
    handoff_wall, handoff_cpu = _handoff_us()
    costs = {
        "event_build_us": _mean_us(MICRO_BATCH, make_event),
        "canonical_json_us": _mean_us(MICRO_BATCH, lambda n: canonical(events[n].to_entry())),
        "leaf_hash_us": _mean_us(MICRO_BATCH, lambda n: entry_leaf_hash(bodies[n])),
        "receipt_sign_us": _mean_us(MICRO_BATCH, lambda n: signer.receipt(n, hashes[n], 1_790_000_000)),
        "ed25519_sign_only_us": _mean_us(MICRO_BATCH, lambda n: signer.private_key.sign(bodies[n][:120])),
        "future_handoff_wall_us": handoff_wall,
        "future_handoff_us": handoff_cpu,  # CPU of both threads per round trip
    }
    appends = []
    for _ in range(3):
        with backend.runtime.session_factory() as session:
            started = time.process_time()
            append(session, events)
            session.flush()
            appends.append(time.process_time() - started)  # CPU: the database's own time is not in it
            session.rollback()  # the sequencer hands the same indexes out again: no gap
    costs["append_batch_us_per_entry"] = round(1e6 * statistics.median(appends) / MICRO_BATCH, 2)
    costs["sqlalchemy_insert_us_per_entry"] = round(
        costs["append_batch_us_per_entry"] - costs["canonical_json_us"] - costs["leaf_hash_us"], 2
    )
    python = ("event_build_us", "append_batch_us_per_entry", "receipt_sign_us", "future_handoff_us")
    costs["python_us_per_entry"] = round(sum(costs[k] for k in python), 2)
    costs["gil_bound_ceiling_entries_per_s"] = round(1e6 / costs["python_us_per_entry"], 0)
    return costs | machine_floor(dsn, events, costs)


def machine_floor(dsn: str, events: list[AuditEvent], costs: dict[str, float]) -> dict[str, float]:
    """CPU per entry on the whole machine along the leanest append the hub has, and the cores the target needs.

    The committer's own path (:func:`audit.append.append_direct`: canonical JSON, leaf hash, one sequencer
    statement, COPY) on a plain psycopg connection, committed (durable) at full batches, with the CPU of
    every PostgreSQL process (backend, WAL writer) read from /proc; plus building the event and signing
    its receipt, as measured alone above. No thread hand-off, no SQLAlchemy, no profiler: what no design
    on this stack gets under. Spread over every core perfectly, it bounds what the machine can append.
    """
    client, server, rounds = 0.0, 0.0, 5
    with psycopg.connect(dsn) as connection:
        for _ in range(rounds):
            server_before, started = named_cpu_seconds("postgres"), time.process_time()
            append_direct(connection, events)
            connection.commit()
            client += time.process_time() - started
            server += named_cpu_seconds("postgres") - server_before
    entries = rounds * len(events)
    floor = {
        "append_direct_client_us_per_entry": round(1e6 * client / entries, 2),
        "postgres_server_us_per_entry": round(1e6 * server / entries, 2),
    }
    without_receipt = costs["event_build_us"] + sum(floor.values())
    with_receipt = without_receipt + costs["receipt_sign_us"]
    cores = os.cpu_count() or 1
    return floor | {
        "machine_floor_us_per_entry": round(with_receipt, 2),
        "machine_floor_without_receipt_us_per_entry": round(without_receipt, 2),
        "cores": cores,
        "cores_needed_at_target": round(with_receipt * TARGET_ENTRIES_PER_S / 1e6, 2),
        "cores_needed_at_target_without_receipt": round(without_receipt * TARGET_ENTRIES_PER_S / 1e6, 2),
        "machine_ceiling_entries_per_s": round(cores * 1e6 / with_receipt, 0),
    }


# --- profile ------------------------------------------------------------------------------------------------

FuncKey = tuple[str, int, str]


def _label(key: FuncKey) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    path = Path(filename)
    if "site-packages" in path.parts:
        short = "/".join(path.parts[path.parts.index("site-packages") + 1 :])
    elif path.is_relative_to(_REPO):
        short = str(path.relative_to(_REPO))
    else:
        short = "/".join(path.parts[-2:])
    return f"{short}:{line}({name})"


def _raw(stats: pstats.Stats) -> dict[FuncKey, tuple[int, int, float, float, Any]]:
    raw: dict[FuncKey, tuple[int, int, float, float, Any]] = vars(stats)["stats"]
    return raw


def _top(stats: pstats.Stats, count: int, *, by_own: bool = False) -> list[str]:
    column = 2 if by_own else 3
    rows = sorted(_raw(stats).items(), key=lambda item: item[1][column], reverse=True)[:count]
    return [f"{ct:8.3f} s cum {tt:7.3f} s own {nc:8d} calls  {_label(key)}" for key, (_, nc, tt, ct, _c) in rows]


def _cumulative(stats: pstats.Stats, file_suffix: str, name: str) -> float:
    return sum(v[3] for k, v in _raw(stats).items() if k[2] == name and k[0].endswith(file_suffix))


def _merge(profiles: list[cProfile.Profile]) -> pstats.Stats:
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    return stats


_CATEGORIES = (  # own-time buckets of the CPU profile, first match wins
    ("canonical JSON (rfc8785)", ("rfc8785",)),
    ("Ed25519 signing", ("ed25519",)),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("psycopg driver", ("psycopg",)),
    ("thread hand-off (locks, Future, queue)", ("threading.py", "concurrent/futures", "queue", "_thread.lock")),
    ("SHA-256 / base64", ("sha256", "base64", "hashlib")),
    ("audit package", ("audit/",)),
    ("benchmark harness (events, loop)", ("bench/",)),
)


def _category(key: FuncKey) -> str:
    where = f"{key[0]}:{key[2]}".lower()
    for name, needles in _CATEGORIES:
        if any(needle in where for needle in needles):
            return name
    return "other (stdlib: datetime, dataclasses, ...)"


def _cpu_shares(stats: pstats.Stats) -> dict[str, float]:
    """Own CPU time by category.

    A builtin with no category of its own (BytesIO.write, isinstance, ...) is charged to its callers,
    in proportion to the time each caller spent in it.
    """
    totals: dict[str, float] = {}
    for key, (_, _, own, _, callers) in _raw(stats).items():
        category = _category(key)
        if key[0] == "~" and category.startswith("other") and callers:
            for caller, (_, _, caller_own, _) in callers.items():
                totals[_category(caller)] = totals.get(_category(caller), 0.0) + caller_own
        else:
            totals[category] = totals.get(category, 0.0) + own
    whole = sum(totals.values()) or 1.0
    return {name: round(value / whole, 3) for name, value in sorted(totals.items(), key=lambda kv: -kv[1])}


def _profiled(
    backend: Backend, source: EventSource, timer: Callable[[], float] | None
) -> tuple[dict[str, Any], list[tuple[str, cProfile.Profile]]]:
    """One 64-writer group-commit run with a profiler in every thread (callers and the committer's writer)."""
    profiles: list[tuple[str, cProfile.Profile]] = []

    def per_thread(_frame: object, _event: str, _arg: object) -> None:
        profile = cProfile.Profile(timer) if timer is not None else cProfile.Profile()
        profiles.append((threading.current_thread().name, profile))
        profile.enable()  # replaces this hook for the rest of the thread

    threading.setprofile(per_thread)
    try:
        cell = group_cell(backend, PROFILE_WRITERS, PROFILE_SECONDS, source)  # the writer thread ends at close()
    finally:
        threading.setprofile(None)
    return cell, profiles


def profile_group(backend: Backend, source: EventSource) -> dict[str, Any]:
    """Two cProfile runs of 64 writers for 2 s: wall clock (where threads wait) and per-thread CPU (what burns it)."""
    cell, profiles = _profiled(backend, source, None)
    writer = _merge([p for name, p in profiles if name == COMMITTER_THREAD])
    callers = _merge([p for name, p in profiles if name.startswith("audit-writer-")])
    everything = _merge([p for _, p in profiles])
    committer_file, append_file, entries_file = "audit/committer.py", "audit/append.py", "audit/entries.py"
    writer_wall = _cumulative(writer, committer_file, "_run")
    caller_wall = _cumulative(callers, "bench/audit_append.py", "loop")
    shares = {
        "committer_thread_wall_s": round(writer_wall, 3),
        "committer_append": _cumulative(writer, append_file, "append"),
        "committer_canonical_json": _cumulative(writer, entries_file, "canonical"),
        "committer_sqlalchemy_execute": _cumulative(writer, "sqlalchemy/orm/session.py", "execute"),
        "committer_pool_checkout": _cumulative(writer, "sqlalchemy/pool/base.py", "_checkout"),
        "committer_commit": _cumulative(writer, "sqlalchemy/orm/session.py", "commit"),
        "committer_idle_queue_get": _cumulative(writer, "~", "<method 'get' of '_queue.SimpleQueue' objects>"),
        "committer_set_result": _cumulative(writer, committer_file, "set_result"),
        "callers_wall_s": round(caller_wall, 3),
        "callers_future_wait": _cumulative(callers, committer_file, "wait"),
        "callers_receipt_sign": _cumulative(callers, append_file, "receipt"),
        "callers_event_build": _cumulative(callers, "bench/audit_common.py", "make_event"),
    }
    for key, value in shares.items():
        if not key.endswith("_s"):
            wall = writer_wall if key.startswith("committer") else caller_wall
            shares[key] = round(value / wall, 3) if wall else 0.0
    cpu_cell, cpu_profiles = _profiled(backend, source, time.thread_time)
    cpu = _merge([p for _, p in cpu_profiles])
    return {
        "writers": PROFILE_WRITERS,
        "duration_s": PROFILE_SECONDS,
        "entries_per_s_under_profiler": cell["entries_per_s"],
        "avg_batch_under_profiler": cell["avg_batch"],
        "top_cumulative_all_threads": _top(everything, PROFILE_TOP),
        "top_cumulative_committer_thread": _top(writer, PROFILE_TOP),
        "shares_of_wall_time": shares,
        "cpu_profile_entries_per_s": cpu_cell["entries_per_s"],
        "top_own_cpu_all_threads": _top(cpu, PROFILE_TOP, by_own=True),
        "cpu_shares_all_threads": _cpu_shares(cpu),
    }


def _floor_note(micro: dict[str, float]) -> str:
    return (
        f"Machine floor: the leanest append the hub has (append_direct at batches of {MICRO_BATCH}, committed, "
        f"no hand-off) costs {micro['append_direct_client_us_per_entry']:.1f} µs of client CPU and "
        f"{micro['postgres_server_us_per_entry']:.1f} µs of PostgreSQL CPU per entry; with building the event "
        f"({micro['event_build_us']:.1f}) and signing its receipt ({micro['receipt_sign_us']:.1f}), "
        f"{micro['machine_floor_us_per_entry']:.0f} µs. {TARGET_ENTRIES_PER_S} entries/s then needs "
        f"{micro['cores_needed_at_target']} cores of CPU spread perfectly (this machine has {micro['cores']:.0f}; "
        f"ceiling ≈ {micro['machine_ceiling_entries_per_s']:.0f} entries/s), or "
        f"{micro['cores_needed_at_target_without_receipt']} without per-entry receipt signatures."
    )


def where_time_goes(pg: dict[str, Any], micro: dict[str, float], profile: dict[str, Any]) -> list[str]:
    """Short notes from this run's own figures: the target, the CPU budget, the serial section, the profiles."""
    s = profile["shares_of_wall_time"]
    best = pg["best_group_entries_per_s"]
    top = pg["group"][str(max(WRITERS))]
    batched = pg["diagnostic_one_caller_batched"]
    budget = 1e6 / TARGET_ENTRIES_PER_S
    met = "MET" if best >= TARGET_ENTRIES_PER_S else "NOT met"
    cpu = ", ".join(f"{name} {share:.0%}" for name, share in list(profile["cpu_shares_all_threads"].items())[:6])
    return [
        (
            f"Target {TARGET_ENTRIES_PER_S} entries/s on PostgreSQL with group commit: {met} "
            f"(best {best:.0f} entries/s = {best / TARGET_ENTRIES_PER_S:.2f} of target, "
            f"{pg['ratio_group_to_plain'][str(max(WRITERS))]}× plain commits at {max(WRITERS)} writers)."
        ),
        (
            f"CPU budget: {TARGET_ENTRIES_PER_S} entries/s allows {budget:.0f} µs of CPU per entry in one process "
            f"(the GIL runs Python on one core), but one entry costs ~{micro['python_us_per_entry']:.0f} µs measured "
            f"alone: event {micro['event_build_us']:.1f} + append() at batch {MICRO_BATCH} "
            f"{micro['append_batch_us_per_entry']:.1f} (RFC 8785 canonical JSON {micro['canonical_json_us']:.1f}, "
            f"SHA-256 {micro['leaf_hash_us']:.1f}, SQLAlchemy insert {micro['sqlalchemy_insert_us_per_entry']:.1f}) "
            f"+ receipt {micro['receipt_sign_us']:.1f} (Ed25519 alone {micro['ed25519_sign_only_us']:.1f}, the rest "
            f"RFC 8785 of the signed bytes) + Future/queue hand-off {micro['future_handoff_us']:.1f} CPU "
            f"({micro['future_handoff_wall_us']:.1f} wall); ceiling ≈ {micro['gil_bound_ceiling_entries_per_s']:.0f} "
            "entries/s per process before any database wait."
        ),
        (
            f"At {max(WRITERS)} writers the process used {top['process_cpu_cores']} cores and the committer thread "
            f"(the serial section) {top['committer_thread_cpu_cores']} of a core, for batches of {top['avg_batch']} "
            "entries; the rest of its time it waits: on the database round trips of each batch (pool pre-ping, "
            "BEGIN, UPDATE…RETURNING, INSERT, COMMIT with its WAL fsync) and on re-taking the GIL after each of "
            f"them behind {max(WRITERS)} runnable caller threads. One caller handing it "
            f"{batched.get('entries_per_call', 1)} entries per record() reaches {batched['entries_per_s']:.0f} "
            f"entries/s ({batched['entries_per_s'] / top['entries_per_s']:.1f}× the {max(WRITERS)}-writer rate)"
            + (
                ": one thread hand-off per entry (wake-up, GIL hand-off, per-call signing) costs more than the "
                "database does."
                if batched["entries_per_s"] > HANDOFF_BOUND * top["entries_per_s"]
                else ": batching alone does not help much, per-entry CPU is the limit."
            )
        ),
        (
            f"Wall-clock profile of the committer thread: append() {s['committer_append']:.0%} of its time (canonical "
            f"JSON {s['committer_canonical_json']:.0%}, SQLAlchemy execute {s['committer_sqlalchemy_execute']:.0%}, of "
            f"which pool checkout with pre-ping {s['committer_pool_checkout']:.0%}), COMMIT "
            f"{s['committer_commit']:.0%}, waking callers {s['committer_set_result']:.0%}, idle "
            f"{s['committer_idle_queue_get']:.0%}. Callers spend {s['callers_future_wait']:.0%} of their wall time "
            f"blocked in Waiter.wait(), {s['callers_receipt_sign']:.0%} in receipt signing (Ed25519 releases the "
            "GIL, so that figure is mostly waiting to get it back)."
        ),
        f"CPU profile (per-thread CPU clock, all threads, own time): {cpu}.",
        _floor_note(micro),
        (
            "cProfile slows Python-heavy code (SQLAlchemy, rfc8785) more than C calls (Ed25519, SHA-256), so the "
            "shares are indicative; the isolated µs figures and the unprofiled cells are the numbers to quote."
        ),
    ]
