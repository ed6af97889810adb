"""Audit log benchmark: durable append throughput (group commit vs plain commits) and Merkle proof cost.

Run through ``python -m bench --only audit`` (``--quick`` for 2 s cells and 20k/200k logs). Every database
is a throwaway one; PostgreSQL keeps its server settings (synchronous_commit, fsync) as they are.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

from bench import audit_append, audit_proofs, hub_setup
from bench.audit_common import POSTGRESQL, Backend, EventSource, postgresql_backend, sqlite_backend
from bench.scenarios import log

CELL_SECONDS = 4
QUICK_CELL_SECONDS = 2
SQLITE_VARIANTS = (("sqlite_full", "FULL"), ("sqlite_normal", "NORMAL"))
EVENT = (
    'AuditEvent(action="exchange.licence.fetched", outcome="ok", actor_type="department", actor=<USCC>, '
    "request_id=<hex>, time=utcnow(), holder_ref=<64 hex>, certificate_identifier, matter_code, case_number, "
    "officer_id, fields=(name, code, valid_until)); RFC 8785 body ≈ 470 bytes"
)


def _sqlite_note(hub_default: str) -> str:
    if hub_default == "FULL":
        return (
            "hub/db.py sets WAL + synchronous=FULL: the WAL is fsynced at every commit, so sqlite_full is the hub as "
            "configured and durable. sqlite_normal (forced by the bench) does not fsync each commit; a power cut "
            "can lose the last commits: it only shows what the fsync costs."
        )
    return (
        f"hub/db.py sets WAL + synchronous={hub_default}: with NORMAL the WAL is not fsynced at each commit, so a "
        "power cut can lose the last commits and 'no audit, no data' is not durable. sqlite_full (PRAGMA "
        "synchronous=FULL forced by the bench via a connect hook) is the durable configuration."
    )


def _append_all(duration_s: float, pg_reason: str | None) -> dict[str, Any]:
    append: dict[str, Any] = {
        "cell_seconds": duration_s,
        "writers": list(audit_append.WRITERS),
        "event": EVENT,
        "group": "GroupCommitter(session_factory, signer).record([event]) per call: durable batch + Ed25519 receipt",
        "plain": "per call: session; audit.service.record() (append + receipt); COMMIT; one fsync per entry",
        "target_entries_per_s": audit_append.TARGET_ENTRIES_PER_S,
    }
    if pg_reason is None:
        with postgresql_backend() as pg:
            append[POSTGRESQL] = audit_append.run_backend(pg, duration_s)
            log("audit: isolated per-entry costs and a cProfile run (64 writers, 2 s) on PostgreSQL")
            append["micro_costs_us"] = audit_append.micro_costs(pg)
            append["profile"] = audit_append.profile_group(pg, EventSource())
        best = append[POSTGRESQL]["best_group_entries_per_s"]
        append["target_met"] = best >= audit_append.TARGET_ENTRIES_PER_S
        append["where_time_goes"] = audit_append.where_time_goes(
            append[POSTGRESQL], append["micro_costs_us"], append["profile"]
        )
    else:
        append[POSTGRESQL] = {"skipped": pg_reason}
        append["target_met"] = None
    hub_default = "unknown"
    for name, synchronous in SQLITE_VARIANTS:
        with sqlite_backend(name, synchronous) as sqlite:
            append[name] = audit_append.run_backend(sqlite, duration_s)
            hub_default = str(sqlite.durability["hub_default_synchronous"])
    append["sqlite_hub_default_synchronous"] = hub_default
    append["sqlite_note"] = _sqlite_note(hub_default)
    return append


@contextmanager
def _proof_backends(pg_reason: str | None) -> Iterator[list[Backend]]:
    with ExitStack() as stack:
        backends = [] if pg_reason else [stack.enter_context(postgresql_backend())]
        backends.append(stack.enter_context(sqlite_backend("sqlite")))  # the hub's own PRAGMAs
        yield backends


def _failures(append: dict[str, Any], proofs: dict[str, Any]) -> int:
    count = int(proofs["verification_failures"])
    for value in append.values():
        if isinstance(value, dict) and "group" in value:
            cells = [*value["group"].values(), *value["plain"].values()]
            count += sum(int(c["errors"]) for c in cells) + (0 if value["log_after"]["gap_free"] else 1)
    return count


def run(*, quick: bool, skip_postgresql: bool) -> dict[str, Any]:
    """The "audit" block of the JSON summary."""
    started = time.perf_counter()
    pg_reason: str | None = "--skip-postgresql" if skip_postgresql else None
    pg_version = "n/a"
    if pg_reason is None:
        up, detail = hub_setup.postgres_available()
        pg_reason, pg_version = (None, detail) if up else (f"not reachable: {detail}", "n/a")
    duration = QUICK_CELL_SECONDS if quick else CELL_SECONDS
    log(f"audit: append throughput, {duration} s per cell")
    append = _append_all(duration, pg_reason)
    log("audit: building logs for the proof benchmark")
    with _proof_backends(pg_reason) as backends:
        proofs = audit_proofs.run(backends, quick=quick)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "postgresql_server": pg_version,
        "append": append,
        "proofs": proofs,
        "failures": _failures(append, proofs),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
