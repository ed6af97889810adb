"""Celery tasks of the hub kernel; each takes ids, commits in one place and is safe to repeat."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from catalog import grants as catalog_grants
from hub.audited import integrate_pending
from hub.errors import ServiceUnavailable
from hub.identity.service import purge_spent_assertions
from hub.jobs import celery_app, dispatch
from hub.runtime import Runtime, get_runtime
from hub.webhooks import delivery as webhook_delivery
from hub.webhooks import service as webhooks
from licences import batches, expiry
from seals import ltv
from seals import service as pki
from seals.trust import trust_settings


@celery_app.task(name="hub.identity.purge_spent_assertions")  # type: ignore[untyped-decorator]
def purge_spent_assertions_task() -> int:
    """Delete spent client-assertion ids whose assertions have expired."""
    with get_runtime().session_scope() as session:
        return purge_spent_assertions(session)


@celery_app.task(name="audit.tree.integrate")  # type: ignore[untyped-decorator]
def integrate_audit_log() -> int:
    """Integrate committed audit entries in chunks and publish checkpoints; returns how many."""
    return integrate_pending(get_runtime())


@celery_app.task(name="seals.crl.refresh")  # type: ignore[untyped-decorator]
def refresh_crls() -> int:
    """Re-sign stale CRLs of the hub CAs; returns their CRL numbers' sum (changes when re-signed)."""
    runtime = get_runtime()
    with runtime.session_scope() as session:
        return sum(pki.refresh_crl(session, runtime.master_keys, ca).crl_number for ca in (pki.ROOT, pki.ISSUING))


@celery_app.task(name="seals.document.augment_lta")  # type: ignore[untyped-decorator]
def augment_lta(sha256: str) -> str:
    """B-LTA (ETSI EN 319 142-1 §5.5) for a stored sealed PDF: DSS with CRLs, then a document time-stamp.

    Takes the stored file's sha256 and returns the augmented file's; the input is never overwritten
    (content-addressed storage), so a retry only adds another valid copy.
    """
    runtime = get_runtime()
    with runtime.session_scope() as session:
        trust = trust_settings(session, runtime.extra_trust_roots)
        stamper = pki.get_timestamper(session, runtime.master_keys)
    return runtime.storage.put(ltv.augment_to_lta(runtime.storage.get(sha256), trust, stamper))


@celery_app.task(  # type: ignore[untyped-decorator]
    name="licences.batch.issue_chunk", autoretry_for=(ServiceUnavailable, OperationalError),
    retry_backoff=5, retry_backoff_max=300, max_retries=20,
)  # fmt: skip
def issue_batch_chunk(batch_id: str, first: int, last: int) -> int:
    """Issue the pending rows of one chunk; a redelivered or retried chunk issues only what is still pending."""
    runtime = get_runtime()
    return batches.issue_chunk(runtime.session_scope, runtime.licence_context, batch_id, first, last)


@celery_app.task(name="licences.batch.redrive")  # type: ignore[untyped-decorator]
def redrive_batches() -> int:
    """Re-dispatch the pending chunks of batches without progress (a lost message, a dead worker)."""
    runtime = get_runtime()
    sent = 0
    with runtime.session_scope() as session:
        work = [
            (b, batches.dispatch_ranges(session, b, runtime.settings.batch_chunk_rows))
            for b in batches.stalled(session, after_seconds=runtime.settings.batch_stalled_seconds)
        ]
    for batch_id, ranges in work:
        for first, last in ranges:
            dispatch(runtime.settings, "licences.batch.issue_chunk", batch_id=batch_id, first=first, last=last)
            sent += 1
    return sent


@celery_app.task(name="licences.expiry.run")  # type: ignore[untyped-decorator]
def run_expiry() -> dict[str, int]:
    """Expire licences past validity and send the 30/7/1-day reminders (each once)."""
    runtime = get_runtime()
    report = expiry.run(
        runtime.session_scope, runtime.licence_context, notify_issuer(runtime),
        reminder_days=runtime.settings.expiry_reminder_days,
    )  # fmt: skip
    return {"expired": report.expired, "reminded": report.reminded}


def notify_issuer(runtime: Runtime) -> expiry.IssuerNotifier:
    """Issuer notices go out through the department's registered webhooks (hub.webhooks), after commit."""

    def send(session: Session, **event: Any) -> None:
        webhooks.emit(session, runtime.settings, **event)

    return send


@celery_app.task(name="hub.webhooks.deliver")  # type: ignore[untyped-decorator]
def deliver_webhook(delivery_id: str) -> str:
    """One attempt of a webhook delivery; returns its status. The row's state makes a repeat harmless.

    Distributed mode queues the next attempt with a countdown; the embedded default leaves it to the
    redrive job (nothing sleeps in-process).
    """
    runtime = get_runtime()

    def later(countdown: float) -> None:
        deliver_webhook.apply_async(kwargs={"delivery_id": delivery_id}, countdown=countdown)

    return webhook_delivery.deliver(runtime, delivery_id, schedule_retry=None if runtime.settings.is_eager else later)


@celery_app.task(name="hub.webhooks.redrive")  # type: ignore[untyped-decorator]
def redrive_webhooks() -> int:
    """Dispatch every due pending delivery (retries, lost messages, expired leases); returns how many."""
    runtime = get_runtime()
    due = webhook_delivery.due_deliveries(runtime)
    for delivery_id in due:
        dispatch(runtime.settings, "hub.webhooks.deliver", delivery_id=delivery_id)
    return len(due)


@celery_app.task(name="catalog.grants.expire")  # type: ignore[untyped-decorator]
def expire_grants() -> int:
    """Mark grants past their validity window expired and notify their consumers; returns how many."""
    runtime = get_runtime()
    return catalog_grants.expire_due(runtime.session_scope, runtime.settings, lambda: runtime.audit_signer)
