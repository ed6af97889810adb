"""Expiry job: past-validity licences become expired; 30/7/1-day reminders reach holder and issuer once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.clock import china_today
from hub.runtime import Runtime
from licences import expiry
from licences.models import HolderNotification
from tests.licences.licencekit import LicenceKit


class Recorder:
    """An issuer notifier that records what would go to the department's webhooks."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, _session: Session, **event: Any) -> None:
        with self.lock:
            self.events.append(event)


def test_due_reminder_is_the_most_specific() -> None:
    days = (1, 7, 30)
    assert [expiry.due_reminder(n, days) for n in (40, 30, 20, 7, 5, 1, 0)] == [None, 30, 30, 7, 7, 1, 1]


def test_expiry_and_reminders_are_sent_once(kit: LicenceKit, runtime: Runtime) -> None:
    today = china_today()
    holder = kit.holder("食品经营许可证")
    past = kit.issue(
        kit.request(
            "食品经营许可证", holder=holder, certificate_validity_start="2020-01-01",
            certificate_validity_end="2020-12-31",
        )
    )  # fmt: skip
    soon = kit.issue(
        kit.request("食品经营许可证", holder=holder, serial=2, certificate_validity_end=str(today + timedelta(days=5)))
    )
    later = kit.issue(
        kit.request(
            "食品经营许可证", holder=holder, serial=3, certificate_validity_end=str(today + timedelta(days=200))
        )
    )
    notify = Recorder()
    report = expiry.run(runtime.session_scope, runtime.licence_context, notify, today=today)
    assert (report.expired, report.reminded) == (1, 1)
    again = expiry.run(runtime.session_scope, runtime.licence_context, notify, today=today)
    assert (again.expired, again.reminded) == (0, 0)  # retried job: nothing sent twice

    def status(ident: object) -> str:
        return str(kit.client.get(f"/v1/licences/{ident}", headers=kit.issuer.headers).json()["status"])

    assert status(past["certificate_identifier"]) == "expired"
    assert status(soon["certificate_identifier"]) == "valid" and status(later["certificate_identifier"]) == "valid"
    kinds = sorted((e["type"], e["subject"]) for e in notify.events)
    assert kinds == sorted(
        [
            ("cn.gov.licence-hub.licence.expired", past["certificate_identifier"]),
            ("cn.gov.licence-hub.licence.expiring", soon["certificate_identifier"]),
        ]
    )
    assert all(e["department_code"] == kit.issuer.code for e in notify.events)
    inbox = kit.client.get("/v1/me/notifications", headers=kit.holder_headers(holder)).json()
    assert sorted(n["kind"] for n in inbox) == ["licence.expired", "licence.expiring"]
    expiring = next(n for n in inbox if n["kind"] == "licence.expiring")
    assert "5天" in expiring["body"] and expiring["certificate_identifier"] == soon["certificate_identifier"]

    # two days later the 1-day reminder is not yet due; four days later it is, once
    assert (
        expiry.run(runtime.session_scope, runtime.licence_context, notify, today=today + timedelta(days=2)).reminded
        == 0
    )
    assert (
        expiry.run(runtime.session_scope, runtime.licence_context, notify, today=today + timedelta(days=4)).reminded
        == 1
    )
    assert (
        expiry.run(runtime.session_scope, runtime.licence_context, notify, today=today + timedelta(days=4)).reminded
        == 0
    )
    with runtime.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(HolderNotification)) == 3

    # timeline: issuance and expiry of my licences
    timeline = kit.client.get("/v1/me/timeline", headers=kit.holder_headers(holder)).json()
    assert [e["event"] for e in timeline].count("issued") == 3 and "expired" in [e["event"] for e in timeline]
    # an expired licence cannot be shown by QR, and the scan of its static code reads expired
    response = kit.client.post(
        f"/v1/me/licences/{past['certificate_identifier']}/presentations", json={}, headers=kit.holder_headers(holder)
    )
    assert response.status_code == 409 and response.json()["code"] == "licence_not_presentable"


def test_scheduled_job_reminds_the_issuer_through_its_webhook(kit: LicenceKit, runtime: Runtime) -> None:
    """The Celery task as the scheduler runs it: the issuer's registered endpoint gets a signed CloudEvent."""
    import json as json_lib
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import hub.tasks  # noqa: F401 - registers the tasks, as a worker does at start-up
    from hub.jobs import celery_app
    from hub.webhooks import service as webhooks
    from hub.webhooks.delivery import verify_signature

    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        with runtime.session_scope() as session:
            _, secret = webhooks.register_endpoint(
                session, runtime.settings, runtime.master_keys, department_code=kit.issuer.code, url=url, types=[]
            )
        soon = kit.issue(kit.request("食品经营许可证", certificate_validity_end=str(china_today() + timedelta(days=1))))
        result = celery_app.tasks["licences.expiry.run"].apply().get()
        assert result == {"expired": 0, "reminded": 1}
        assert celery_app.tasks["licences.expiry.run"].apply().get() == {"expired": 0, "reminded": 0}
        assert len(received) == 1
        headers, body = received[0]
        verify_signature(secret, headers, body)
        event = json_lib.loads(body)
        assert event["specversion"] == "1.0" and event["type"] == "cn.gov.licence-hub.licence.expiring"
        assert event["subject"] == soon["certificate_identifier"] and event["data"]["days_before"] == 1
    finally:
        server.shutdown()
        server.server_close()
