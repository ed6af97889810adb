"""One webhook delivery attempt: claim the row, POST the signed CloudEvent, record and audit the outcome.

An attempt is three steps so that no database lock is held while a receiver answers: a short
transaction claims the attempt (row locked, state checked, ``next_attempt_at`` moved past the
attempt's timeout as a lease), the POST runs outside any transaction, and a second short
transaction records the outcome with its audit entry. A delivered or dead row, or one whose lease
is still running, is never sent, so a redelivered Celery message or a concurrent redrive is harmless.
A crash between the POST and the record lets the lease run out and the attempt is repeated: the
receiver sees the same ``webhook-id`` and dedupes (at-least-once, as Standard Webhooks expects).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audited
from hub.clock import utcnow
from hub.runtime import Runtime
from hub.webhooks import service
from hub.webhooks.errors import WebhookDeliveryNotFound
from hub.webhooks.models import DEAD, DELIVERED, PENDING, WebhookDelivery, WebhookEndpoint, WebhookEvent
from hub.webhooks.signing import headers_for, verify_signature

__all__ = ["BACKOFF_SECONDS", "MAX_ATTEMPTS", "deliver", "due_deliveries", "verify_signature"]

# Waits after failed attempts 1–5; the 6th failure is final. About 7 h 12 min in all, long enough
# to ride out a receiver's maintenance window, short enough that admins see dead letters the same day.
BACKOFF_SECONDS = (30, 120, 600, 3600, 21600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
CONNECT_TIMEOUT_SECONDS = 3.0
TOTAL_TIMEOUT_SECONDS = 10.0
# The lease of the last attempt (no backoff follows it): longer than the total timeout.
LAST_ATTEMPT_LEASE_SECONDS = 60
CONTENT_TYPE = "application/cloudevents+json"  # CloudEvents HTTP binding §3.2 structured mode
USER_AGENT = "licence-hub-webhooks/1"
ATTEMPTED = "webhook.delivery.attempted"
ABANDONED = "webhook.delivery.abandoned"

RetryScheduler = Callable[[float], None]


@dataclass(frozen=True)
class _Claim:
    delivery_id: str
    attempt: int
    event_id: str
    department_code: str
    endpoint_id: str
    url: str
    body: bytes
    key: bytes


@dataclass(frozen=True)
class _Answer:
    status_code: int | None
    error_code: str | None  # stable, for the audit entry
    error: str | None  # short, secret-free, for admins

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _lease(attempt: int) -> timedelta:
    seconds = BACKOFF_SECONDS[attempt - 1] if attempt <= len(BACKOFF_SECONDS) else LAST_ATTEMPT_LEASE_SECONDS
    return timedelta(seconds=seconds)


def deliver(runtime: Runtime, delivery_id: str, *, schedule_retry: RetryScheduler | None = None) -> str:
    """Make one attempt if the delivery is due; returns its status afterwards (pending, delivered, dead).

    ``schedule_retry(countdown)`` is called after a failed attempt that leaves the delivery pending
    (distributed mode queues the next attempt with a countdown); without it, the redrive job finds the
    delivery once it is due. Nothing here sleeps.
    """
    with runtime.session_scope() as session:
        claimed = _claim(session, runtime, delivery_id)
    if isinstance(claimed, str):
        return claimed
    answer = _post(claimed)
    with runtime.session_scope() as session:
        status, retry_at = _record(session, runtime, claimed, answer)
    if status == PENDING and retry_at is not None and schedule_retry is not None:
        schedule_retry(max(0.0, (retry_at - utcnow()).total_seconds()))
    return status


def _locked(session: Session, delivery_id: str) -> WebhookDelivery:
    # FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE transaction already holds the single write lock.
    stmt = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    delivery = session.scalars(stmt).one_or_none()
    if delivery is None:
        raise WebhookDeliveryNotFound(f"no webhook delivery with id {delivery_id}")
    return delivery


def _claim(session: Session, runtime: Runtime, delivery_id: str) -> _Claim | str:
    delivery = _locked(session, delivery_id)
    now = utcnow()
    if delivery.status != PENDING:
        return delivery.status  # delivered or dead: never sent again
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return PENDING  # backing off, or another worker holds this attempt's lease
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    event = session.get(WebhookEvent, delivery.event_pk)
    if endpoint is None or event is None or not endpoint.active:
        return _abandon(session, runtime, delivery, "endpoint disabled", "webhook_endpoint_disabled")
    if delivery.attempts >= MAX_ATTEMPTS:
        # The last attempt's lease ran out without a recorded answer (a worker died mid-POST).
        return _abandon(session, runtime, delivery, "no answer recorded for the last attempt", "webhook_attempt_lost")
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.next_attempt_at = now + _lease(delivery.attempts)
    delivery.updated_at = now
    session.flush()
    return _Claim(
        delivery_id=delivery.id, attempt=delivery.attempts, event_id=event.event_id,
        department_code=endpoint.department_code, endpoint_id=endpoint.id, url=endpoint.url, body=event.body,
        key=service.endpoint_key(runtime.master_keys, endpoint),
    )  # fmt: skip


def _abandon(session: Session, runtime: Runtime, delivery: WebhookDelivery, error: str, error_code: str) -> str:
    event = session.get(WebhookEvent, delivery.event_pk)
    delivery.status = DEAD
    delivery.next_attempt_at = None
    delivery.last_error = error
    delivery.updated_at = utcnow()
    extra = {
        "delivery_id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": event.event_id if event is not None else "",
        "attempt": str(delivery.attempts),
    }
    audited.record(
        session, runtime,
        audited.event(
            action=ABANDONED, outcome="failed", actor_type="system", actor="system", error_code=error_code, extra=extra
        ),
    )  # fmt: skip
    return DEAD


def _post(claim: _Claim) -> _Answer:
    """POST the stored bytes with fresh Standard Webhooks headers; redirects are answers, not followed."""
    headers = {
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
        **headers_for(claim.key, claim.event_id, claim.body),
    }
    try:
        status_code = asyncio.run(_send(claim.url, claim.body, headers))
    except httpx.HTTPError as exc:
        return _failure(exc)
    except httpx.InvalidURL:  # not an HTTPError; registration checks this too, so only old rows get here
        return _Answer(None, "webhook_url_invalid", "the URL is not a valid HTTP URL")
    except TimeoutError:  # asyncio.timeout: the whole exchange took too long
        return _Answer(None, "webhook_timeout", f"no answer within {TOTAL_TIMEOUT_SECONDS:g} s")
    if 200 <= status_code < 300:
        return _Answer(status_code, None, None)
    if 300 <= status_code < 400:
        return _Answer(status_code, "webhook_http_status", f"HTTP {status_code}: redirects are not followed")
    return _Answer(status_code, "webhook_http_status", f"HTTP {status_code}")


def _failure(exc: httpx.HTTPError) -> _Answer:
    if isinstance(exc, httpx.ConnectTimeout):
        return _Answer(None, "webhook_timeout", "connect timed out")
    if isinstance(exc, httpx.TimeoutException):
        return _Answer(None, "webhook_timeout", f"no answer within {TOTAL_TIMEOUT_SECONDS:g} s")
    if isinstance(exc, httpx.ConnectError):
        return _Answer(None, "webhook_connect_failed", "connection failed")
    # The class name only: exception texts can repeat the URL, whose query may hold a receiver token.
    return _Answer(None, "webhook_transport_error", f"transport error ({type(exc).__name__})")


async def _send(url: str, body: bytes, headers: dict[str, str]) -> int:
    # httpx timeouts are per operation; asyncio.timeout bounds the whole exchange, so a receiver that
    # drip-feeds its headers cannot hold a worker past TOTAL_TIMEOUT_SECONDS.
    timeout = httpx.Timeout(TOTAL_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    async with (
        asyncio.timeout(TOTAL_TIMEOUT_SECONDS),
        httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
        client.stream("POST", url, content=body, headers=headers) as response,
    ):
        return response.status_code  # the body is never read: only the status matters


def _record(session: Session, runtime: Runtime, claim: _Claim, answer: _Answer) -> tuple[str, datetime | None]:
    delivery = _locked(session, claim.delivery_id)
    now = utcnow()
    if delivery.status == PENDING:
        delivery.last_status_code = answer.status_code
        delivery.last_error = answer.error
        delivery.updated_at = now
        if answer.ok:
            delivery.status = DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = DEAD
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + _lease(delivery.attempts)
    extra = {
        "delivery_id": claim.delivery_id,
        "endpoint_id": claim.endpoint_id,
        "event_id": claim.event_id,
        "recipient_department": claim.department_code,
        "attempt": str(claim.attempt),
        "status_code": str(answer.status_code) if answer.status_code is not None else "none",
    }
    audited.record(
        session, runtime,
        audited.event(
            action=ATTEMPTED, outcome="ok" if answer.ok else "failed", actor_type="system", actor="system",
            error_code=answer.error_code, extra=extra,
        ),
    )  # fmt: skip
    session.flush()
    return delivery.status, delivery.next_attempt_at


def due_deliveries(runtime: Runtime, *, limit: int = 1000) -> list[str]:
    """Ids the redrive job dispatches: pending and due (retries, lost messages, expired leases)."""
    with runtime.session_scope() as session:
        return service.due_deliveries(session, limit=limit)
