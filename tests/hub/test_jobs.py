"""Celery jobs: a real worker over Redis, eager mode, the in-process scheduler and the periodic job list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.result import EagerResult
from conftest import MASTER_KEY, stop_process
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import hub.jobs
import hub.tasks
from hub.clock import utcnow
from hub.db import make_session_factory
from hub.identity.models import UsedAssertion
from hub.runtime import Runtime, set_runtime
from hub.scheduler import InProcessScheduler
from hub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = "redis://127.0.0.1:6379/15"
PURGE = "hub.identity.purge_spent_assertions"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(extra)
    return env


def _rows(session_factory: sessionmaker[Session], client_id: str) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(UsedAssertion.jti).where(UsedAssertion.client_id == client_id)))


@pytest.fixture
def redis_broker() -> Iterator[redis.Redis]:
    """The machine's real Redis; the test fails (never skips) without it."""
    client = redis.Redis.from_url(BROKER_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required at {BROKER_URL}: {exc}")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def producer() -> Iterator[Celery]:
    """A separate Celery app in this process, configured by hub.jobs.configure for the Redis broker."""
    app = Celery("licence-hub-test", set_as_current=False)
    hub.jobs.configure(app, Settings(broker_url=BROKER_URL, master_key=MASTER_KEY, env="test"))
    try:
        yield app
    finally:
        app.close()


# ----------------------------------------------------------------------------- distributed mode


@pytest.mark.slow
def test_real_worker_runs_the_purge_task(
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    redis_broker: redis.Redis,
    producer: Celery,
) -> None:
    """A task sent through Redis is run by a real ``celery worker`` against the real database."""
    assert producer.conf.task_always_eager is False
    assert producer.conf.result_backend == BROKER_URL
    client_id = f"test-{uuid.uuid4().hex[:12]}"
    queue = f"licence-hub-test-{uuid.uuid4().hex}"
    sessions = make_session_factory(engine)
    now = utcnow()
    log_path = tmp_path / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    with sessions() as session:
        session.add_all(
            [
                UsedAssertion(client_id=client_id, jti="expired", expires_at=now - timedelta(hours=1)),
                UsedAssertion(client_id=client_id, jti="future", expires_at=now + timedelta(hours=1)),
            ]
        )
        session.commit()
    try:
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "hub.jobs:celery_app",
                    "worker",
                    "--pool=solo",
                    "--concurrency=1",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "-n",
                    f"test-{uuid.uuid4().hex[:8]}@%h",
                    "-Q",
                    queue,
                ],
                cwd=ROOT,
                env=_clean_env(
                    HUB_BROKER_URL=BROKER_URL,
                    HUB_DATABASE_URL=database_url,
                    HUB_MASTER_KEY=MASTER_KEY,
                    HUB_ENV="test",
                    HUB_DATA_DIR=str(tmp_path / "var"),
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        result = producer.send_task(PURGE, queue=queue)
        try:
            purged = result.get(timeout=60)
        except Exception:  # noqa: BLE001 - whatever went wrong, the worker's log says why
            stop_process(worker)
            pytest.fail(f"the worker did not run the task; its log:\n{log_path.read_text(errors='replace')}")
        finally:
            result.forget()
        assert purged == 1
        assert _rows(sessions, client_id) == ["future"]
        assert worker.poll() is None, "the worker must still be running after the task"
    finally:
        if worker is not None:
            stop_process(worker)
        redis_broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        with sessions() as session:
            session.execute(delete(UsedAssertion).where(UsedAssertion.client_id == client_id))
            session.commit()
    log_text = log_path.read_text(errors="replace")
    assert PURGE in log_text  # registered and received by the worker (from `include=["hub.tasks"]`)
    assert "succeeded" in log_text


# ----------------------------------------------------------------------------- embedded (eager) mode


def _import_celery_app_with(broker_url: str) -> dict[str, object]:
    code = (
        "import json; from hub.jobs import celery_app as a; "
        "print(json.dumps({'eager': a.conf.task_always_eager, 'broker': a.conf.broker_url, "
        "'backend': a.conf.result_backend}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_clean_env(HUB_BROKER_URL=broker_url),
        capture_output=True,
        check=True,
        timeout=60,
    )
    loaded: dict[str, object] = json.loads(done.stdout)
    return loaded


def test_celery_app_is_configured_from_the_environment_at_import() -> None:
    assert _import_celery_app_with("memory://") == {"eager": True, "broker": "memory://", "backend": None}
    assert _import_celery_app_with(BROKER_URL) == {"eager": False, "broker": BROKER_URL, "backend": BROKER_URL}


def test_memory_broker_configures_eager_execution() -> None:
    app = Celery("licence-hub-test", set_as_current=False)
    try:
        hub.jobs.configure(app, Settings(broker_url="memory://"))
        assert app.conf.task_always_eager is True
        assert app.conf.task_eager_propagates is True
        assert app.conf.result_backend is None
        assert set(app.conf.beat_schedule) == set(hub.jobs.PERIODIC_JOBS)
    finally:
        app.close()


def test_eager_purge_runs_inline(runtime: Runtime) -> None:
    app = Celery("licence-hub-test", set_as_current=False)
    hub.jobs.configure(app, Settings(broker_url="memory://"))
    # The real task body, registered on the eager test app under its real name.
    task = app.task(name=PURGE)(hub.tasks.purge_spent_assertions_task.run)
    client_id = f"test-{uuid.uuid4().hex[:12]}"
    now = utcnow()
    with runtime.session_scope() as session:
        session.add_all(
            [
                UsedAssertion(client_id=client_id, jti="expired-1", expires_at=now - timedelta(minutes=5)),
                UsedAssertion(client_id=client_id, jti="expired-2", expires_at=now - timedelta(days=2)),
                UsedAssertion(client_id=client_id, jti="future", expires_at=now + timedelta(minutes=5)),
            ]
        )
    set_runtime(runtime)
    try:
        result = task.apply_async()
        # Already done when apply_async returns: no broker, no worker, this thread.
        assert _rows(runtime.session_factory, client_id) == ["future"]
    finally:
        set_runtime(None)
        app.close()
    assert isinstance(result, EagerResult)
    assert result.successful()
    assert result.get() == 2


# ----------------------------------------------------------------------------- in-process scheduler


def test_in_process_scheduler_runs_jobs_on_its_thread(runtime: Runtime) -> None:
    assert hub.jobs.celery_app.conf.task_always_eager, "this process must run with the memory:// broker"
    client_id = f"test-{uuid.uuid4().hex[:12]}"
    with runtime.session_scope() as session:
        session.add(UsedAssertion(client_id=client_id, jti="expired", expires_at=utcnow() - timedelta(minutes=1)))
    scheduler = InProcessScheduler(jobs={PURGE: 0.05}, tick_seconds=0.01)
    set_runtime(runtime)
    try:
        scheduler.start()
        deadline = time.monotonic() + 5
        while scheduler.runs[PURGE] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.stop()
        set_runtime(None)
    assert scheduler.runs[PURGE] >= 2
    assert scheduler._thread is not None
    assert not scheduler._thread.is_alive()
    assert _rows(runtime.session_factory, client_id) == []


def test_a_fresh_api_process_finds_every_periodic_job() -> None:
    """A `licence-hub serve` process has not imported hub.tasks when its scheduler first ticks (this one has)."""
    code = (
        "import hub.jobs, hub.scheduler\n"
        "assert 'hub.tasks' not in __import__('sys').modules\n"
        "print(sorted(hub.jobs.registered(name).name for name in hub.jobs.PERIODIC_JOBS))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted(hub.jobs.PERIODIC_JOBS))


def test_in_process_scheduler_respects_the_interval(runtime: Runtime) -> None:
    scheduler = InProcessScheduler(jobs={PURGE: 60.0}, tick_seconds=0.01)
    set_runtime(runtime)
    try:
        scheduler.start()
        time.sleep(0.3)
    finally:
        scheduler.stop()
        set_runtime(None)
    assert scheduler.runs == {PURGE: 1}  # once at start, not again within the minute


def test_in_process_scheduler_survives_a_failing_job(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = InProcessScheduler(jobs={"hub.no.such.task": 0.02, PURGE: 0.02}, tick_seconds=0.01)
    set_runtime(runtime)
    try:
        scheduler.start()
        deadline = time.monotonic() + 5
        while scheduler.runs[PURGE] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.stop()
        set_runtime(None)
    assert scheduler.runs[PURGE] >= 3
    assert scheduler.runs["hub.no.such.task"] == 0
    assert any(r.getMessage() == "periodic job failed" for r in caplog.records)


def test_default_scheduler_runs_the_periodic_jobs() -> None:
    assert InProcessScheduler().jobs == hub.jobs.PERIODIC_JOBS


# ----------------------------------------------------------------------------- periodic jobs


def test_every_periodic_job_is_a_registered_task() -> None:
    assert hub.jobs.PERIODIC_JOBS
    registered = set(hub.jobs.celery_app.tasks)
    for name in hub.jobs.PERIODIC_JOBS:
        assert name in registered
        assert hub.jobs.celery_app.tasks[name].name == name
    assert {e["task"] for e in hub.jobs.celery_app.conf.beat_schedule.values()} == set(hub.jobs.PERIODIC_JOBS)
    assert all(every > 0 for every in hub.jobs.PERIODIC_JOBS.values())


def test_jobs_wait_for_the_real_commit_not_a_savepoint(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(hub.jobs, "dispatch", lambda _settings, name, **_kw: sent.append(name))
    settings = Settings(broker_url="redis://127.0.0.1:6379/15")  # not eager: dispatch at commit
    session = runtime.session_factory()
    try:
        hub.jobs.after_commit(session, settings, PURGE)
        with session.begin_nested():  # releasing a SAVEPOINT fires SQLAlchemy's after_commit too
            pass
        assert sent == []
        session.rollback()
        assert sent == []  # rolled back: never sent
        hub.jobs.after_commit(session, settings, PURGE)
        session.commit()
        assert sent == [PURGE]
    finally:
        session.close()


def test_a_savepoint_rollback_drops_only_its_own_jobs(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(hub.jobs, "dispatch", lambda _settings, name, **_kw: sent.append(name))
    settings = Settings(broker_url="redis://127.0.0.1:6379/15")
    session = runtime.session_factory()
    try:
        session.execute(select(1))
        hub.jobs.after_commit(session, settings, "outer")
        savepoint = session.begin_nested()
        hub.jobs.after_commit(session, settings, "inside-failed-savepoint")
        savepoint.rollback()  # e.g. one failed row of a batch chunk
        with session.begin_nested():
            hub.jobs.after_commit(session, settings, "inside-released-savepoint")
        session.commit()
        assert sent == ["outer", "inside-released-savepoint"]
    finally:
        session.close()


# ----------------------------------------------------------------------------- in-process retries


def _flaky_task(failures: int, max_retries: int) -> tuple[str, list[float]]:
    """A task on the hub's eager app failing ``failures`` times with a retryable error, then succeeding."""
    name = f"tests.flaky.{uuid.uuid4().hex[:8]}"
    calls: list[float] = []

    def run() -> int:
        calls.append(time.monotonic())
        if len(calls) <= failures:
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        return len(calls)

    hub.jobs.celery_app.task(
        name=name, autoretry_for=(OperationalError,), retry_backoff=False, default_retry_delay=0,
        max_retries=max_retries,
    )(run)  # fmt: skip
    return name, calls


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)


def test_an_in_process_job_is_retried_like_a_worker_would(caplog: pytest.LogCaptureFixture) -> None:
    """Eager Celery hands a retry back instead of queueing it; the in-process runner queues it itself."""
    name, calls = _flaky_task(failures=2, max_retries=5)
    settings = Settings(broker_url="memory://", inline_jobs=False)
    with caplog.at_level("WARNING", logger="hub.jobs"):
        hub.jobs.dispatch(settings, name)
        _wait_for(lambda: len(calls) >= 3, 15)
    assert len(calls) == 3, "two retries, then the job succeeded"
    assert calls[1] - calls[0] >= 0.9 and calls[2] - calls[1] >= 0.9, "never spins: at least a second apart"
    assert [r.getMessage() for r in caplog.records if r.name == "hub.jobs"] == ["in-process job will retry"] * 2
    del hub.jobs.celery_app.tasks[name]


def test_an_in_process_job_gives_up_after_its_max_retries(caplog: pytest.LogCaptureFixture) -> None:
    name, calls = _flaky_task(failures=10, max_retries=1)
    settings = Settings(broker_url="memory://", inline_jobs=False)
    with caplog.at_level("WARNING", logger="hub.jobs"):
        hub.jobs.dispatch(settings, name)
        _wait_for(lambda: any(r.getMessage() == "in-process job failed" for r in caplog.records), 15)
        time.sleep(1.5)  # no further attempt is scheduled
    assert len(calls) == 2, "the first run and one retry"
    messages = [r.getMessage() for r in caplog.records if r.name == "hub.jobs"]
    assert messages == ["in-process job will retry", "in-process job failed"]
    del hub.jobs.celery_app.tasks[name]
