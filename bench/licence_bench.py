"""Licence benchmark: batch issuance on two Celery workers (PostgreSQL, S3, Redis) and ``GET /v/{token}``.

Run through ``python -m bench --only licence`` (``--quick``: 1,000 licences instead of 10,000, 3 s wrk runs).

Part 1 (distributed configuration): a throwaway PostgreSQL database, a ``moto_server`` S3 endpoint and a
spare Redis database as broker; ``licence-hub init``, then an issuing department with a licence seal and
the demo types seeded in-process. Two ``licence-hub worker --concurrency=1`` processes issue a batch of
营业执照 created in-process with ``licences.batches.create_batch`` and dispatched chunk by chunk with
``hub.jobs.dispatch``; the clock runs from the first dispatch until ``progress()`` shows no pending row.
The result is checked (row count, distinct identifiers, every file in the bucket, a sample fetched and
hashed, one file through pyHanko), then the steps of ``issue()`` are timed one by one in this process on
the same database: render, seal (B-T with the hub TSA), store, and the whole ``issue()``.

Part 2: the hub serves ``GET /v/{token}`` (presentation token, JSON) and ``GET /v/{licence id}`` (the
static QR target) under wrk with 64 connections (as the exchange benchmark), against a bare FastAPI
``GET /ping`` measured the same way before and after in the same run. Each scan is audited through the
group committer before its answer leaves, and the entries are counted afterwards ("no audit, no data").
With 8 connections a closed loop cannot fill a durable group commit (each client waits for its own
commit), so the token scan is also measured with 8: that cell shows the latency bound, not throughput.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx
import psycopg
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select

from bench import hub_setup, report, scan_floor
from bench.cpu import load_average, machine_busy_seconds, named_cpu_seconds, tree_cpu_seconds
from bench.licence_report import LOCK_SAMPLE_INTERVAL_S
from bench.loadgen import ensure_wrk, wrk_version
from bench.scan_floor import b64url_decode, receipt_message
from bench.scenarios import Measurement, Run, log, measure
from bench.servers import HOST, REPO, Server, free_port, hub_command, serving, uvicorn_bare_command, venv_bin
from hub.codes import make_uscc
from hub.db import make_engine
from hub.identity import service as identity
from hub.jobs import celery_app, configure, dispatch
from hub.runtime import Runtime, build_runtime
from hub.settings import Settings
from hub.storage import S3BlobStore
from licences import batches
from licences.demo_types import DEMO_TYPES
from licences.face import face_rows
from licences.issuance import Actor, Issuer, LicenceContext, issue
from licences.issuance import metadata as licence_metadata
from licences.models import Licence, LicenceBatch, LicenceType
from licences.render import TEMPLATES, LicenceDocument, RenderedPdf, render_licence
from licences.schemas import LicenceRequest
from licences.types import ensure_demo_types
from seals import lifecycle
from seals import service as pki
from seals.lifecycle import SealOwner
from seals.sealing import Placement, seal_document
from seals.trust import trust_settings
from seals.verify import PASSED, Verifier

ROWS, QUICK_ROWS = 10_000, 1_000
STEP_SAMPLE, QUICK_STEP_SAMPLE = 500, 100
WORKERS = 2  # one per core; each `licence-hub worker --concurrency=1`
FETCH_SAMPLE = 50
PYHANKO_SAMPLE = 3
SCAN_TARGET_RATIO = 0.5
BROKER_URL = "redis://127.0.0.1:6379/7"  # a spare database number, flushed before and after
TASK = "licences.batch.issue_chunk"
WORKER_READY_S = 60.0
STALL_S = 120.0  # no row finished for this long: the workers are stuck, give up
POLL_S = 0.25
DEPARTMENT = "临江市市场监督管理局"
BUSINESS = next(t for t in DEMO_TYPES if t.name == "营业执照")
ACCEPT_JSON = {"Accept": "application/json"}
T = TypeVar("T")


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Timing:
    """``count`` operations in ``elapsed_s`` seconds of wall time."""

    count: int
    elapsed_s: float

    @property
    def per_s(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def ms_each(self) -> float:
        return 1000 * self.elapsed_s / self.count if self.count else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "elapsed_s": round(self.elapsed_s, 3), "per_s": round(self.per_s, 1),
                "ms_each": round(self.ms_each, 2)}  # fmt: skip


@dataclass(frozen=True)
class BatchRun:
    """One batch issued by the workers: wall time from first dispatch to no pending row, and CPU around it."""

    batch_id: str
    rows: int
    chunks: int
    chunk_rows: int
    create_s: float
    wall_s: float
    first_issued_s: float | None
    counts: dict[str, int]
    cpu_s: dict[str, float]  # CPU seconds during the batch: workers, s3, postgresql, redis, machine
    lock_waits: dict[str, Any]

    @property
    def licences_per_s(self) -> float:
        return self.counts[batches.ISSUED] / self.wall_s if self.wall_s else 0.0

    def cpu_cores(self) -> dict[str, float]:
        """Cores busy per group over the wall time; "other" is the rest of the machine (noise, this poller).

        Processes that exit during the batch take their CPU time with them, so a group can read low.
        """
        groups = {k: v for k, v in self.cpu_s.items() if k != "machine"}
        other = max(0.0, self.cpu_s["machine"] - sum(groups.values()))
        return {k: round(v / self.wall_s, 2) for k, v in (groups | {"other": other}).items()} if self.wall_s else {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "chunks": self.chunks, "chunk_rows": self.chunk_rows,
            "create_batch_s": round(self.create_s, 2), "wall_s": round(self.wall_s, 2),
            "licences_per_s": round(self.licences_per_s, 1),
            "first_row_issued_s": round(self.first_issued_s, 2) if self.first_issued_s is not None else None,
            "issued": self.counts[batches.ISSUED], "failed": self.counts[batches.FAILED],
            "pending": self.counts[batches.PENDING],
            "worker_cpu_ms_per_licence": round(1000 * self.cpu_s["workers"] / max(self.counts[batches.ISSUED], 1), 1),
            "cpu_cores": self.cpu_cores(), "lock_waits": self.lock_waits,
        }  # fmt: skip


@dataclass(frozen=True)
class Verification:
    """What the batch left behind, checked in the database and the bucket."""

    expected: int
    licences: int
    distinct_identifiers: int
    distinct_ids: int
    batch_status: str
    in_bucket: int
    fetched: int
    fetched_intact: int
    pyhanko_checked: int
    pyhanko_passed: int

    @property
    def ok(self) -> bool:
        counts = {self.licences, self.distinct_identifiers, self.distinct_ids, self.in_bucket}
        return (
            counts == {self.expected}
            and self.batch_status == batches.COMPLETED
            and self.fetched_intact == self.fetched
            and self.pyhanko_passed == self.pyhanko_checked
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


@dataclass(frozen=True)
class Steps:
    """The steps of one ``issue()`` timed alone, single process, on the same licences and database."""

    render: Timing
    seal: Timing
    store: Timing
    issue: Timing

    def as_dict(self) -> dict[str, Any]:
        parts = {"render": self.render, "seal_b_t": self.seal, "store_s3": self.store}
        rest = self.issue.ms_each - sum(t.ms_each for t in parts.values())
        return {
            **{name: t.as_dict() for name, t in parts.items()},
            "issue_full": self.issue.as_dict(),
            "ms_per_licence": {**{n: round(t.ms_each, 2) for n, t in parts.items()}, "rest": round(rest, 2),
                               "issue_full": round(self.issue.ms_each, 2)},
            "share_of_issue": {**{n: round(t.ms_each / self.issue.ms_each, 3) for n, t in parts.items()},
                               "rest": round(rest / self.issue.ms_each, 3)},
            "ratio_render_to_issue": round(self.render.per_s / self.issue.per_s, 2),
            "ratio_seal_to_issue": round(self.seal.per_s / self.issue.per_s, 2),
            "ratio_seal_to_render": round(self.seal.per_s / self.render.per_s, 1),
        }  # fmt: skip


SCAN_CONNECTIONS, SCAN_THREADS = 64, 2
FEW_CONNECTIONS = 8


@dataclass(frozen=True)
class ScanResult:
    """One hub backend under wrk: the presentation-token scan and the static QR scan, with their audit entries."""

    backend: str
    token: Measurement
    static: Measurement
    token_few: Measurement  # the token scan with FEW_CONNECTIONS: latency-bound (one durable commit per round)
    token_bytes: int
    audited: int
    responses: int

    def as_dict(self, bare_rps: float, bare_async_rps: float) -> dict[str, Any]:
        def row(m: Measurement) -> dict[str, Any]:
            return m.as_dict(bare_rps, bare_async_rps=bare_async_rps)

        return {
            "token_scan": row(self.token), "static_scan": row(self.static),
            "token_scan_8_clients": row(self.token_few),
            "token_bytes": self.token_bytes, "scans_audited": self.audited, "scans_answered": self.responses,
            "every_answer_audited": self.audited >= self.responses,
        }  # fmt: skip


@dataclass
class Workers:
    """The Celery worker processes (each a prefork parent with one child) and their logs."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(p.pid) for p in self.processes)

    def check_alive(self) -> None:
        for process, log_path in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"worker {process.pid} exited:\n{_tail(log_path)}")


# ------------------------------------------------------------------------------------------ helpers


def ideal_speedup(chunks: int) -> float:
    """Best batch ÷ one-worker ratio: chunks are indivisible, so the busiest worker runs ceil(chunks / WORKERS)."""
    return chunks / math.ceil(chunks / WORKERS) if chunks else 0.0


def _timed(items: list[T], step: Callable[[T], Any]) -> tuple[list[Any], Timing]:
    started = time.perf_counter()
    outputs = [step(item) for item in items]
    return outputs, Timing(len(items), time.perf_counter() - started)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _cpu_snapshot(workers: Workers, s3: Server, database: str) -> dict[str, float]:
    return {
        "workers": workers.cpu_seconds(), "s3": s3.cpu_seconds(),
        "postgresql": named_cpu_seconds("postgres", title=f" {database} "),
        "redis": named_cpu_seconds("redis-server"), "machine": machine_busy_seconds(),
    }  # fmt: skip


def _settings_from(env: Mapping[str, str]) -> Settings:
    """The Settings a hub process started with ``env`` reads (the same HUB_* parsing, not a copy of it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def company(n: int) -> tuple[str, str]:
    """A distinct company holder per ``n``: (USCC with valid check characters, name)."""
    return make_uscc("9", "1", "330100", f"{n:08d}"), f"临江市基准第{n}科技有限公司"


def business_request(n: int) -> dict[str, Any]:
    """One POST /v1/licences body for a 营业执照 (also one JSON Lines row of a batch)."""
    code, name = company(n)
    return {
        "certificate_type_code": BUSINESS.type_code, "certificate_holder_type": BUSINESS.holder_type,
        "certificate_holder_code": code, "certificate_holder_name": name,
        "face": BUSINESS.sample_face(name, code, n),
    }  # fmt: skip


def _jsonl(first: int, count: int) -> Iterator[bytes]:
    """A JSON Lines upload in 64 KiB pieces, as a streamed request body arrives."""
    body = b"".join(
        json.dumps(business_request(n), ensure_ascii=False).encode() + b"\n" for n in range(first, first + count)
    )
    for at in range(0, len(body), 64 * 1024):
        yield body[at : at + 64 * 1024]


def seed_issuer(runtime: Runtime, code: str) -> Issuer:
    """A department with an active licence seal that may issue the demo types, committed."""
    with runtime.session_scope() as session:
        dept = identity.create_department(session, code=code, name=DEPARTMENT, level="municipal", area_code="330100")
        owner = SealOwner(dept.code, dept.name, dept.area_code)
        lifecycle.create_seal(session, runtime.seal_context, owner=owner, name="电子证照专用章", kind="licence")
        ensure_demo_types(session, [dept.code])
        return Issuer(dept.code, dept.name, dept.area_code)


# ------------------------------------------------------------------------------ distributed services


@contextmanager
def moto_s3(log_dir: Path) -> Iterator[Server]:
    """Moto's S3 server in its own process (like a MinIO next to the hub); objects live in its memory."""
    port = free_port()
    command = [venv_bin("moto_server"), "-H", HOST, "-p", str(port)]
    with serving("moto-s3", command, port=port, env=dict(os.environ), log_dir=log_dir, ready_path="/moto-api/") as s3:
        yield s3


@contextmanager
def redis_broker(url: str) -> Iterator[str]:
    """A Redis database for the broker and results, empty before and after (nothing left for the next run)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@contextmanager
def celery_bound(settings: Settings) -> Iterator[None]:
    """Point this process's Celery app at ``settings``' broker; hub.jobs configured it from the import-time env."""
    configure(celery_app, settings)
    try:
        yield
    finally:
        celery_app.close()  # drop the Redis producer pool before going back to the environment's settings
        configure(celery_app, Settings())


def _start_worker(env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    command = [venv_bin("licence-hub"), "worker", "--concurrency=1", "--loglevel=INFO"]
    with log_path.open("wb") as out:
        return subprocess.Popen(command, cwd=REPO, env=dict(env), stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # Celery's warm shutdown: finish the task, then exit
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def celery_workers(env: Mapping[str, str], log_dir: Path, count: int) -> Iterator[Workers]:
    """``count`` worker processes, each ready (its log says so) before the block starts; stopped after."""
    workers = Workers()
    try:
        for n in range(count):
            workers.logs.append(log_dir / f"worker-{n}.log")
            workers.processes.append(_start_worker(env, workers.logs[-1]))
        deadline = time.monotonic() + WORKER_READY_S
        while not all(" ready." in p.read_text(errors="replace") for p in workers.logs):
            workers.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready after {WORKER_READY_S} s:\n{_tail(workers.logs[0])}")
            time.sleep(0.2)
        yield workers
    finally:
        for process in workers.processes:
            _stop(process)


def _distributed_env(work: Path, database_url: str, s3: Server) -> dict[str, str]:
    env = hub_setup.hub_environment(work / "data", free_port(), database_url)
    s3_host = s3.base_url.removeprefix("http://")
    env |= {"HUB_BROKER_URL": BROKER_URL, "HUB_STORAGE_URL": f"s3://bench:bench@{s3_host}/licence-hub?secure=false"}
    return env


# ------------------------------------------------------------------------------------- batch issuance


class LockSampler:
    """Samples pg_stat_activity while a batch runs: how much of the workers' time goes to waiting on row locks.

    Two workers that scale should rarely wait on each other; the query they wait in names the shared row.
    """

    INTERVAL_S = LOCK_SAMPLE_INTERVAL_S
    _QUERY = (
        "SELECT wait_event_type = 'Lock', left(query, 60) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'"
    )

    def __init__(self, database_url: str) -> None:
        self.dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.samples = 0
        self.waiting = 0
        self.waited_in: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.wait(self.INTERVAL_S):
                rows = conn.execute(self._QUERY).fetchall()
                self.samples += 1
                blocked = [str(query) for waiting, query in rows if waiting]
                self.waiting += len(blocked)
                self.waited_in.update(blocked)

    def result(self) -> dict[str, Any]:
        share = self.waiting / (self.samples * WORKERS) if self.samples else 0.0
        top = self.waited_in.most_common(1)
        return {
            "samples": self.samples, "share_of_worker_time_waiting_on_locks": round(share, 3),
            "most_waited_in": f"{top[0][0]}…" if top else None,
        }  # fmt: skip


def _create(
    runtime: Runtime, issuer: Issuer, first: int, rows: int, chunk_rows: int
) -> tuple[str, list[tuple[int, int]]]:
    with runtime.session_scope() as session:
        batch = batches.create_batch(
            session, department_code=issuer.code, client_id=None, body=_jsonl(first, rows),
            max_rows=runtime.settings.batch_max_rows,
        )  # fmt: skip
        session.flush()
        return batch.id, batches.chunks(session, batch.id, chunk_rows)


def _progress(runtime: Runtime, batch_id: str) -> dict[str, int]:
    with runtime.session_scope() as session:
        return batches.progress(session, batch_id)


def _wait_until_done(
    runtime: Runtime, batch_id: str, workers: Workers, started: float
) -> tuple[float | None, dict[str, int]]:
    """Poll ``progress()`` until no row is pending; returns when the first row was done, and the counts."""
    first_done: float | None = None
    last_change, last_left = time.perf_counter(), -1
    while True:
        counts = _progress(runtime, batch_id)
        now = time.perf_counter()
        left = counts[batches.PENDING]
        if first_done is None and left < sum(counts.values()):
            first_done = now - started
        if left == 0:
            return first_done, counts
        if left != last_left:
            last_change, last_left = now, left
        elif now - last_change > STALL_S:
            raise RuntimeError(f"batch {batch_id} stalled with {left} rows pending:\n{_tail(workers.logs[0])}")
        workers.check_alive()
        time.sleep(POLL_S)


def run_batch(
    runtime: Runtime, issuer: Issuer, workers: Workers, s3: Server, *, first: int, rows: int, chunk_rows: int
) -> BatchRun:
    """Create a batch in-process, dispatch its chunks to the workers and wait until no row is pending."""
    created = time.perf_counter()
    batch_id, ranges = _create(runtime, issuer, first, rows, chunk_rows)
    create_s = time.perf_counter() - created
    database = runtime.engine.url.database or ""
    cpu = _cpu_snapshot(workers, s3, database)
    with LockSampler(runtime.settings.resolved_database_url) as locks:
        started = time.perf_counter()
        for low, high in ranges:
            dispatch(runtime.settings, TASK, batch_id=batch_id, first=low, last=high)
        first_done, counts = _wait_until_done(runtime, batch_id, workers, started)
        wall = time.perf_counter() - started
    return BatchRun(
        batch_id, rows, len(ranges), chunk_rows, create_s, wall, first_done, counts,
        {k: max(0.0, v - cpu[k]) for k, v in _cpu_snapshot(workers, s3, database).items()}, locks.result(),
    )  # fmt: skip


def verify_batch(runtime: Runtime, batch: BatchRun) -> Verification:
    """Rows, identifiers and files of the batch: all there, all distinct, every file in the bucket and intact."""
    store = runtime.storage
    assert isinstance(store, S3BlobStore)
    with runtime.session_scope() as session:
        of_batch = Licence.batch_id == batch.batch_id
        count = session.scalar(select(func.count()).where(of_batch)) or 0
        identifiers = session.scalar(select(func.count(func.distinct(Licence.identifier))).where(of_batch)) or 0
        ids = session.scalar(select(func.count(func.distinct(Licence.id))).where(of_batch)) or 0
        files = list(session.scalars(select(Licence.file_sha256).where(of_batch)))
        status = session.scalars(select(LicenceBatch.status).where(LicenceBatch.id == batch.batch_id)).one()
        trust = trust_settings(session)
    listed = {obj.object_name for obj in store.client.list_objects(store.bucket)}
    sample = random.Random(7).sample(files, min(FETCH_SAMPLE, len(files)))  # noqa: S311 - a sample, not a secret
    fetched = {key: store.get(key) for key in sample}
    intact = sum(hashlib.sha256(data).hexdigest() == key and data.startswith(b"%PDF-") for key, data in fetched.items())
    verifier = Verifier(trust)
    verdicts = [verifier.verify(fetched[key]).verdict for key in sample[:PYHANKO_SAMPLE]]
    return Verification(
        expected=batch.rows, licences=count, distinct_identifiers=identifiers, distinct_ids=ids,
        batch_status=status, in_bucket=sum(key in listed for key in files), fetched=len(fetched),
        fetched_intact=intact, pyhanko_checked=len(verdicts), pyhanko_passed=verdicts.count(PASSED),
    )  # fmt: skip


# ------------------------------------------------------------------------------- the steps of issue()


def _documents(runtime: Runtime, batch_id: str, sample: int) -> list[tuple[LicenceDocument, str]]:
    """The batch's first ``sample`` licences as issuance hands them to the renderer (seal_and_store)."""
    ctx = runtime.licence_context
    with runtime.session_scope() as session:
        types = {t.type_code: t for t in session.scalars(select(LicenceType))}
        licences = session.scalars(
            select(Licence).where(Licence.batch_id == batch_id).order_by(Licence.pk).limit(sample)
        )
        return [
            (
                LicenceDocument(
                    metadata={k: v for k, v in licence_metadata(lic).items() if isinstance(v, str)},
                    face=face_rows(types[lic.type_code].face_schema, lic.face), qr_url=ctx.qr_url(lic.id),
                ),
                types[lic.type_code].template,
            )
            for lic in licences
        ]  # fmt: skip


def _render(item: tuple[LicenceDocument, str]) -> RenderedPdf:
    return render_licence(item[0], template=TEMPLATES[item[1]])


def _seal_step(runtime: Runtime, issuer: Issuer, rendered: list[RenderedPdf]) -> tuple[list[bytes], Timing]:
    """The seal step as seal_and_store runs it: active seal and TSA looked up, then seal_document (B-T)."""
    ctx: LicenceContext = runtime.licence_context
    with runtime.session_factory() as session:

        def seal(pdf: RenderedPdf) -> bytes:
            active = lifecycle.active_seal_for(session, issuer.code, "licence")
            stamp = pki.get_timestamper(session, ctx.master_keys).stamp_digest
            placement = Placement(rect=pdf.seal_rect, page_index=pdf.page_index)
            return seal_document(
                session, ctx.seal_context, ctx.prepared_seals, active, pdf.pdf, placement=placement, timestamp=stamp
            )

        seal(rendered[0])  # per-seal material built once per process, as in a running worker
        outputs, timing = _timed(rendered, seal)
        session.rollback()
    return outputs, timing


def _issue_all(runtime: Runtime, issuer: Issuer, first: int, count: int) -> Timing:
    """Whole ``issue()`` calls, committed every ROWS_PER_TRANSACTION like a batch chunk; one untimed call first."""
    requests = [LicenceRequest.model_validate(business_request(n)) for n in range(first, first + count + 1)]
    actor = Actor("department", issuer.code)
    with runtime.session_scope() as session:  # fonts and per-seal material, once per process like a worker
        issue(session, runtime.licence_context, issuer, requests.pop(), actor)
    started = time.perf_counter()
    for at in range(0, count, batches.ROWS_PER_TRANSACTION):
        with runtime.session_scope() as session:
            for request in requests[at : at + batches.ROWS_PER_TRANSACTION]:
                issue(session, runtime.licence_context, issuer, request, actor)
    return Timing(count, time.perf_counter() - started)


def measure_steps(runtime: Runtime, issuer: Issuer, batch_id: str, sample: int, first_holder: int) -> Steps:
    documents = _documents(runtime, batch_id, sample)
    _render(documents[0])  # fonts loaded once per process
    rendered, render_t = _timed(documents, _render)
    sealed, seal_t = _seal_step(runtime, issuer, rendered)
    _, store_t = _timed(sealed, runtime.storage.put)  # new bytes (fresh time-stamps): a real PUT each
    return Steps(render_t, seal_t, store_t, _issue_all(runtime, issuer, first_holder, sample))


def _mean_rate(opening: Timing, closing: Timing) -> float:
    return (opening.per_s + closing.per_s) / 2


def _bracketed(opening: Timing, closing: Timing) -> dict[str, float]:
    """The single-process rate before and after the batch: the machine drifts, the ratio uses their mean."""
    return {
        "before_batch": round(opening.per_s, 1), "after_batch": round(closing.per_s, 1),
        "mean": round(_mean_rate(opening, closing), 1),
        "drift_pct": round(100 * (closing.per_s - opening.per_s) / opening.per_s, 1),
    }  # fmt: skip


def run_issuance(work: Path, rows: int, sample: int) -> dict[str, Any]:
    """Part 1 end to end; every service it starts is stopped and its data dropped on the way out."""
    work.mkdir()
    with hub_setup.throwaway_database() as database_url, moto_s3(work) as s3, redis_broker(BROKER_URL):
        env = _distributed_env(work, database_url, s3)
        hub_setup.run_init(env, work)
        runtime = build_runtime(_settings_from(env))
        try:
            issuer = seed_issuer(runtime, make_uscc("1", "1", "330100", "MB0000LB"))
            chunk_rows = runtime.settings.batch_chunk_rows
            log(f"licence: {sample} × issue() in-process before the batch (single-worker rate, opening)")
            opening = _issue_all(runtime, issuer, 3 * 10**7, sample)
            with celery_bound(runtime.settings), celery_workers(env, work, WORKERS) as workers:
                log(f"licence: warm-up batch of {2 * WORKERS} rows, one per chunk")
                warm = run_batch(runtime, issuer, workers, s3, first=10**7, rows=2 * WORKERS, chunk_rows=1)
                log(f"licence: batch of {rows} rows, {chunk_rows} per chunk, {WORKERS} workers")
                batch = run_batch(runtime, issuer, workers, s3, first=0, rows=rows, chunk_rows=chunk_rows)
            log(f"licence: {batch.licences_per_s:.1f} licences/s over {batch.wall_s:.1f} s; verifying")
            verification = verify_batch(runtime, batch)
            log(f"licence: render / seal / store / issue() alone over {sample} licences, in-process")
            steps = measure_steps(runtime, issuer, batch.batch_id, sample, first_holder=2 * 10**7)
        finally:
            runtime.close()
    return {
        "backend": f"PostgreSQL {hub_setup.postgres_available()[1]}, throwaway database",
        "storage": f"moto_server {metadata.version('moto')} S3 on loopback (separate process)",
        "broker": BROKER_URL,
        "workers": f"{WORKERS} × `licence-hub worker --concurrency=1` (prefork, 1 child each)",
        "batch_created": "in-process licences.batches.create_batch; chunks sent with hub.jobs.dispatch",
        "warm_up": warm.as_dict(),
        "batch": batch.as_dict(),
        "verification": verification.as_dict(),
        "steps": steps.as_dict(),
        "single_issue_per_s": _bracketed(opening, steps.issue),
        "batch_to_single_issue_ratio": round(batch.licences_per_s / _mean_rate(opening, steps.issue), 2),
        "ideal_ratio": round(ideal_speedup(batch.chunks), 2),
        "failures": int(not verification.ok) + batch.counts[batches.FAILED] + warm.counts[batches.FAILED],
    }


# ------------------------------------------------------------------------------------------ scanning


@dataclass(frozen=True)
class Seeded:
    licence_id: str
    identifier: str
    holder: dict[str, str]


def _seed_scan_hub(env: Mapping[str, str]) -> Seeded:
    """An issuer, its seal and the demo types, and one 营业执照 issued in-process; the holder signs in over HTTP."""
    runtime = build_runtime(_settings_from(env))
    body = business_request(1)
    try:
        issuer = seed_issuer(runtime, make_uscc("1", "1", "330100", "MB0000QR"))
        request, actor = LicenceRequest.model_validate(body), Actor("department", issuer.code)
        with runtime.session_scope() as session:
            licence = issue(session, runtime.licence_context, issuer, request, actor).licence
            licence_id, identifier = licence.id, licence.identifier
    finally:
        runtime.close()
    holder = {
        "holder_type": body["certificate_holder_type"],
        "holder_code": body["certificate_holder_code"],
        "name": body["certificate_holder_name"],
    }
    return Seeded(licence_id, identifier, holder)


def presentation_token(client: httpx.Client, seeded: Seeded) -> str:
    signed_in = client.post("/dev/idp/token", json=seeded.holder)
    signed_in.raise_for_status()
    bearer = {"Authorization": f"Bearer {signed_in.json()['id_token']}"}
    shown = client.post(f"/v1/me/licences/{seeded.identifier}/presentations", json={}, headers=bearer)
    if shown.status_code != 201:
        raise RuntimeError(f"presentation refused ({shown.status_code}): {shown.text[:500]}")
    return str(shown.json()["token"])


def check_scan(client: httpx.Client, path: str, times: int) -> None:
    """Warm a scan route; each answer must be 200 with verdict "valid" (a denied scan is also a 200)."""
    for _ in range(times):
        answer = client.get(path, headers=ACCEPT_JSON)
        if answer.status_code != 200 or answer.json().get("verdict") != "valid":
            raise RuntimeError(f"scan {path[:40]}… answered {answer.status_code}: {answer.text[:500]}")


def _scans_audited(database_url: str) -> int:
    from audit.models import AuditEntry  # noqa: PLC0415

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            stmt = select(func.count()).where(AuditEntry.action == "licence.presentation.scanned")
            return int(conn.scalar(stmt) or 0)
    finally:
        engine.dispose()


def run_scan(run: Run, backend: str, database_url: str | None, committer: str = "auto") -> ScanResult:
    """A fresh embedded-mode hub on ``backend`` with one licence; wrk on both scan routes.

    ``committer``: ``HUB_AUDIT_COMMITTER`` (``auto`` is what ``licence-hub serve`` does: a child process).
    """
    work = run.tmp / f"scan-{backend}-{committer}"
    work.mkdir()
    port = free_port()
    env = hub_setup.hub_environment(work / "data", port, database_url) | {
        "HUB_PRESENTATION_TTL_SECONDS": "300", "HUB_AUDIT_COMMITTER": committer,
    }  # fmt: skip
    hub_setup.run_init(env, work)
    seeded = _seed_scan_hub(env)
    warm = 200
    with serving(f"hub-{backend}", hub_command(port), port=port, env=env, log_dir=work, ready_path="/readyz") as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            token = presentation_token(client, seeded)  # valid 300 s: longer than both wrk runs
            check_scan(client, f"/v/{token}", warm)
            check_scan(client, f"/v/{seeded.licence_id}", warm)
        token_m = measure(
            run, server, f"/v/{token}", headers=ACCEPT_JSON, connections=SCAN_CONNECTIONS, threads=SCAN_THREADS
        )
        static_m = measure(
            run,
            server,
            f"/v/{seeded.licence_id}",
            headers=ACCEPT_JSON,
            connections=SCAN_CONNECTIONS,
            threads=SCAN_THREADS,
        )
        few_m = measure(run, server, f"/v/{token}", headers=ACCEPT_JSON, connections=FEW_CONNECTIONS)
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")
    audited = _scans_audited(_settings_from(env).resolved_database_url)
    answered = 2 * warm + token_m.wrk.requests + static_m.wrk.requests + few_m.wrk.requests
    return ScanResult(backend, token_m, static_m, few_m, len(token), audited, answered)


def _bare(run: Run, name: str) -> tuple[Measurement, Measurement]:
    """The bare ``def`` GET (thread pool) and its ``async def`` twin (event loop), in one server."""
    port = free_port()
    with serving(
        name, uvicorn_bare_command(port), port=port, env=dict(os.environ), log_dir=run.tmp, ready_path="/ping"
    ) as server:
        measured = []
        for path in ("/ping", "/ping-async"):
            with httpx.Client(base_url=server.base_url) as client:
                for _ in range(200):
                    client.get(path).raise_for_status()
            measured.append(measure(run, server, path, connections=SCAN_CONNECTIONS, threads=SCAN_THREADS))
        return measured[0], measured[1]


@dataclass(frozen=True)
class FloorResult:
    """The lean floor scan (bench/scan_floor.py) in one shape, and whether every answer was audited."""

    shape: str
    token: Measurement
    audited: int
    responses: int

    def as_dict(self, bare_rps: float, bare_async_rps: float) -> dict[str, Any]:
        return {"token_scan": self.token.as_dict(bare_rps, bare_async_rps=bare_async_rps),
                "scans_audited": self.audited, "scans_answered": self.responses,
                "every_answer_audited": self.audited >= self.responses}  # fmt: skip


@contextmanager
def floor_server(run: Run, shape: str) -> Iterator[tuple[Server, Path]]:
    """bench/scan_floor.py in ``shape``, served like the bare app on a fresh SQLite file: the server and that file."""
    work = Path(tempfile.mkdtemp(prefix=f"floor-{shape}-", dir=run.tmp))  # fresh per call: its own socket and log
    database, port = work / "floor.db", free_port()
    env = {**os.environ, "FLOOR_MODE": shape, "FLOOR_DB": str(database), "FLOOR_SOCKET": str(work / "committer.sock")}
    command = uvicorn_bare_command(port, app="bench.scan_floor:app")
    with serving(f"floor-{shape}", command, port=port, env=env, log_dir=work, ready_path="/ping-async") as server:
        yield server, database


def floor_entries(database: Path, outcome: str | None = None) -> int:
    """Audit entries the floor wrote (with ``outcome`` only, if given)."""
    query = "select count(*) from audit where ? is null or outcome = ?"
    with sqlite3.connect(database) as db:
        return int(db.execute(query, (outcome, outcome)).fetchone()[0])


def run_floor(run: Run, shape: str) -> FloorResult:
    """The floor scan; its answers, a receipt's signature and a forged code's refusal checked before wrk."""
    with floor_server(run, shape) as (server, database):
        with httpx.Client(base_url=server.base_url) as client:
            published = client.get("/keys").raise_for_status().json()
            token, warm = published["token"], 200
            receipt_key = Ed25519PublicKey.from_public_bytes(b64url_decode(published["receipt_key"]))
            for _ in range(warm):
                answer = client.get(f"/floor/{token}").raise_for_status().json()
                if answer["verdict"] != "valid":
                    raise RuntimeError(f"floor-{shape} refused a good code: {answer}")
            receipt = answer["receipt"]
            leaf = bytes.fromhex(receipt["leaf_hash"])
            message = receipt_message(receipt["leaf_index"], leaf, receipt["integrated_time"])
            receipt_key.verify(b64url_decode(receipt["signature"]), message)  # raises if forged
            forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
            if client.get(f"/floor/{forged}").raise_for_status().json()["verdict"] != "bad_code":
                raise RuntimeError(f"floor-{shape} accepted a forged code")
        measured = measure(run, server, f"/floor/{token}", connections=SCAN_CONNECTIONS, threads=SCAN_THREADS)
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")
    return FloorResult(shape, measured, floor_entries(database), warm + 1 + measured.wrk.requests)


def run_scans(run: Run, *, skip_postgresql: bool) -> dict[str, Any]:
    """Bare GETs, the hub on SQLite and on PostgreSQL, bare again; ratios to the mean of the two bare runs.

    The target is judged against the ``async def`` bare endpoint: the scan route runs on the event loop too,
    so that is the like-for-like floor. The ratio to the ``def`` endpoint (thread pool) is kept beside it.
    """
    opening, opening_async = _bare(run, "bare-licence")
    results = [run_scan(run, "sqlite", None)]
    thread = run_scan(run, "sqlite", None, committer="thread")  # the shape before the audit process, same run
    skipped: dict[str, str] = {}
    up, detail = hub_setup.postgres_available()
    if skip_postgresql or not up:
        skipped["postgresql"] = "--skip-postgresql" if skip_postgresql else f"not reachable: {detail}"
    else:
        with hub_setup.throwaway_database() as url:
            results.append(run_scan(run, "postgresql", url))
    floors = [run_floor(run, shape) for shape in scan_floor.SHAPES]
    closing, closing_async = _bare(run, "bare-licence-closing")
    bare = (opening.rps + closing.rps) / 2
    bare_async = (opening_async.rps + closing_async.rps) / 2
    best = max(r.token.rps for r in results) / bare_async
    return {
        "bare_get_rps": round(bare, 1), "bare_get_rps_opening": round(opening.rps, 1),
        "bare_get_rps_closing": round(closing.rps, 1),
        "bare_get_async_rps": round(bare_async, 1), "bare_get_async_rps_opening": round(opening_async.rps, 1),
        "bare_get_async_rps_closing": round(closing_async.rps, 1),
        "bare": {"opening": opening.as_dict(bare), "closing": closing.as_dict(bare),
                 "opening_async": opening_async.as_dict(bare_async),
                 "closing_async": closing_async.as_dict(bare_async)},
        **{r.backend: r.as_dict(bare, bare_async) for r in results},
        **{name: {"skipped": why} for name, why in skipped.items()},
        "sqlite_thread": thread.as_dict(bare, bare_async),
        "floor": {f.shape: f.as_dict(bare, bare_async) for f in floors},
        "target_ratio": SCAN_TARGET_RATIO, "target_baseline": "bare GET, async def",
        "target_met": all(r.token.rps / bare_async >= SCAN_TARGET_RATIO for r in results),
        "target_met_against_def_baseline": all(r.token.rps / bare >= SCAN_TARGET_RATIO for r in results),
        "best_token_ratio": round(best, 3),
        "connections": SCAN_CONNECTIONS,
        "errors": sum(r.token.wrk.errors + r.static.wrk.errors + r.token_few.wrk.errors for r in [*results, thread]),
        "unaudited": sum(r.audited < r.responses for r in [*results, thread])
        + sum(f.audited < f.responses for f in floors),
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------- entry


def run(*, quick: bool, duration_s: int, skip_postgresql: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    wrk = ensure_wrk()
    rows, sample = (QUICK_ROWS, QUICK_STEP_SAMPLE) if quick else (ROWS, STEP_SAMPLE)
    summary: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine_info(wrk_version(wrk)),
        "quick": quick,
        "wrk_duration_s": duration_s,
        "load_average_start": load_average(),
    }
    with tempfile.TemporaryDirectory(prefix="licencehub-licence-bench-") as tmp:
        up, detail = hub_setup.postgres_available()
        if skip_postgresql or not up:
            summary["issuance"] = {"skipped": "--skip-postgresql" if skip_postgresql else f"PostgreSQL: {detail}"}
        else:
            summary["issuance"] = run_issuance(Path(tmp) / "batch", rows, sample)
        log(f"licence: scans, {duration_s} s per wrk run")
        summary["scan"] = run_scans(Run(wrk, duration_s, Path(tmp)), skip_postgresql=skip_postgresql)
    scan = summary["scan"]
    summary["failures"] = summary["issuance"].get("failures", 0) + scan["errors"] + scan["unaudited"]
    summary["load_average_end"] = load_average()
    summary["elapsed_s"] = round(time.perf_counter() - started, 1)
    return summary
