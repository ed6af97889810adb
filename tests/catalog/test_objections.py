"""Objections (数据异议): raise, the handler's state machine, the disputed flag, notices to fetchers, no IDOR."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from audit.models import AuditEntry
from audit.service import entry_body
from catalog import objections
from catalog.models import ObjectionEvent
from catalog.workdays import load_calendar, local_day
from hub import audited
from hub.clock import utcnow
from hub.codes import make_id_number
from hub.runtime import Runtime, set_runtime
from tests.catalog.catalogkit import CatalogKit
from tests.licences.licencekit import Department, LicenceKit, department_client

HANDLER_SCOPES = "catalog:read catalog:write"
CLAIM = "浙江省临江市滨江区更正路8号"  # the value the raiser says is right (may be personal: never in logs)
SHA = "9f2b5c1d0e4a7b3c6d8e1f2a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c"
CORRECTED_TYPE = objections.EVENT_TYPE_PREFIX + "corrected"
STATES = tuple(objections.NEXT)


@pytest.fixture(autouse=True)
def _tasks_find_runtime(runtime: Runtime) -> Iterator[None]:
    """Inline webhook deliveries (Settings.inline_jobs) run the real Celery task, which finds this runtime."""
    set_runtime(runtime)
    try:
        yield
    finally:
        set_runtime(None)


# ----------------------------------------------------------------------------- a real webhook receiver


@dataclass
class Receiver:
    """127.0.0.1 HTTP server recording every POST; each department's endpoint gets its own path."""

    bodies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.bodies.setdefault(self.path.strip("/"), []).append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, code: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{code}"

    def events(self, code: str) -> list[dict[str, Any]]:
        return self.bodies.get(code, [])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


def _subscribe(client: TestClient, receiver: Receiver, dept: Department) -> None:
    response = client.post("/v1/webhooks", json={"url": receiver.url(dept.code)}, headers=dept.headers)
    assert response.status_code == 201, response.text


# ----------------------------------------------------------------------------- helpers


@dataclass
class Issued:
    identifier: str
    holder: dict[str, str]
    body: dict[str, Any]


def _issue(kit: LicenceKit, serial: int = 1) -> Issued:
    holder = kit.holder("营业执照", serial)
    body = kit.request("营业执照", holder=holder, serial=serial)
    return Issued(str(kit.issue(body)["certificate_identifier"]), holder, body)


def _issuer_handler(kit: LicenceKit) -> Department:
    """The licence's issuer with a catalogue client: the handler of objections against its licences."""
    return department_client(kit.client, kit.runtime, kit.issuer.code, HANDLER_SCOPES)


def _raise(client: TestClient, dept: Department, expect: int = 201, **body: Any) -> dict[str, Any]:
    payload = {"claimed_value": CLAIM, "reason": "住所已变更，登记信息未更新", **body}
    response = client.post("/v1/catalog/objections", json=payload, headers=dept.headers)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def _step(
    client: TestClient, dept: Department, objection_id: str, verb: str, expect: int = 200, **body: Any
) -> dict[str, Any]:
    if verb in {"reject", "correct", "uphold"} and "reason" not in body:
        body["reason"] = "经核查"
    response = client.post(f"/v1/catalog/objections/{objection_id}/{verb}", json=body, headers=dept.headers)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def _record_fetch(runtime: Runtime, dept: str, outcome: str = "ok", **fields: Any) -> None:
    """A fetch as the exchange (issue 7) will log it, appended through the real audit path."""
    with runtime.session_scope() as session:
        event = audited.event(
            action="exchange.licence.fetched" if "certificate_identifier" in fields else "exchange.resource.fetched",
            outcome=outcome, actor_type="department", actor=dept, matter_code="330100-000-XK-001",
            case_number="LJ2026120100001", officer_id="officer-7", **fields,
        )  # fmt: skip
        audited.record(session, runtime, event)


def _objection_entries(runtime: Runtime, objection_id: str) -> list[dict[str, Any]]:
    with runtime.session_factory() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("catalog.objection.%")).order_by(AuditEntry.leaf_index)
        )
        bodies = [entry_body(row) for row in rows]
    return [b for b in bodies if b is not None and b.get("objection_id") == objection_id]


def _dispute(runtime: Runtime, **where: str) -> objections.Dispute:
    with runtime.session_factory() as session:
        flag = objections.is_disputed(session, **where)
        found = objections.dispute(session, **where)
        assert flag == found.disputed
        assert objections.disputed_items(session, **where) == found.items
        return found


# ----------------------------------------------------------------------------- happy paths


def test_licence_objection_full_path(kit: LicenceKit, ckit: CatalogKit, runtime: Runtime) -> None:
    client, consumer, handler = kit.client, ckit.consumer, _issuer_handler(kit)
    licence = _issue(kit)
    evidence = [{"name": "变更登记通知书.pdf", "sha256": SHA, "description": "市场监管局出具"}]
    raised = _raise(client, consumer, certificate_identifier=licence.identifier, item_key="domicile", evidence=evidence)
    assert raised["status"] == "raised" and raised["handler_code"] == kit.issuer.code
    assert raised["raised_by"] == consumer.code and raised["evidence"] == evidence
    assert raised["allowed_next"] == ["accepted", "rejected"] and raised["overdue"] is False
    expected_due = load_calendar(None).add_working_days(local_day(utcnow()), runtime.settings.objection_working_days)
    assert raised["due_date"] == expected_due.isoformat()
    assert raised["receipt"]["leaf_index"] >= 0
    oid = raised["id"]
    where = {"certificate_identifier": licence.identifier}

    assert _step(client, handler, oid, "accept", note="已受理")["status"] == "accepted"
    assert not _dispute(runtime, **where).disputed  # accepted is not yet disputed
    assert _step(client, handler, oid, "flag")["status"] == "flagged"
    assert _dispute(runtime, **where) == objections.Dispute(disputed=True, whole_record=False, items=["domicile"])
    assert _step(client, handler, oid, "verify")["status"] == "verifying"
    assert _dispute(runtime, **where).items == ["domicile"]
    corrected = _step(client, handler, oid, "correct", reason="已更正住所")
    assert corrected["status"] == "corrected" and corrected["resolution"] == "已更正住所"
    assert not _dispute(runtime, **where).disputed
    closed = _step(client, consumer, oid, "close")  # the raiser accepts the outcome
    assert closed["status"] == "closed" and closed["closed_at"] is not None and closed["allowed_next"] == []

    history = [(e["from_status"], e["to_status"], e["actor"]) for e in closed["events"]]
    assert history == [
        (None, "raised", consumer.code),
        ("raised", "accepted", kit.issuer.code),
        ("accepted", "flagged", kit.issuer.code),
        ("flagged", "verifying", kit.issuer.code),
        ("verifying", "corrected", kit.issuer.code),
        ("corrected", "closed", consumer.code),
    ]
    assert closed["events"][1]["note"] == "已受理"

    for reader in (consumer, handler, ckit.admin):
        seen = client.get(f"/v1/catalog/objections/{oid}", headers=reader.headers)
        assert seen.status_code == 200, seen.text
        assert seen.json()["claimed_value"] == CLAIM and len(seen.json()["events"]) == 6

    entries = _objection_entries(runtime, oid)
    actions = [e["action"] for e in entries]
    assert actions[:6] == [
        f"catalog.objection.{s}" for s in ("raised", "accepted", "flagged", "verifying", "corrected", "closed")
    ]
    assert "catalog.objection.read" in actions
    ref = audited.holder_ref(runtime, licence.holder["type"], licence.holder["code"])
    for entry in entries:
        assert entry["certificate_identifier"] == licence.identifier
        assert entry["holder_ref"] == ref
        text = json.dumps(entry, ensure_ascii=False)
        assert licence.holder["code"] not in text and CLAIM not in text  # identifiers only, never values
    assert entries[1]["fields"] == ["domicile"] and entries[1]["from_status"] == "raised"


def test_resource_record_objection_full_path(ckit: CatalogKit, runtime: Runtime) -> None:
    client, consumer, provider = ckit.client, ckit.consumer, ckit.provider
    code = ckit.insert_resource()
    raised = _raise(client, consumer, resource_code=code, record_key="91330100MA27XK5J3B", item_key="name")
    assert raised["handler_code"] == provider.code and raised["record_key"] == "91330100MA27XK5J3B"
    oid = raised["id"]
    here = {"resource_code": code, "record_key": "91330100MA27XK5J3B"}
    elsewhere = {"resource_code": code, "record_key": "91330100MA27XK5J4C"}
    for verb in ("accept", "flag"):
        _step(client, provider, oid, verb)
    assert _dispute(runtime, **here) == objections.Dispute(disputed=True, whole_record=False, items=["name"])
    assert not _dispute(runtime, **elsewhere).disputed  # another record of the same resource
    _step(client, provider, oid, "verify")
    upheld = _step(client, provider, oid, "uphold", reason="经核实，登记名称无误")
    assert upheld["status"] == "upheld" and upheld["resolution"] == "经核实，登记名称无误"
    assert not _dispute(runtime, **here).disputed
    assert _step(client, provider, oid, "close")["status"] == "closed"  # the handler may close too
    entries = _objection_entries(runtime, oid)
    assert [e["action"].rsplit(".", 1)[1] for e in entries] == [
        "raised", "accepted", "flagged", "verifying", "upheld", "closed"
    ]  # fmt: skip
    assert all(e["resource_code"] == code and "certificate_identifier" not in e for e in entries)


def test_disputed_only_while_flagged_or_verifying_per_item(kit: LicenceKit, ckit: CatalogKit, runtime: Runtime) -> None:
    client, handler = kit.client, _issuer_handler(kit)
    licence, other = _issue(kit, 1), _issue(kit, 2)
    second = ckit.department("临江市税务局", f"{HANDLER_SCOPES} exchange:fetch")
    domicile = _raise(client, ckit.consumer, certificate_identifier=licence.identifier, item_key="domicile")["id"]
    whole = _raise(client, second, certificate_identifier=licence.identifier)["id"]
    name = _raise(client, second, certificate_identifier=licence.identifier, item_key="name")["id"]
    where = {"certificate_identifier": licence.identifier}
    assert not _dispute(runtime, **where).disputed  # raised: not yet

    _step(client, handler, domicile, "accept")
    _step(client, handler, domicile, "flag")
    _step(client, handler, whole, "accept")
    _step(client, handler, name, "reject", reason="名称与登记一致")
    assert _dispute(runtime, **where) == objections.Dispute(disputed=True, whole_record=False, items=["domicile"])
    _step(client, handler, whole, "flag")
    assert _dispute(runtime, **where) == objections.Dispute(disputed=True, whole_record=True, items=["domicile"])
    assert not _dispute(runtime, certificate_identifier=other.identifier).disputed

    _step(client, handler, domicile, "verify")
    _step(client, handler, domicile, "uphold")
    assert _dispute(runtime, **where) == objections.Dispute(disputed=True, whole_record=True, items=[])
    _step(client, handler, whole, "verify")
    _step(client, handler, whole, "correct")
    assert _dispute(runtime, **where) == objections.Dispute(disputed=False, whole_record=False, items=[])
    with runtime.session_factory() as session, pytest.raises(ValueError, match="name a certificate_identifier"):
        objections.is_disputed(session, resource_code="3990/000001")  # a record needs its key


def test_correction_notifies_departments_that_fetched(
    kit: LicenceKit, ckit: CatalogKit, runtime: Runtime, receiver: Receiver
) -> None:
    client, consumer, handler = kit.client, ckit.consumer, _issuer_handler(kit)
    fetcher = ckit.department("临江市住房和城乡建设局")
    refused = ckit.department("临江市公安局")  # its fetch was denied: it holds no copy
    bystander = ckit.department("临江市教育局")  # never fetched
    for dept in (consumer, fetcher, refused, bystander, handler):
        _subscribe(client, receiver, dept)
    licence = _issue(kit)
    ref = audited.holder_ref(runtime, licence.holder["type"], licence.holder["code"])
    _record_fetch(runtime, fetcher.code, certificate_identifier=licence.identifier, holder_ref=ref)
    _record_fetch(runtime, consumer.code, certificate_identifier=licence.identifier, holder_ref=ref)
    _record_fetch(runtime, refused.code, "denied", certificate_identifier=licence.identifier, holder_ref=ref)
    _record_fetch(runtime, bystander.code, certificate_identifier=_issue(kit, 2).identifier)

    oid = _raise(client, consumer, certificate_identifier=licence.identifier, item_key="domicile")["id"]
    assert [e["type"] for e in receiver.events(handler.code)] == [objections.EVENT_TYPE_PREFIX + "raised"]
    for verb in ("accept", "flag", "verify"):
        _step(client, handler, oid, verb)
    face = {**licence.body["face"], "domicile": CLAIM}
    amended = client.post(
        f"/v1/licences/{licence.identifier}/amend", json={"face": face, "reason": "住所更正"},
        headers=kit.issuer.headers,
    )  # fmt: skip
    assert amended.status_code == 201, amended.text
    new_identifier = amended.json()["certificate_identifier"]
    corrected = _step(client, handler, oid, "correct", reason="已换发新版本")
    assert corrected["corrected_identifier"] == new_identifier

    expected = {
        "objection_id": oid, "status": "corrected", "item_key": "domicile",
        "certificate_identifier": licence.identifier, "new_certificate_identifier": new_identifier,
    }  # fmt: skip
    # Fetchers also get the exchange's push notice of the amendment itself (hub.exchange.notices).
    fetcher_events = receiver.events(fetcher.code)
    assert {e["type"] for e in fetcher_events} == {CORRECTED_TYPE, "cn.gov.licence-hub.licence.amended"}
    (notice,) = [e for e in fetcher_events if e["type"] == CORRECTED_TYPE]
    assert notice["data"] == expected
    assert notice["subject"] == licence.identifier
    # The raiser hears of every decision; the correction is the same CloudEvent it sends the fetchers.
    raiser_events = [e for e in receiver.events(consumer.code) if e["type"].startswith(objections.EVENT_TYPE_PREFIX)]
    assert [e["type"].rsplit(".", 1)[1] for e in raiser_events] == ["accepted", "flagged", "verifying", "corrected"]
    assert raiser_events[-1]["id"] == notice["id"] and raiser_events[-1]["data"] == expected
    assert receiver.events(refused.code) == [] and receiver.events(bystander.code) == []
    assert all(e["type"] != CORRECTED_TYPE for e in receiver.events(handler.code))  # the actor is not told
    every = json.dumps(receiver.bodies, ensure_ascii=False)
    assert CLAIM not in every and licence.holder["code"] not in every  # no personal values in notices


def test_resource_correction_notifies_fetchers_of_the_resource(
    ckit: CatalogKit, runtime: Runtime, receiver: Receiver
) -> None:
    client, consumer, provider = ckit.client, ckit.consumer, ckit.provider
    fetcher, other = ckit.department("临江市民政局"), ckit.department("临江市交通运输局")
    for dept in (fetcher, other):
        _subscribe(client, receiver, dept)
    code, unrelated = ckit.insert_resource(), ckit.insert_resource(name="企业年报信息")
    _record_fetch(runtime, fetcher.code, resource_code=code)
    _record_fetch(runtime, other.code, resource_code=unrelated)
    oid = _raise(client, consumer, resource_code=code, record_key="R-2026-0042", item_key="registered_capital")["id"]
    for verb in ("accept", "flag", "verify", "correct"):
        _step(client, provider, oid, verb)
    (notice,) = receiver.events(fetcher.code)
    assert notice["type"] == CORRECTED_TYPE
    assert notice["data"] == {
        "objection_id": oid, "status": "corrected", "item_key": "registered_capital", "resource_code": code,
        "record_key": "R-2026-0042",
    }  # fmt: skip
    assert receiver.events(other.code) == []


def test_holder_raises_against_own_licence_only(kit: LicenceKit, ckit: CatalogKit, runtime: Runtime) -> None:
    client, handler = kit.client, _issuer_handler(kit)
    mine, theirs = _issue(kit, 1), _issue(kit, 2)
    headers = kit.holder_headers(mine.holder)
    body = {
        "certificate_identifier": mine.identifier,
        "item_key": "domicile",
        "claimed_value": CLAIM,
        "reason": "已搬迁",
    }
    created = client.post("/v1/me/objections", json=body, headers=headers)
    assert created.status_code == 201, created.text
    raised = created.json()
    assert raised["raised_by_type"] == "holder" and raised["raised_by"] is None
    assert raised["handler_code"] == kit.issuer.code and raised["events"][0]["actor"] == "holder"
    # Negative beside it: someone else's licence is the same 404 as a missing one.
    stolen = client.post(
        "/v1/me/objections", json={**body, "certificate_identifier": theirs.identifier}, headers=headers
    )
    assert stolen.status_code == 404 and stolen.json()["code"] == "licence_not_found"

    listed = client.get("/v1/me/objections", headers=headers)
    assert [o["id"] for o in listed.json()] == [raised["id"]]
    other_headers = kit.holder_headers(theirs.holder)
    assert client.get("/v1/me/objections", headers=other_headers).json() == []
    assert client.get(f"/v1/me/objections/{raised['id']}", headers=other_headers).status_code == 404
    handled = client.get("/v1/catalog/objections", params={"role": "handler"}, headers=handler.headers).json()
    assert [o["id"] for o in handled] == [raised["id"]]

    # A department's objection on my licence is not mine to read or close.
    dept_oid = _raise(client, ckit.consumer, certificate_identifier=mine.identifier)["id"]
    assert client.get(f"/v1/me/objections/{dept_oid}", headers=headers).status_code == 404

    _step(client, handler, raised["id"], "reject", reason="住所与登记机关记录一致")
    _step(client, handler, dept_oid, "reject")
    assert client.post(f"/v1/me/objections/{dept_oid}/close", headers=headers).status_code == 404
    assert client.post(f"/v1/me/objections/{raised['id']}/close", headers=other_headers).status_code == 404
    closed = client.post(f"/v1/me/objections/{raised['id']}/close", json={"note": "知悉"}, headers=headers)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["events"][-1]["actor"] == "holder"
    ref = audited.holder_ref(runtime, mine.holder["type"], mine.holder["code"])
    entries = _objection_entries(runtime, raised["id"])
    holder_steps = [e for e in entries if e["actor_type"] == "holder"]
    assert [e["action"] for e in holder_steps] == ["catalog.objection.raised", "catalog.objection.closed"]
    assert all(e["actor"] == ref and e["holder_ref"] == ref for e in holder_steps)


# ----------------------------------------------------------------------------- deadlines and lists


def test_overdue_until_the_handler_decides(ckit: CatalogKit, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    client, consumer, provider = ckit.client, ckit.consumer, ckit.provider
    code = ckit.insert_resource()
    late = _raise(client, consumer, resource_code=code, record_key="R-1")["id"]
    answered = _raise(client, consumer, resource_code=code, record_key="R-2")["id"]
    _step(client, provider, answered, "accept")

    def listed(**params: Any) -> dict[str, bool]:
        response = client.get("/v1/catalog/objections", params=params, headers=provider.headers)
        assert response.status_code == 200, response.text
        return {o["id"]: o["overdue"] for o in response.json()}

    assert listed() == {late: False, answered: False}
    assert listed(overdue=True) == {}
    later = utcnow() + timedelta(days=20)  # past any 5-working-day deadline
    monkeypatch.setattr(objections, "utcnow", lambda: later)
    assert listed() == {late: True, answered: False}
    assert listed(overdue=True) == {late: True}
    assert listed(overdue=False) == {answered: False}
    _step(client, provider, late, "reject", reason="无依据")
    assert listed(overdue=True) == {}


def test_lists_show_only_what_the_caller_raised_or_handles(ckit: CatalogKit) -> None:
    client, consumer, provider = ckit.client, ckit.consumer, ckit.provider
    bystander = ckit.department("临江市文化广电旅游局", f"{HANDLER_SCOPES} exchange:fetch")
    code = ckit.insert_resource()
    first = _raise(client, consumer, resource_code=code, record_key="R-1")["id"]
    second = _raise(client, bystander, resource_code=code, record_key="R-2")["id"]
    _step(client, provider, second, "accept")

    def ids(dept: Department, **params: Any) -> set[str]:
        response = client.get("/v1/catalog/objections", params=params, headers=dept.headers)
        assert response.status_code == 200, response.text
        assert all("claimed_value" not in o for o in response.json())  # lists carry no claimed values
        return {o["id"] for o in response.json()}

    assert ids(consumer) == {first}
    assert ids(bystander) == {second}
    assert ids(provider) == {first, second}
    assert ids(provider, status="accepted") == {second}
    assert ids(provider, role="raiser") == set()
    assert ids(ckit.admin) >= {first, second}
    assert (
        client.get("/v1/catalog/objections", params={"status": "nonsense"}, headers=provider.headers).status_code == 422
    )


# ----------------------------------------------------------------------------- the state machine, negatively

ALLOWED = {
    (state, verb) for verb, target in objections.VERBS.items() for state in STATES if target in objections.NEXT[state]
}
FORBIDDEN = sorted(set(itertools.product(STATES, objections.VERBS)) - ALLOWED)
# The shortest path from raised to each state.
PATH: dict[str, tuple[str, ...]] = {
    "raised": (), "accepted": ("accept",), "rejected": ("reject",), "flagged": ("accept", "flag"),
    "verifying": ("accept", "flag", "verify"), "corrected": ("accept", "flag", "verify", "correct"),
    "upheld": ("accept", "flag", "verify", "uphold"), "closed": ("reject", "close"),
}  # fmt: skip


def test_the_transition_table_is_the_issue() -> None:
    assert len(ALLOWED) == 9 and len(FORBIDDEN) == 47
    assert objections.NEXT == {
        "raised": ("accepted", "rejected"), "accepted": ("flagged",), "flagged": ("verifying",),
        "verifying": ("corrected", "upheld"), "corrected": ("closed",), "upheld": ("closed",),
        "rejected": ("closed",), "closed": (),
    }  # fmt: skip


@pytest.mark.parametrize("state", STATES)
def test_out_of_order_transitions_are_refused(ckit: CatalogKit, runtime: Runtime, state: str) -> None:
    """Every (state, verb) pair not in the table, tried on one objection per state (a refusal changes nothing)."""
    client, provider = ckit.client, ckit.provider
    oid = _raise(client, ckit.consumer, resource_code=ckit.insert_resource(), record_key="R-1")["id"]
    for step in PATH[state]:
        _step(client, provider, oid, step)
    refused = [verb for pair_state, verb in FORBIDDEN if pair_state == state]
    assert refused, state
    for verb in refused:
        problem = _step(client, provider, oid, verb, 409)
        assert problem["code"] == "objection_transition_invalid", (state, verb)
        assert problem["objection_status"] == state, (state, verb)  # `status` stays the HTTP status (RFC 9457)
        assert problem["allowed_next"] == list(objections.NEXT[state]), (state, verb)
        assert f"allowed next: {', '.join(objections.NEXT[state]) or 'none'}" in problem["detail"], (state, verb)
    with runtime.session_factory() as session:
        events = session.scalars(select(ObjectionEvent).where(ObjectionEvent.objection_id == oid)).all()
    assert len(events) == 1 + len(PATH[state])  # nothing was written for the refused steps
    assert client.get(f"/v1/catalog/objections/{oid}", headers=provider.headers).json()["status"] == state


# ----------------------------------------------------------------------------- who may act


def test_only_the_handler_decides_others_get_404(ckit: CatalogKit) -> None:
    client, consumer, provider, admin = ckit.client, ckit.consumer, ckit.provider, ckit.admin
    bystander = ckit.department("临江市自然资源和规划局", f"{HANDLER_SCOPES} exchange:fetch")
    oid = _raise(client, consumer, resource_code=ckit.insert_resource(), record_key="R-1")["id"]
    for dept in (bystander, consumer, admin):  # a stranger, the raiser itself, an admin that is not the handler
        problem = _step(client, dept, oid, "accept", 404)
        assert problem["code"] == "objection_not_found"
    assert client.get(f"/v1/catalog/objections/{oid}", headers=bystander.headers).status_code == 404
    missing = client.get("/v1/catalog/objections/0123456789abcdef0123456789abcdef", headers=bystander.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "objection_not_found"  # same answer
    assert _step(client, provider, oid, "accept")["status"] == "accepted"  # the handler may

    closable = _raise(client, consumer, resource_code=ckit.insert_resource(), record_key="R-2")["id"]
    _step(client, provider, closable, "reject")
    assert _step(client, bystander, closable, "close", 404)["code"] == "objection_not_found"
    assert _step(client, admin, closable, "close")["status"] == "closed"  # an admin may close


def test_scopes_and_authentication(ckit: CatalogKit) -> None:
    client, provider = ckit.client, ckit.provider
    code = ckit.insert_resource()
    body = {"resource_code": code, "record_key": "R-1", "claimed_value": CLAIM, "reason": "x"}
    for path in ("/v1/catalog/objections", "/v1/me/objections"):
        assert client.post(path, json=body).status_code == 401
        assert client.get(path).status_code == 401
    assert client.post("/v1/catalog/objections/abc/accept").status_code == 401
    # The provider has catalog scopes but not exchange:fetch: it cannot raise.
    problem = _raise(client, provider, 403, resource_code=code, record_key="R-1")
    assert problem["code"] == "scope_missing"
    oid = _raise(client, ckit.consumer, resource_code=code, record_key="R-1")["id"]
    reader = ckit.department("临江市审计局", "catalog:read")
    assert _step(client, reader, oid, "accept", 403)["code"] == "scope_missing"


# ----------------------------------------------------------------------------- bad input


def test_unknown_item_keys_are_refused(kit: LicenceKit, ckit: CatalogKit) -> None:
    licence = _issue(kit)
    problem = _raise(kit.client, ckit.consumer, 422, certificate_identifier=licence.identifier, item_key="nickname")
    assert problem["code"] == "objection_item_unknown" and "domicile" in problem["detail"]
    code = ckit.insert_resource()
    problem = _raise(ckit.client, ckit.consumer, 422, resource_code=code, record_key="R-1", item_key="domicile")
    assert problem["code"] == "objection_item_unknown" and "registered_capital" in problem["detail"]


def test_decisions_need_a_reason(ckit: CatalogKit) -> None:
    client, provider = ckit.client, ckit.provider
    oid = _raise(client, ckit.consumer, resource_code=ckit.insert_resource(), record_key="R-1")["id"]
    for body in ({}, {"reason": ""}, {"note": "x"}):
        response = client.post(f"/v1/catalog/objections/{oid}/reject", json=body, headers=provider.headers)
        assert response.status_code == 422 and response.json()["code"] == "request_invalid"
    assert client.post(f"/v1/catalog/objections/{oid}/reject", headers=provider.headers).status_code == 422
    for verb in ("accept", "flag", "verify"):
        _step(client, provider, oid, verb)
    for verb in ("correct", "uphold"):
        response = client.post(f"/v1/catalog/objections/{oid}/{verb}", json={}, headers=provider.headers)
        assert response.status_code == 422
    assert _step(client, provider, oid, "uphold", reason="数据无误")["status"] == "upheld"


def test_raising_against_what_does_not_exist(ckit: CatalogKit) -> None:
    client, consumer = ckit.client, ckit.consumer
    missing = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
    assert _raise(client, consumer, 404, certificate_identifier=missing)["code"] == "licence_not_found"
    assert _raise(client, consumer, 404, resource_code="3990/999999", record_key="R-1")["code"] == "resource_not_found"
    withdrawn = ckit.insert_resource(status="withdrawn")
    assert _raise(client, consumer, 404, resource_code=withdrawn, record_key="R-1")["code"] == "resource_not_found"


def test_malformed_objections_are_refused(ckit: CatalogKit) -> None:
    client, consumer = ckit.client, ckit.consumer
    code = ckit.insert_resource()
    both = _raise(client, consumer, 422, certificate_identifier="x", resource_code=code, record_key="R-1")
    assert both["code"] == "request_invalid"
    assert _raise(client, consumer, 422)["code"] == "request_invalid"  # no target at all
    assert _raise(client, consumer, 422, resource_code=code)["code"] == "request_invalid"  # no record key
    bad_sha = [{"name": "a.pdf", "sha256": "not-a-digest"}]
    assert (
        _raise(client, consumer, 422, resource_code=code, record_key="R-1", evidence=bad_sha)["code"]
        == "request_invalid"
    )
    many = [{"name": f"{n}.pdf", "sha256": SHA} for n in range(11)]
    assert (
        _raise(client, consumer, 422, resource_code=code, record_key="R-1", evidence=many)["code"] == "request_invalid"
    )
    person = make_id_number("110101", date(1990, 3, 7), "447")  # records are named by their own ids
    problem = _raise(client, consumer, 422, resource_code=code, record_key=f"P-{person}")
    assert problem["code"] == "objection_record_key_personal" and person not in json.dumps(problem)


def test_one_open_objection_per_raiser_record_and_item(ckit: CatalogKit) -> None:
    client, consumer, provider = ckit.client, ckit.consumer, ckit.provider
    code = ckit.insert_resource()
    first = _raise(client, consumer, resource_code=code, record_key="R-1", item_key="name")["id"]
    again = _raise(client, consumer, 409, resource_code=code, record_key="R-1", item_key="name")
    assert again["code"] == "objection_duplicate" and again["objection_id"] == first
    _raise(client, consumer, resource_code=code, record_key="R-1", item_key="uscc")  # another item is fine
    _raise(client, consumer, resource_code=code, record_key="R-1")  # so is the whole record
    _step(client, provider, first, "reject")
    _step(client, consumer, first, "close")
    _raise(client, consumer, resource_code=code, record_key="R-1", item_key="name")  # after closing, again
