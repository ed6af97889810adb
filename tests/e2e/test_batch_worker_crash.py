"""A batch on the real stack (PostgreSQL + S3 + Redis + a Celery worker) survives a worker killed mid-batch."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from conftest import MASTER_KEY, create_pg_database, drop_pg_database, free_port
from factories import random_uscc
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


@pytest.fixture
def stack(postgres_server: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    name, url = create_pg_database(postgres_server)
    env = {
        "HUB_ENV": "test",
        "HUB_DATA_DIR": str(tmp_path / "var"),
        "HUB_DATABASE_URL": url,
        "HUB_STORAGE_URL": f"s3://testing:testing@{s3_endpoint}/licence-hub-{secrets.token_hex(3)}?secure=false",
        "HUB_BROKER_URL": BROKER,
        "HUB_MASTER_KEY": MASTER_KEY,
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
        "HUB_BROKER_VISIBILITY_TIMEOUT_SECONDS": "5",
        "HUB_BATCH_STALLED_SECONDS": "3",
        "HUB_LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    subprocess.run([sys.executable, "-m", "hub.cli", "init", "--json"], check=True, capture_output=True, timeout=120)
    redis.Redis.from_url(BROKER).flushdb()
    runtime = build_runtime(Settings())
    try:
        yield runtime
    finally:
        runtime.close()
        drop_pg_database(postgres_server, name)


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


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(stack: Runtime, tmp_path: Path) -> None:
    runtime = stack
    batch_id, ranges = _seed_batch(runtime)
    assert len(ranges) == ROWS // CHUNK

    broker = Celery("licence-hub-test-client")  # this process's own app is eager (memory://)
    configure(broker, runtime.settings)
    log = tmp_path / "worker.log"
    worker = _worker(log)
    try:
        for first, last in ranges:
            broker.send_task("licences.batch.issue_chunk", kwargs={"batch_id": batch_id, "first": first, "last": last})
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
        deadline = time.monotonic() + 240
        while (left := _progress(runtime, batch_id))["pending"]:
            assert time.monotonic() < deadline, f"{left}\n{log.read_text()[-3000:]}"
            # what beat runs every five minutes: re-dispatch chunks of a batch without progress
            broker.send_task("licences.batch.redrive")
            time.sleep(2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)

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
        files = list(session.scalars(select(Licence.file_sha256).where(Licence.batch_id == batch_id).limit(5)))
    assert done == {"pending": 0, "issued": ROWS, "failed": 0}
    assert licences == distinct == linked == ROWS  # one licence per row, none twice
    assert status == "completed"
    assert all(runtime.storage.get(sha).startswith(b"%PDF-") for sha in files)  # every row has its sealed file
