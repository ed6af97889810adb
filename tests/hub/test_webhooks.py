"""Outgoing webhooks against a real HTTP receiver on loopback: signatures, retries, dead letters, no IDOR."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from conftest import MASTER_KEY, PUBLIC_URL, free_port
from factories import bearer, department
from fastapi.testclient import TestClient
from sqlalchemy import select, update

import hub.jobs
import hub.tasks
from audit.models import AuditEntry
from audit.service import entry_body
from hub.clock import utcnow
from hub.runtime import Runtime, set_runtime
from hub.settings import Settings
from hub.webhooks import delivery
from hub.webhooks import service as webhooks
from hub.webhooks.errors import WebhookEventInvalid, WebhookSignatureInvalid, WebhookUrlInvalid
from hub.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from hub.webhooks.signing import headers_for, new_secret, secret_key, verify_signature

EXPIRING = "cn.gov.licence-hub.licence.expiring"
REVOKED = "cn.gov.licence-hub.licence.revoked"
SUBJECT = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"


# ----------------------------------------------------------------------------- a real receiver


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A threading ``http.server`` on 127.0.0.1 that records every POST and answers the queued codes."""

    port: int
    codes: list[int] = field(default_factory=list)
    delay: float = 0.0  # seconds before answering (a slow receiver)
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(Received(self.path, headers, body))
                time.sleep(receiver.delay)
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/licence-hub"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(codes: Sequence[int] = (), port: int = 0, delay: float = 0.0) -> Receiver:
        receiver = Receiver(port=port, codes=list(codes), delay=delay)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def hub_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Inline jobs (Settings.inline_jobs) run the real Celery tasks, which find this runtime."""
    set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(None)


# ----------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Registered:
    department_code: str
    endpoint_id: str
    secret: str


def _register(runtime: Runtime, url: str, types: Sequence[str] = ()) -> Registered:
    with runtime.session_scope() as session:
        dept = department(session)
        endpoint, secret = webhooks.register_endpoint(
            session, runtime.settings, runtime.master_keys, department_code=dept.code, url=url, types=types
        )
    return Registered(dept.code, endpoint.id, secret)


def _emit(runtime: Runtime, department_code: str, *, event_id: str | None = None, type_: str = EXPIRING) -> str:
    with runtime.session_scope() as session:
        event = webhooks.emit(
            session, runtime.settings, department_code=department_code, type=type_, subject=SUBJECT,
            data={"certificate_identifier": SUBJECT, "days_left": 30}, event_id=event_id,
        )  # fmt: skip
        return event.event_id


def _deliveries(runtime: Runtime, department_code: str) -> list[WebhookDelivery]:
    with runtime.session_factory() as session:
        stmt = (
            select(WebhookDelivery)
            .join(WebhookEvent, WebhookEvent.pk == WebhookDelivery.event_pk)
            .where(WebhookEvent.department_code == department_code)
            .order_by(WebhookDelivery.created_at)
        )
        return list(session.scalars(stmt))


def _make_due(runtime: Runtime, delivery_id: str) -> None:
    """Time passes: the backoff of the last attempt is over."""
    with runtime.session_scope() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def _attempt_entries(runtime: Runtime, delivery_id: str) -> list[dict[str, Any]]:
    with runtime.session_factory() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == delivery.ATTEMPTED).order_by(AuditEntry.leaf_index)
        )
        bodies = [entry_body(row) for row in rows]
    return [b for b in bodies if b is not None and b.get("delivery_id") == delivery_id]


# ----------------------------------------------------------------------------- registration


def test_registration_shows_the_secret_once(
    client: TestClient, hub_runtime: Runtime, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver()
    headers, api_client = bearer(client, hub_runtime, "licence:read")
    created = client.post("/v1/webhooks", json={"url": receiver.url, "types": [EXPIRING]}, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert body["department_code"] == api_client.department_code
    assert body["types"] == [EXPIRING]
    assert body["receipt"]["leaf_index"] >= 0

    listed = client.get("/v1/webhooks", headers=headers)
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()] == [body["id"]]
    assert "secret" not in listed.json()[0]
    assert secret not in listed.text
    with hub_runtime.session_factory() as session:
        row = session.get(WebhookEndpoint, body["id"])
        assert row is not None
        assert secret_key(secret) not in row.encrypted_secret  # only the AES-GCM ciphertext is stored
        entries = [entry_body(e) for e in session.scalars(select(AuditEntry))]
    registered = [e for e in entries if e and e["action"] == "webhook.endpoint.registered"]
    assert registered[-1]["endpoint_id"] == body["id"]
    assert all(secret not in json.dumps(e) for e in entries)


def test_registration_refuses_bad_urls_and_types(client: TestClient, hub_runtime: Runtime) -> None:
    headers, _ = bearer(client, hub_runtime, "licence:read")
    for url in ("https://user:pw@example.org/hook", "ftp://example.org/hook", "https:///nohost", "not a url"):
        response = client.post("/v1/webhooks", json={"url": url}, headers=headers)
        assert response.status_code == 422, url
        assert response.json()["code"] == "webhook_url_invalid"
        assert "pw" not in response.json()["detail"]
    bad_type = client.post(
        "/v1/webhooks", json={"url": "https://example.org/h", "types": ["Not A Type"]}, headers=headers
    )
    assert bad_type.json()["code"] == "webhook_types_invalid"
    extra = client.post("/v1/webhooks", json={"url": "https://example.org/h", "secret": "mine"}, headers=headers)
    assert extra.status_code == 422  # strict input: unknown members are refused
    assert client.post("/v1/webhooks", json={"url": "https://example.org/h"}).status_code == 401


def test_http_and_local_urls_are_refused_in_production() -> None:
    production = Settings(env="production", master_key=MASTER_KEY)
    development = Settings(env="test", master_key=MASTER_KEY)
    assert webhooks.validate_url(production, "https://dept.example.gov.cn/hooks") == "https://dept.example.gov.cn/hooks"
    assert webhooks.validate_url(development, "http://127.0.0.1:9/hooks") == "http://127.0.0.1:9/hooks"
    for url in (
        "http://dept.example.gov.cn/hooks",
        "https://localhost/hooks",
        "https://127.0.0.1/hooks",
        "https://[::1]/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://user@dept.example.gov.cn/hooks",
    ):
        with pytest.raises(WebhookUrlInvalid):
            webhooks.validate_url(production, url)
    with pytest.raises(WebhookUrlInvalid):
        webhooks.validate_url(development, "https://user:secret@dept.example.gov.cn/hooks")


# ----------------------------------------------------------------------------- delivery and signatures


def test_emit_delivers_after_commit_with_a_verifiable_signature(
    hub_runtime: Runtime, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver()
    reg = _register(hub_runtime, receiver.url)
    event_id = _emit(hub_runtime, reg.department_code, event_id="expiring-test-30")

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == "/hooks/licence-hub"
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert request.headers["webhook-id"] == event_id
    verify_signature(reg.secret, request.headers, request.body)
    event = json.loads(request.body)
    assert event == {
        "specversion": "1.0",
        "id": event_id,
        "source": PUBLIC_URL,
        "type": EXPIRING,
        "subject": SUBJECT,
        "time": event["time"],
        "datacontenttype": "application/json",
        "data": {"certificate_identifier": SUBJECT, "days_left": 30},
    }
    assert event["time"].endswith("Z")

    [row] = _deliveries(hub_runtime, reg.department_code)
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == ("delivered", 1, 200, None)
    [entry] = _attempt_entries(hub_runtime, row.id)
    assert entry["outcome"] == "ok"
    assert (entry["event_id"], entry["endpoint_id"], entry["status_code"]) == (event_id, reg.endpoint_id, "200")
    assert reg.secret not in json.dumps(entry)

    # A redelivered task message finds the row delivered and sends nothing.
    assert hub.tasks.deliver_webhook(row.id) == "delivered"
    assert len(receiver.requests) == 1


def test_signature_verification_refuses_wrong_secret_tampering_and_stale_timestamps() -> None:
    secret, key = new_secret()
    body = b'{"specversion":"1.0","id":"e-1"}'
    headers = headers_for(key, "e-1", body)
    verify_signature(secret, headers, body)
    verify_signature(secret, {k.upper(): v for k, v in headers.items()}, body)  # header names are case-insensitive

    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(new_secret()[0], headers, body)
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(secret, headers, body.replace(b"e-1", b"e-2"))
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(secret, {**headers, "webhook-id": "e-2"}, body)  # the id is signed too
    stale = headers_for(key, "e-1", body, timestamp=int(time.time()) - 301)
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(secret, stale, body)
    future = headers_for(key, "e-1", body, timestamp=int(time.time()) + 301)
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(secret, future, body)
    verify_signature(secret, stale, body, tolerance=600)
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(secret, {"webhook-id": "e-1", "webhook-timestamp": headers["webhook-timestamp"]}, body)
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(secret, {**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]}, body)
    # Several signatures (key rotation on the sender's side): one match suffices.
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    verify_signature(secret, rotated, body)


def test_receiver_error_backs_off_then_redrive_delivers_exactly_once(
    hub_runtime: Runtime, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(codes=[500])
    reg = _register(hub_runtime, receiver.url)
    before = utcnow()
    _emit(hub_runtime, reg.department_code)

    [row] = _deliveries(hub_runtime, reg.department_code)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("pending", 1, 500, "HTTP 500")
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= before + timedelta(seconds=delivery.BACKOFF_SECONDS[0])
    [failed] = _attempt_entries(hub_runtime, row.id)
    assert (failed["outcome"], failed["error_code"], failed["status_code"]) == ("failed", "webhook_http_status", "500")

    # Not due yet: neither the redrive job nor a stray task message sends anything.
    assert hub.tasks.redrive_webhooks() == 0
    assert hub.tasks.deliver_webhook(row.id) == "pending"
    assert len(receiver.requests) == 1

    _make_due(hub_runtime, row.id)
    assert hub.tasks.redrive_webhooks() == 1
    [row] = _deliveries(hub_runtime, reg.department_code)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 2, 200)
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first.body == second.body  # the stored bytes, not a re-serialisation
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # the receiver's dedupe key
    verify_signature(reg.secret, second.headers, second.body)

    assert hub.tasks.redrive_webhooks() == 0
    assert hub.tasks.deliver_webhook(row.id) == "delivered"
    assert len(receiver.requests) == 2
    assert [e["outcome"] for e in _attempt_entries(hub_runtime, row.id)] == ["failed", "ok"]


def test_receiver_down_ends_dead_visible_to_admins_and_redeliver_works(
    client: TestClient, hub_runtime: Runtime, start_receiver: Callable[..., Receiver]
) -> None:
    port = free_port()  # nothing listens here yet: connection refused
    reg = _register(hub_runtime, f"http://127.0.0.1:{port}/hooks/licence-hub")
    event_id = _emit(hub_runtime, reg.department_code)
    [row] = _deliveries(hub_runtime, reg.department_code)
    for _ in range(delivery.MAX_ATTEMPTS - 1):
        assert row.status == "pending"
        _make_due(hub_runtime, row.id)
        assert hub.tasks.redrive_webhooks() == 1
        [row] = _deliveries(hub_runtime, reg.department_code)
    assert (row.status, row.attempts, row.next_attempt_at) == ("dead", delivery.MAX_ATTEMPTS, None)
    assert row.last_error == "connection failed"
    entries = _attempt_entries(hub_runtime, row.id)
    assert [e["attempt"] for e in entries] == [str(n) for n in range(1, delivery.MAX_ATTEMPTS + 1)]
    assert {(e["outcome"], e["error_code"], e["status_code"]) for e in entries} == {
        ("failed", "webhook_connect_failed", "none")
    }
    assert hub.tasks.redrive_webhooks() == 0
    assert hub.tasks.deliver_webhook(row.id) == "dead"

    admin, _ = bearer(client, hub_runtime, "admin")
    department_headers, _ = bearer(client, hub_runtime, "licence:read")
    listed = client.get("/v1/webhooks/dead-letters", params={"department_code": reg.department_code}, headers=admin)
    assert listed.status_code == 200, listed.text
    [dead] = listed.json()
    assert (dead["id"], dead["event_id"], dead["endpoint_id"], dead["status"]) == (
        row.id, event_id, reg.endpoint_id, "dead"
    )  # fmt: skip
    assert "url" not in dead and str(port) not in listed.text and reg.secret not in listed.text
    forbidden = client.get("/v1/webhooks/dead-letters", headers=department_headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "scope_missing"
    redeliver_path = f"/v1/webhooks/deliveries/{row.id}/redeliver"
    assert client.post(redeliver_path, headers=department_headers).status_code == 403
    assert client.post("/v1/webhooks/deliveries/nope/redeliver", headers=admin).json()["code"] == (
        "webhook_delivery_not_found"
    )

    receiver = start_receiver(port=port)  # the department's system is back
    redelivered = client.post(redeliver_path, headers=admin)
    assert redelivered.status_code == 200, redelivered.text
    assert redelivered.json()["receipt"] is not None
    assert len(receiver.requests) == 1  # sent after the admin's commit
    verify_signature(reg.secret, receiver.requests[0].headers, receiver.requests[0].body)
    [row] = _deliveries(hub_runtime, reg.department_code)
    assert (row.status, row.attempts) == ("delivered", 1)
    again = client.post(redeliver_path, headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "webhook_delivery_not_dead")
    assert (
        client.get("/v1/webhooks/dead-letters", params={"department_code": reg.department_code}, headers=admin).json()
        == []
    )


def test_distributed_mode_schedules_the_next_attempt_with_a_countdown(
    hub_runtime: Runtime, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(codes=[502])
    reg = _register(hub_runtime, receiver.url)
    with hub_runtime.session_scope() as session:
        webhooks.emit(
            session, hub_runtime.settings, department_code=reg.department_code, type=EXPIRING, subject=SUBJECT, data={}
        )
        session.info.pop(hub.jobs._PENDING)  # this test makes the attempt itself, as a worker would
    [row] = _deliveries(hub_runtime, reg.department_code)
    countdowns: list[float] = []
    assert delivery.deliver(hub_runtime, row.id, schedule_retry=countdowns.append) == "pending"
    [countdown] = countdowns
    assert delivery.BACKOFF_SECONDS[0] - 5 < countdown <= delivery.BACKOFF_SECONDS[0]
    assert len(receiver.requests) == 1


def test_a_claimed_attempt_is_not_sent_twice(hub_runtime: Runtime, start_receiver: Callable[..., Receiver]) -> None:
    """A second worker (redelivered message, redrive) arriving while an attempt is in flight sends nothing."""
    receiver = start_receiver()
    reg = _register(hub_runtime, receiver.url)
    with hub_runtime.session_scope() as session:
        webhooks.emit(
            session, hub_runtime.settings, department_code=reg.department_code, type=EXPIRING, subject=SUBJECT, data={}
        )
        session.info.pop(hub.jobs._PENDING)
    [row] = _deliveries(hub_runtime, reg.department_code)
    with hub_runtime.session_scope() as session:
        claim = delivery._claim(session, hub_runtime, row.id)  # worker 1 took the attempt and is POSTing
    assert not isinstance(claim, str)
    assert delivery.deliver(hub_runtime, row.id) == "pending"
    assert hub.tasks.redrive_webhooks() == 0
    assert receiver.requests == []


def test_a_slow_receiver_is_cut_off_at_the_total_timeout(
    hub_runtime: Runtime, start_receiver: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "TOTAL_TIMEOUT_SECONDS", 0.5)
    receiver = start_receiver(delay=1.5)
    reg = _register(hub_runtime, receiver.url)
    started = time.monotonic()
    _emit(hub_runtime, reg.department_code)
    assert time.monotonic() - started < 1.4
    [row] = _deliveries(hub_runtime, reg.department_code)
    assert (row.status, row.last_status_code, row.last_error) == ("pending", None, "no answer within 0.5 s")
    [entry] = _attempt_entries(hub_runtime, row.id)
    assert entry["error_code"] == "webhook_timeout"


# ----------------------------------------------------------------------------- idempotency and transactions


def test_the_same_event_id_is_sent_once(hub_runtime: Runtime, start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver()
    reg = _register(hub_runtime, receiver.url)
    _emit(hub_runtime, reg.department_code, event_id="expired-1")
    _emit(hub_runtime, reg.department_code, event_id="expired-1")
    with hub_runtime.session_scope() as session:
        first = webhooks.emit(
            session, hub_runtime.settings, department_code=reg.department_code, type=EXPIRING, subject=SUBJECT,
            data={}, event_id="expired-2",
        )  # fmt: skip
        second = webhooks.emit(
            session, hub_runtime.settings, department_code=reg.department_code, type=EXPIRING, subject=SUBJECT,
            data={"different": True}, event_id="expired-2",
        )  # fmt: skip
        assert second.pk == first.pk
    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == ["expired-1", "expired-2"]
    assert len(_deliveries(hub_runtime, reg.department_code)) == 2


def test_a_rolled_back_transaction_emits_nothing(hub_runtime: Runtime, start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver()
    reg = _register(hub_runtime, receiver.url)

    def change_that_fails() -> None:
        with hub_runtime.session_scope() as session:
            webhooks.emit(
                session, hub_runtime.settings, department_code=reg.department_code, type=EXPIRING, subject=SUBJECT,
                data={}, event_id="rolled-back",
            )  # fmt: skip
            msg = "the licence change failed"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="the licence change failed"):
        change_that_fails()
    assert receiver.requests == []
    with hub_runtime.session_factory() as session:
        assert session.scalars(select(WebhookEvent).where(WebhookEvent.event_id == "rolled-back")).all() == []
    assert _deliveries(hub_runtime, reg.department_code) == []


def test_type_filters_and_event_validation(hub_runtime: Runtime, start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver()
    reg = _register(hub_runtime, receiver.url, types=[REVOKED])
    _emit(hub_runtime, reg.department_code, type_=EXPIRING)
    assert receiver.requests == []
    _emit(hub_runtime, reg.department_code, type_=REVOKED)
    assert [json.loads(r.body)["type"] for r in receiver.requests] == [REVOKED]
    with hub_runtime.session_scope() as session:
        for bad in ({"event_id": "has space"}, {"event_id": "line\r\nbreak"}, {"type": "Not.A.Type"}, {"subject": ""}):
            arguments: dict[str, Any] = {"type": EXPIRING, "subject": SUBJECT, "data": {}, **bad}
            with pytest.raises(WebhookEventInvalid):
                webhooks.emit(session, hub_runtime.settings, department_code=reg.department_code, **arguments)
        with pytest.raises(WebhookEventInvalid):
            webhooks.emit(
                session, hub_runtime.settings, department_code=reg.department_code, type=EXPIRING, subject=SUBJECT,
                data={"when": utcnow()},
            )  # fmt: skip


# ----------------------------------------------------------------------------- ownership


def test_another_department_cannot_see_or_delete_my_endpoint(
    client: TestClient, hub_runtime: Runtime, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(codes=[503])
    mine, my_client = bearer(client, hub_runtime, "licence:read")
    theirs, _ = bearer(client, hub_runtime, "licence:read admin")
    created = client.post("/v1/webhooks", json={"url": receiver.url}, headers=mine).json()
    endpoint_id = created["id"]

    assert client.get("/v1/webhooks", headers=theirs).json() == []
    denied = client.delete(f"/v1/webhooks/{endpoint_id}", headers=theirs)
    missing = client.delete(f"/v1/webhooks/{'0' * 32}", headers=theirs)
    assert denied.status_code == missing.status_code == 404
    assert denied.json()["code"] == missing.json()["code"] == "webhook_endpoint_not_found"
    assert denied.json()["detail"].replace(endpoint_id, "X") == missing.json()["detail"].replace("0" * 32, "X")
    assert [e["id"] for e in client.get("/v1/webhooks", headers=mine).json()] == [endpoint_id]

    _emit(hub_runtime, my_client.department_code)  # 503: stays pending
    [row] = _deliveries(hub_runtime, my_client.department_code)
    assert row.status == "pending"
    assert client.delete(f"/v1/webhooks/{endpoint_id}", headers=mine).status_code == 204
    assert client.delete(f"/v1/webhooks/{endpoint_id}", headers=mine).status_code == 204  # a retried DELETE
    assert client.get("/v1/webhooks", headers=mine).json() == []
    [row] = _deliveries(hub_runtime, my_client.department_code)
    assert (row.status, row.last_error) == ("dead", "endpoint disabled")
    _make_due(hub_runtime, row.id)
    assert hub.tasks.deliver_webhook(row.id) == "dead"
    assert len(receiver.requests) == 1
    redeliver = client.post(f"/v1/webhooks/deliveries/{row.id}/redeliver", headers=theirs)
    assert (redeliver.status_code, redeliver.json()["code"]) == (409, "webhook_endpoint_disabled")
    _emit(hub_runtime, my_client.department_code)  # a disabled endpoint gets no new deliveries
    assert len(_deliveries(hub_runtime, my_client.department_code)) == 1


def test_webhook_jobs_are_registered_and_periodic() -> None:
    assert hub.jobs.celery_app.tasks["hub.webhooks.deliver"].name == "hub.webhooks.deliver"
    assert hub.jobs.PERIODIC_JOBS["hub.webhooks.redrive"] == 60.0
