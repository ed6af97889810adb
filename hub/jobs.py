"""The Celery app: Redis in distributed mode, eager in-process execution in the embedded default."""

from __future__ import annotations

from celery import Celery

from hub.settings import Settings

# Periodic jobs in one place: Celery beat runs them in distributed mode and the in-process
# scheduler (hub.scheduler) in the embedded default. name -> interval in seconds.
PERIODIC_JOBS: dict[str, float] = {
    "hub.identity.purge_spent_assertions": 3600.0,
    "audit.tree.integrate": Settings().audit_checkpoint_interval_seconds,
    "seals.crl.refresh": 3600.0,  # re-signs a CRL once it is a day old (nextUpdate is a week)
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
        timezone="UTC",
        beat_schedule={name: {"task": name, "schedule": every} for name, every in PERIODIC_JOBS.items()},
    )


celery_app = Celery("licence-hub", include=["hub.tasks"])
configure(celery_app, Settings())
