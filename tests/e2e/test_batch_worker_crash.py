"""A batch on the real stack (PostgreSQL + S3 + Redis + a Celery worker) survives faults.

A worker killed mid-batch, and an object store that goes away for a while (issue 9).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from celery import Celery
from conftest import MASTER_KEY, create_pg_database, drop_pg_database, free_port
from factories import random_uscc
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select

from hub.identity import service as identity
from hub.jobs import configure
from hub.runtime import Runtime, build_runtime
from hub.settings import Settings
from licences import batches
from licences.demo_types import DEMO_TYPES
from licences.models import Licence, LicenceBatchRow
from licences.types import ensure_demo_types
from seals import lifecycle as seal_lifecycle
from seals.lifecycle import SealOwner

pytestmark = pytest.mark.slow
ROWS, CHUNK = 240, 80
BROKER = "redis://127.0.0.1:6379/13"


@contextmanager
def _stack(
    postgres_server: str, s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker: str = BROKER
) -> Iterator[Runtime]:
    name, url = create_pg_database(postgres_server)
    env = {
        "HUB_ENV": "test",
        "HUB_DATA_DIR": str(tmp_path / "var"),
        "HUB_DATABASE_URL": url,
        "HUB_STORAGE_URL": f"s3://testing:testing@{s3}/licence-hub-{secrets.token_hex(3)}?secure=false",
        "HUB_BROKER_URL": broker,
        "HUB_MASTER_KEY": MASTER_KEY,
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
        "HUB_BROKER_VISIBILITY_TIMEOUT_SECONDS": "5",
        "HUB_BATCH_STALLED_SECONDS": "3",
        "HUB_LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    subprocess.run([sys.executable, "-m", "hub.cli", "init", "--json"], check=True, capture_output=True, timeout=120)
    redis.Redis.from_url(broker).flushdb()
    runtime = build_runtime(Settings())
    try:
        yield runtime
    finally:
        runtime.close()
        drop_pg_database(postgres_server, name)


@pytest.fixture
def stack(postgres_server: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    with _stack(postgres_server, s3_endpoint, tmp_path, monkeypatch) as runtime:
        yield runtime


class OwnS3:
    """An S3 endpoint (moto's server) of this test's own, which it can stop and start on the same port.

    moto keeps its buckets in the process, not in the server thread, so a restarted server serves what was stored.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()


@pytest.fixture
def own_s3() -> Iterator[OwnS3]:
    s3 = OwnS3()
    try:
        yield s3
    finally:
        with contextlib.suppress(Exception):
            s3.stop()


def _worker(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--concurrency", "1", "--loglevel", "WARNING"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,  # its own group: kill pool children too
        )  # fmt: skip


def _progress(runtime: Runtime, batch_id: str) -> dict[str, int]:
    with runtime.session_scope() as session:
        return batches.progress(session, batch_id)


def _seed_batch(runtime: Runtime) -> tuple[str, list[tuple[int, int]]]:
    """An issuing department with a seal and the 营业执照 type, and a stored batch of ROWS licences."""
    business = next(t for t in DEMO_TYPES if t.name == "营业执照")
    with runtime.session_scope() as session:
        dept = identity.create_department(
            session, code=random_uscc(), name="临江市市场监督管理局", level="municipal", area_code="330100"
        )
        owner = SealOwner(code=dept.code, name=dept.name, area_code="330100")
        seal_lifecycle.create_seal(session, runtime.seal_context, owner=owner, name="电子证照专用章", kind="licence")
        ensure_demo_types(session, [dept.code], only=(business.type_code,))
        lines = []
        for n in range(ROWS):
            code = random_uscc("9", "1")
            holder = f"临江市批量第{n}科技有限公司"
            lines.append(
                json.dumps(
                    {
                        "certificate_type_code": business.type_code, "certificate_holder_type": "001",
                        "certificate_holder_code": code, "certificate_holder_name": holder,
                        "face": business.sample_face(holder, code, n),
                    },
                    ensure_ascii=False,
                ).encode()
            )  # fmt: skip
        batch = batches.create_batch(
            session, department_code=dept.code, client_id=None, body=[b"\n".join(lines)], max_rows=ROWS
        )
        batch_id = batch.id
        ranges = batches.chunks(session, batch_id, CHUNK)
    return batch_id, ranges


def _broker(runtime: Runtime) -> Celery:
    broker = Celery("licence-hub-test-client")  # this process's own app is eager (memory://)
    configure(broker, runtime.settings)
    return broker


def _send_chunks(broker: Celery, batch_id: str, ranges: list[tuple[int, int]]) -> None:
    for first, last in ranges:
        broker.send_task("licences.batch.issue_chunk", kwargs={"batch_id": batch_id, "first": first, "last": last})


def _finish(runtime: Runtime, broker: Celery, batch_id: str, log: Path, seconds: float = 240) -> None:
    """Until no row is pending, send what beat sends every five minutes: re-dispatch batches without progress."""
    deadline = time.monotonic() + seconds
    while (left := _progress(runtime, batch_id))["pending"]:
        assert time.monotonic() < deadline, f"{left}\n{log.read_text()[-3000:]}"
        broker.send_task("licences.batch.redrive")
        time.sleep(2)


def _assert_exactly_once(runtime: Runtime, batch_id: str) -> None:
    """Every row issued once: one licence per row, each with its sealed file."""
    with runtime.session_scope() as session:
        done = batches.progress(session, batch_id)
        licences = session.scalar(select(func.count()).select_from(Licence).where(Licence.batch_id == batch_id))
        distinct = session.scalar(
            select(func.count(func.distinct(Licence.holder_code))).where(Licence.batch_id == batch_id)
        )
        linked = session.scalar(
            select(func.count(func.distinct(LicenceBatchRow.licence_identifier))).where(
                LicenceBatchRow.batch_id == batch_id
            )
        )
        status = batches.get_batch_or_raise(session, batch_id, None).status
        files = list(session.scalars(select(Licence.file_sha256).where(Licence.batch_id == batch_id)))
    assert done == {"pending": 0, "issued": ROWS, "failed": 0}
    assert licences == distinct == linked == ROWS  # one licence per row, none twice
    assert status == "completed"
    assert all(runtime.storage.exists(sha) for sha in files)  # no licence without its file
    assert all(runtime.storage.get(sha).startswith(b"%PDF-") for sha in files[:5])


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(stack: Runtime, tmp_path: Path) -> None:
    runtime = stack
    batch_id, ranges = _seed_batch(runtime)
    assert len(ranges) == ROWS // CHUNK

    broker = _broker(runtime)
    log = tmp_path / "worker.log"
    worker = _worker(log)
    try:
        _send_chunks(broker, batch_id, ranges)
        deadline = time.monotonic() + 120
        while _progress(runtime, batch_id)["issued"] < 30:  # the second transaction group of chunk 1 is open
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        killed_at = _progress(runtime, batch_id)
        assert 0 < killed_at["pending"] < ROWS

        worker = _worker(log)
        _finish(runtime, broker, batch_id, log)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    _assert_exactly_once(runtime, batch_id)


def test_the_object_store_down_mid_batch_delays_it_and_loses_nothing(
    postgres_server: str, own_s3: OwnS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 stopped for ten seconds while the worker issues: rows wait and are retried; none fails, none doubles."""
    with _stack(postgres_server, f"127.0.0.1:{own_s3.port}", tmp_path, monkeypatch) as runtime:
        batch_id, ranges = _seed_batch(runtime)
        broker = _broker(runtime)
        log = tmp_path / "worker.log"
        worker = _worker(log)
        try:
            _send_chunks(broker, batch_id, ranges)
            deadline = time.monotonic() + 120
            while _progress(runtime, batch_id)["issued"] < 20:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
            own_s3.stop()
            time.sleep(10)
            during = _progress(runtime, batch_id)
            own_s3.start()
            _finish(runtime, broker, batch_id, log)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        assert during["pending"] > 0 and during["failed"] == 0  # the outage held rows back, failed none
        _assert_exactly_once(runtime, batch_id)


class OwnRedis:
    """A Redis server of this test's own, configured as the machine's (nothing kept on disk), restartable."""

    def __init__(self, work: Path) -> None:
        self.port, self.work = free_port(), work
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",  # noqa: S607
             "--dir", str(self.work)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url).ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_a_redis_restart_loses_the_queue_and_the_redrive_recovers_it(
    postgres_server: str, s3_endpoint: str, own_redis: OwnRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks queued, Redis restarted (it keeps nothing on disk, so the queue is gone): the redrive re-sends them."""
    with _stack(postgres_server, s3_endpoint, tmp_path, monkeypatch, broker=own_redis.url) as runtime:
        batch_id, ranges = _seed_batch(runtime)
        broker = _broker(runtime)
        _send_chunks(broker, batch_id, ranges)
        queued = redis.Redis.from_url(own_redis.url).llen("celery")
        own_redis.stop()
        own_redis.start()
        assert queued == len(ranges) and redis.Redis.from_url(own_redis.url).llen("celery") == 0  # lost
        time.sleep(3.5)  # HUB_BATCH_STALLED_SECONDS: no progress since the batch was stored
        log = tmp_path / "worker.log"
        worker = _worker(log)
        try:
            _finish(runtime, _broker(runtime), batch_id, log)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        _assert_exactly_once(runtime, batch_id)
