"""Shared pieces of the audit benchmark: throwaway runtimes per backend, realistic events, percentiles."""

from __future__ import annotations

import base64
import itertools
import math
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from audit.entries import AuditEvent
from bench import hub_setup
from bench.scenarios import log
from hub.bootstrap import initialise
from hub.clock import utcnow
from hub.codes import USCC_ALPHABET, make_uscc
from hub.runtime import Runtime, build_runtime
from hub.settings import Settings

POSTGRESQL = "postgresql"
SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")  # PRAGMA synchronous answers 0..3
CERTIFICATE_IDENTIFIER = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
_DEPARTMENTS = tuple(
    make_uscc("1", "1", "330100", "".join(USCC_ALPHABET[(7 * n + k) % len(USCC_ALPHABET)] for k in range(8)))
    for n in range(16)
)
_HOLDER_REFS = tuple(secrets.token_hex(32) for _ in range(1024))


def make_event(n: int) -> AuditEvent:
    """A realistic ``exchange.licence.fetched`` entry; ``n`` varies the department, holder and request id."""
    return AuditEvent(
        action="exchange.licence.fetched",
        outcome="ok",
        actor_type="department",
        actor=_DEPARTMENTS[n % len(_DEPARTMENTS)],
        request_id=f"{n:016x}{secrets.randbits(64):016x}",
        time=utcnow(),
        holder_ref=_HOLDER_REFS[n % len(_HOLDER_REFS)],
        certificate_identifier=CERTIFICATE_IDENTIFIER,
        matter_code="330100-000-XK-001",
        case_number="LJ2026112300001",
        officer_id="officer-0042",
        fields=("name", "code", "valid_until"),
    )


class EventSource:
    """Unique event numbers across threads (``itertools.count`` is atomic under the GIL)."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def next(self) -> AuditEvent:
        return make_event(next(self._counter))


@dataclass(frozen=True)
class Backend:
    """A bootstrapped hub runtime on one throwaway database, as the benchmark sees it."""

    name: str
    runtime: Runtime
    durability: dict[str, Any]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 < q <= 100) of already sorted values; 0.0 for none."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(len(sorted_values) * q / 100))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def _runtime(data_dir: Path, url: str) -> Runtime:
    settings = Settings(
        env="test",
        data_dir=data_dir,
        database_url=url,
        master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        public_url="http://127.0.0.1:1",
    )
    runtime = build_runtime(settings)
    initialise(runtime)
    return runtime


def sqlite_synchronous(runtime: Runtime) -> str:
    """The ``PRAGMA synchronous`` value a fresh pooled connection of ``runtime`` runs with."""
    with runtime.engine.connect() as conn:
        value = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
    return SQLITE_SYNCHRONOUS[value] if 0 <= value < len(SQLITE_SYNCHRONOUS) else str(value)


def _force_synchronous(runtime: Runtime, mode: str) -> None:
    """Run every new connection with ``PRAGMA synchronous=<mode>``, after the hub's own connect hook."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA synchronous={mode}")
        cursor.close()

    event.listen(runtime.engine, "connect", on_connect)  # listeners run in order: ours wins
    runtime.engine.dispose()  # connections opened by initialise() predate the hook
    actual = sqlite_synchronous(runtime)
    if actual != mode:
        raise RuntimeError(f"PRAGMA synchronous is {actual}, wanted {mode}")


@contextmanager
def sqlite_backend(name: str, synchronous: str | None = None) -> Iterator[Backend]:
    """A hub on a fresh SQLite file; ``synchronous`` overrides hub/db.py's PRAGMA (None keeps it)."""
    with tempfile.TemporaryDirectory(prefix="licencehub-audit-bench-") as tmp:
        runtime = _runtime(Path(tmp) / "var", f"sqlite:///{Path(tmp) / 'audit.db'}")
        try:
            hub_default = sqlite_synchronous(runtime)
            if synchronous is not None:
                _force_synchronous(runtime, synchronous)
            with runtime.engine.connect() as conn:
                journal = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())
            durability = {
                "journal_mode": journal,
                "synchronous": sqlite_synchronous(runtime),
                "hub_default_synchronous": hub_default,
                "forced_by_bench": synchronous is not None,
            }
            yield Backend(name, runtime, durability)
        finally:
            runtime.close()


@contextmanager
def postgresql_backend() -> Iterator[Backend]:
    """A hub on a ``licencehub_bench_<random>`` database, dropped WITH (FORCE) afterwards."""
    with tempfile.TemporaryDirectory(prefix="licencehub-audit-bench-") as tmp, hub_setup.throwaway_database() as url:
        log(f"audit: PostgreSQL throwaway database {url.rsplit('/', 1)[1]}")
        runtime = _runtime(Path(tmp) / "var", url)
        try:
            with runtime.engine.connect() as conn:
                durability = {
                    setting: str(conn.execute(text(f"SHOW {setting}")).scalar_one())
                    for setting in (
                        "synchronous_commit",
                        "fsync",
                        "wal_sync_method",
                        "commit_delay",
                        "full_page_writes",
                    )
                }
            yield Backend(POSTGRESQL, runtime, durability)
        finally:
            runtime.close()
