"""The Celery app: Redis in distributed mode, in-process execution in the embedded default."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import Celery, Signature
from celery.exceptions import Retry
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from hub.settings import Settings

log = logging.getLogger(__name__)

# Periodic jobs in one place: Celery beat runs them in distributed mode and the in-process
# scheduler (hub.scheduler) in the embedded default. name -> interval in seconds.
PERIODIC_JOBS: dict[str, float] = {
    "hub.identity.purge_spent_assertions": 3600.0,
    "audit.tree.integrate": Settings().audit_checkpoint_interval_seconds,
    "seals.crl.refresh": 3600.0,  # re-signs a CRL once it is a day old (nextUpdate is a week)
    "licences.expiry.run": 3600.0,  # expire licences past validity; send 30/7/1-day reminders once
    "licences.batch.redrive": 300.0,  # re-dispatch chunks of batches that stopped making progress
    "hub.webhooks.redrive": 60.0,  # due webhook retries and lost delivery messages, in every mode
    "catalog.grants.expire": 900.0,  # mark grants past valid_until expired (the grant check never trusts status alone)
}


def configure(app: Celery, settings: Settings) -> None:
    eager = settings.is_eager
    app.conf.update(
        broker_url=settings.broker_url,
        result_backend=settings.result_backend_url or (None if eager else settings.broker_url),
        task_always_eager=eager,
        task_eager_propagates=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A task is acknowledged after it ran, so a killed worker's task is redelivered;
        # tasks check state first, so running twice is harmless (STYLE.md, GOV.UK Notify).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_seconds},
        timezone="UTC",
        beat_schedule={name: {"task": name, "schedule": every} for name, every in PERIODIC_JOBS.items()},
    )


celery_app = Celery("licence-hub", include=["hub.tasks"])
configure(celery_app, Settings())

# Embedded mode without a broker: a small pool so a request that starts a long job (a batch of
# 100 k licences) answers at once. Two threads, like the two Celery workers of the reference setup.
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hub-job")
_PENDING = "hub.jobs.pending"
_MIN_RETRY_DELAY_S = 1.0  # Celery's full-jitter backoff can say 0 s: never spin on a lock


def registered(name: str) -> Any:
    """The Celery task ``name``; hub.tasks registers its tasks on first use in API processes."""
    if name not in celery_app.tasks:
        celery_app.loader.import_default_modules()
    return celery_app.tasks[name]


def dispatch(settings: Settings, name: str, **kwargs: Any) -> None:
    """Run task ``name`` now: queued on the broker, on the in-process pool, or inline (tests)."""
    task = registered(name)
    if not settings.is_eager:
        task.apply_async(kwargs=kwargs)
    elif settings.inline_jobs:
        task.apply(kwargs=kwargs, throw=True)
    else:
        _pool.submit(_run_logged, name, kwargs)


def _run_logged(name: str, kwargs: dict[str, Any], retry: Signature | None = None) -> None:
    try:
        if retry is None:
            celery_app.tasks[name].apply(kwargs=kwargs, throw=True)
        else:
            retry.apply(throw=True)
    except Retry as again:
        # A task's autoretry (a locked SQLite database, the object store down) raises Retry in eager mode
        # instead of queueing the retry as a worker would, so the runner does it: the same countdown and the
        # same max_retries (the signature carries the retry count). Without this a chunk of a batch that
        # met "database is locked" waited for the redrive (5 minutes or more) although the lock was gone in
        # seconds: the whole-system benchmark found it.
        delay = max(_MIN_RETRY_DELAY_S, float(again.when)) if isinstance(again.when, int | float) else 5.0
        log.warning(
            "in-process job will retry", extra={"job": name, "in_seconds": delay, "error": type(again.exc).__name__}
        )
        timer = threading.Timer(delay, _pool.submit, args=(_run_logged, name, kwargs, again.sig))
        timer.daemon = True
        timer.start()
    except Exception:
        # The job's own state (batch rows, delivery rows) says what is left; the scheduler or an
        # operator re-drives it. Nothing a thread raises can reach a caller, so it is logged here.
        log.exception("in-process job failed", extra={"job": name})


def after_commit(session: Session, settings: Settings, name: str, **kwargs: Any) -> None:
    """Dispatch ``name`` once ``session`` commits (DESIGN.md §2: side effects after commit), never on rollback.

    The job remembers the (sub)transaction it was queued in: rolling back a SAVEPOINT drops only the jobs
    queued inside it, and releasing one sends nothing (the work is durable only at the outermost commit).
    """
    queued_in = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((queued_in, settings, name, kwargs))


_AFTER_CLOSE = "hub.jobs.after_close"


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # SQLAlchemy fires after_commit on a SAVEPOINT release too; the work is not durable yet
    for _queued_in, settings, name, kwargs in session.info.pop(_PENDING, []):
        if settings.is_eager and settings.inline_jobs:
            # Inline jobs open their own sessions: run them once this one is closed, not inside its commit.
            session.info.setdefault(_AFTER_CLOSE, []).append((settings, name, kwargs))
        else:
            dispatch(settings, name, **kwargs)


def run_after_close(session: Session) -> None:
    """Run the inline jobs a closed session committed (``Runtime.session_scope`` calls this)."""
    for settings, name, kwargs in session.info.pop(_AFTER_CLOSE, []):
        dispatch(settings, name, **kwargs)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous: SessionTransaction) -> None:
    """Forget the jobs queued inside the (sub)transaction that rolled back, keep its parents' jobs."""
    if previous.parent is None:
        session.info.pop(_PENDING, None)
        return
    session.info[_PENDING] = [job for job in session.info.get(_PENDING, []) if not _within(job[0], previous)]


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
