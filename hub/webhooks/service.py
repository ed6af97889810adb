"""Webhook use cases: register and disable endpoints, emit CloudEvents into the outbox, list and redrive deliveries.

Services flush, never commit: an event is written in the transaction of the change it reports and its
deliveries are dispatched only after that transaction commits (DESIGN.md §2), so a rolled-back change
sends nothing.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.jobs import after_commit
from hub.keys.masterkey import MasterKeyRing
from hub.settings import Settings
from hub.webhooks.errors import (
    WebhookDeliveryNotDead,
    WebhookDeliveryNotFound,
    WebhookEndpointDisabled,
    WebhookEndpointLimit,
    WebhookEndpointNotFound,
    WebhookEventInvalid,
    WebhookTypesInvalid,
    WebhookUrlInvalid,
)
from hub.webhooks.models import DEAD, PENDING, WebhookDelivery, WebhookEndpoint, WebhookEvent
from hub.webhooks.signing import new_secret

DELIVER_TASK = "hub.webhooks.deliver"
MAX_ENDPOINTS_PER_DEPARTMENT = 20
MAX_TYPES = 32
MAX_BODY_BYTES = 256 * 1024  # a notice names a licence; documents are fetched, never pushed
# CloudEvents 1.0 §3.1.1 recommends reverse-DNS type names: lower-case labels joined by dots.
_TYPE = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$")
# The id travels in the webhook-id header as well, so it is a token without spaces or line breaks.
_EVENT_ID = re.compile(r"^[A-Za-z0-9._:@+/=-]{1,200}$")
_LOCAL_HOSTNAMES = frozenset({"localhost", "localhost.localdomain"})


def _secret_aad(endpoint_id: str) -> bytes:
    # Binds the ciphertext to its row: a secret copied onto another endpoint does not decrypt.
    return f"licence-hub webhook secret\x00{endpoint_id}".encode()


# ----------------------------------------------------------------------------- endpoints


def validate_url(settings: Settings, url: str) -> str:
    """The URL deliveries go to, or ``WebhookUrlInvalid`` saying what is allowed.

    Outside dev/demo/test only https (the body names licences and the signature alone does not hide
    it); never userinfo (credentials would sit in the database and in logs); never loopback,
    link-local or unspecified addresses in production (the hub's own services and cloud metadata).
    """
    parts = _parse_url(url)
    allowed = ("https", "http") if settings.is_development else ("https",)
    if parts.scheme not in allowed:
        raise WebhookUrlInvalid(f"the URL scheme must be {' or '.join(allowed)}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookUrlInvalid("the URL may not carry a user name or password; the hub signs each delivery")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookUrlInvalid("the URL has no host")
    if parts.fragment:
        raise WebhookUrlInvalid("the URL may not have a fragment")
    if not settings.is_development and _is_local(host):
        raise WebhookUrlInvalid("the URL may not point at a loopback, link-local or unspecified address")
    return url


def _parse_url(url: str) -> SplitResult:
    """Parsed as both the standard library and httpx (which sends it) parse it, or refused."""
    if len(url) > 2048:
        raise WebhookUrlInvalid("the URL is longer than 2048 characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise WebhookUrlInvalid("the URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.Request("POST", url)  # IDNA host, percent-encoding: what the delivery will send
    except (ValueError, httpx.InvalidURL) as exc:
        raise WebhookUrlInvalid("the URL cannot be parsed") from exc
    if port == 0:
        raise WebhookUrlInvalid("the URL port must be 1–65535")
    return parts


def _is_local(host: str) -> bool:
    if host.lower() in _LOCAL_HOSTNAMES or host.lower().endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a DNS name is checked by name only; its addresses are not resolved here
    return address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast


def validate_types(types: Sequence[str]) -> list[str]:
    """The event type filter, de-duplicated in order; empty means every type."""
    if len(types) > MAX_TYPES:
        raise WebhookTypesInvalid(f"at most {MAX_TYPES} event types per endpoint")
    for value in types:
        if len(value) > 128 or not _TYPE.fullmatch(value):
            raise WebhookTypesInvalid("event types are reverse-DNS names such as cn.gov.licence-hub.licence.expiring")
    return list(dict.fromkeys(types))


def register_endpoint(
    session: Session, settings: Settings, ring: MasterKeyRing, *, department_code: str, url: str, types: Sequence[str]
) -> tuple[WebhookEndpoint, str]:
    """Register ``url`` for ``department_code``; returns the endpoint and its secret, which is never shown again."""
    checked_url = validate_url(settings, url)
    checked_types = validate_types(types)
    count = len(list_endpoints(session, department_code))
    if count >= MAX_ENDPOINTS_PER_DEPARTMENT:
        raise WebhookEndpointLimit(
            f"a department may have {MAX_ENDPOINTS_PER_DEPARTMENT} active endpoints; disable one first"
        )
    endpoint_id = secrets.token_hex(16)
    secret, key = new_secret()
    master_kid, blob = ring.encrypt(key, _secret_aad(endpoint_id))
    endpoint = WebhookEndpoint(
        id=endpoint_id, department_code=department_code, url=checked_url, types=checked_types,
        master_kid=master_kid, encrypted_secret=blob, active=True, created_at=utcnow(), disabled_at=None,
    )  # fmt: skip
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def endpoint_key(ring: MasterKeyRing, endpoint: WebhookEndpoint) -> bytes:
    """The endpoint's raw HMAC key, decrypted for one delivery attempt."""
    return ring.decrypt(endpoint.master_kid, endpoint.encrypted_secret, _secret_aad(endpoint.id))


def rewrap_secrets(session: Session, ring: MasterKeyRing) -> int:
    """Re-encrypt every endpoint secret not under ``ring.current_id`` (master key rotation)."""
    rows = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.master_kid != ring.current_id).with_for_update()
    ).all()
    for row in rows:
        row.master_kid, row.encrypted_secret = ring.encrypt(endpoint_key(ring, row), _secret_aad(row.id))
    session.flush()
    return len(rows)


def list_endpoints(session: Session, department_code: str) -> list[WebhookEndpoint]:
    """The department's active endpoints, oldest first."""
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.department_code == department_code, WebhookEndpoint.active.is_(True))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list(session.scalars(stmt))


def get_endpoint_or_raise(session: Session, endpoint_id: str, *, department_code: str) -> WebhookEndpoint:
    """The department's own endpoint; another department's gets the same 404 as a missing one (no IDOR)."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.department_code != department_code:
        raise WebhookEndpointNotFound(f"no webhook endpoint with id {endpoint_id}")
    return endpoint


def disable_endpoint(session: Session, *, department_code: str, endpoint_id: str) -> WebhookEndpoint:
    """Stop sending to an endpoint; its pending deliveries become dead letters ("endpoint disabled").

    Disabling twice is a no-op, so a retried DELETE succeeds.
    """
    endpoint = get_endpoint_or_raise(session, endpoint_id, department_code=department_code)
    if endpoint.active:
        now = utcnow()
        endpoint.active = False
        endpoint.disabled_at = now
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING)
            .values(status=DEAD, next_attempt_at=None, last_error="endpoint disabled", updated_at=now)
        )
        session.flush()
    return endpoint


# ----------------------------------------------------------------------------- events


def cloud_event_body(
    settings: Settings,
    *,
    event_id: str,
    type: str,  # noqa: A002 - the CloudEvents attribute name
    subject: str,
    data: dict[str, Any],
    time: str,
) -> bytes:
    """CloudEvents 1.0 structured-mode JSON (JSON Event Format §3), UTF-8, compact."""
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "source": settings.public_url.rstrip("/"),
        "type": type,
        "subject": subject,
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    }
    try:
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise WebhookEventInvalid("event data must be JSON values (strings, numbers, lists, objects)") from exc


def emit(
    session: Session,
    settings: Settings,
    *,
    department_code: str,
    type: str,  # noqa: A002 - the CloudEvents attribute name
    subject: str,
    data: dict[str, Any],
    event_id: str | None = None,
) -> WebhookEvent:
    """Write a CloudEvent for ``department_code`` and a delivery to each matching active endpoint.

    Runs in the caller's transaction; the deliveries are dispatched after it commits and never on
    rollback. The same ``event_id`` for the same department again is a no-op that returns the first
    event (retried jobs and concurrent runs send once); the receiver dedupes on ``webhook-id`` too.
    """
    event_id = event_id or str(uuid.uuid4())
    if not _EVENT_ID.fullmatch(event_id):
        raise WebhookEventInvalid("event ids are 1–200 characters of A–Z a–z 0–9 . _ : @ + / = -")
    if len(type) > 128 or not _TYPE.fullmatch(type):
        raise WebhookEventInvalid("event types are reverse-DNS names such as cn.gov.licence-hub.licence.expiring")
    if not subject or len(subject) > 255:
        raise WebhookEventInvalid("the subject is 1–255 characters")
    existing = _get_event(session, department_code, event_id)
    if existing is not None:
        return existing
    now = utcnow()
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # RFC 3339, CloudEvents ``time``
    body = cloud_event_body(settings, event_id=event_id, type=type, subject=subject, data=data, time=stamp)
    if len(body) > MAX_BODY_BYTES:
        raise WebhookEventInvalid(f"the event is larger than {MAX_BODY_BYTES} bytes")
    event = WebhookEvent(
        event_id=event_id, department_code=department_code, type=type, subject=subject, body=body, created_at=now
    )
    try:
        # A concurrent emitter of the same id (PostgreSQL) waits on the unique key and then fails here;
        # the savepoint keeps the caller's transaction usable and the winner's event is returned.
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        winner = _get_event(session, department_code, event_id)
        if winner is None:
            raise  # not the unique key (an unknown department, say): the caller's bug, not a duplicate
        return winner
    for endpoint in list_endpoints(session, department_code):
        if endpoint.types and type not in endpoint.types:
            continue
        delivery = WebhookDelivery(
            id=secrets.token_hex(16), event_pk=event.pk, endpoint_id=endpoint.id, status=PENDING, attempts=0,
            next_attempt_at=now, last_attempt_at=None, last_status_code=None, last_error=None, delivered_at=None,
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(delivery)
        after_commit(session, settings, DELIVER_TASK, delivery_id=delivery.id)
    session.flush()
    return event


def _get_event(session: Session, department_code: str, event_id: str) -> WebhookEvent | None:
    stmt = select(WebhookEvent).where(
        WebhookEvent.department_code == department_code, WebhookEvent.event_id == event_id
    )
    return session.scalars(stmt).one_or_none()


# ----------------------------------------------------------------------------- deliveries


@dataclass(frozen=True)
class DeliveryView:
    """A delivery with its event and endpoint, for admin lists (no body, no URL, no secret)."""

    delivery: WebhookDelivery
    event: WebhookEvent
    endpoint: WebhookEndpoint


def dead_letters(session: Session, *, department_code: str | None = None, limit: int = 100) -> list[DeliveryView]:
    """Dead deliveries, most recently attempted first; optionally of one department."""
    stmt = (
        select(WebhookDelivery, WebhookEvent, WebhookEndpoint)
        .join(WebhookEvent, WebhookEvent.pk == WebhookDelivery.event_pk)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.status == DEAD)
        .order_by(WebhookDelivery.updated_at.desc(), WebhookDelivery.id)
        .limit(limit)
    )
    if department_code is not None:
        stmt = stmt.where(WebhookEndpoint.department_code == department_code)
    return [DeliveryView(d, e, p) for d, e, p in session.execute(stmt).all()]


def get_delivery_view_or_raise(session: Session, delivery_id: str) -> DeliveryView:
    row = session.execute(
        select(WebhookDelivery, WebhookEvent, WebhookEndpoint)
        .join(WebhookEvent, WebhookEvent.pk == WebhookDelivery.event_pk)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)
    ).one_or_none()
    if row is None:
        raise WebhookDeliveryNotFound(f"no webhook delivery with id {delivery_id}")
    found, event, endpoint = row
    return DeliveryView(found, event, endpoint)


def redeliver(session: Session, settings: Settings, delivery_id: str) -> DeliveryView:
    """Give a dead delivery a fresh set of attempts, dispatched after commit (an admin's decision)."""
    locked = session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    ).one_or_none()
    if locked is None:
        raise WebhookDeliveryNotFound(f"no webhook delivery with id {delivery_id}")
    view = get_delivery_view_or_raise(session, delivery_id)
    if locked.status != DEAD:
        raise WebhookDeliveryNotDead(f"delivery {delivery_id} is {locked.status}; only dead ones are redelivered")
    if not view.endpoint.active:
        raise WebhookEndpointDisabled(f"endpoint {view.endpoint.id} is disabled; the department must register again")
    now = utcnow()
    locked.status = PENDING
    locked.attempts = 0
    locked.next_attempt_at = now
    locked.last_status_code = None
    locked.last_error = None
    locked.updated_at = now
    session.flush()
    after_commit(session, settings, DELIVER_TASK, delivery_id=locked.id)
    return view


def due_deliveries(session: Session, *, limit: int = 1000) -> list[str]:
    """Ids of pending deliveries whose next attempt is due, oldest first (the redrive job's work)."""
    stmt = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= utcnow())
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))
