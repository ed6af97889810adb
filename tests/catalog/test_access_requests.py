"""Access requests (共享申请) over HTTP: automatic and provider approval, refusals, deadlines in working days."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from audit.models import AuditEntry
from catalog import access_requests
from catalog.matters import get_matter
from catalog.models import AccessRequest
from hub.settings import Settings
from hub.webhooks.models import WebhookEvent
from tests.catalog.catalogkit import DEFAULT_ITEMS, CatalogKit, ItemSpec
from tests.licences.licencekit import Department

MATTER = "11330100MB1234567X3000111001"
OPEN_ITEMS = (ItemSpec("uscc", "统一社会信用代码"), ItemSpec("name", "企业名称"))
# National Day 2026 (illustrative): 1–8 October off, Sunday 27 September and Saturday 10 October worked (调休).
CALENDAR = {
    "holidays": [f"2026-10-0{d}" for d in range(1, 9)],
    "workdays": ["2026-09-27", "2026-10-10"],
}


@pytest.fixture
def settings(make_settings: Any, tmp_path: Path) -> Settings:
    """The test settings plus a working-day calendar file with a holiday week."""
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(CALENDAR), encoding="utf-8")
    built: Settings = make_settings(working_calendar_file=path)
    return built


# ----------------------------------------------------------------------------- helpers (test_grants uses them)


def make_matter(ckit: CatalogKit, code: str = MATTER, department: Department | None = None) -> str:
    who = department or ckit.consumer
    body = {"code": code, "name": "就业登记", "materials": []}
    response = ckit.client.post("/v1/catalog/matters", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return code


def request_body(resource: str, items: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resource_code": resource, "items": items or ["uscc", "name"], "matter_codes": [MATTER],
        "purpose": "办理就业登记时核验用人单位登记信息", "legal_basis": "《就业服务与就业管理规定》第六十二条",
    }  # fmt: skip
    body.update(extra)
    return body


def submit(ckit: CatalogKit, body: dict[str, Any], expect: int = 201, who: Department | None = None) -> Any:
    response = ckit.client.post("/v1/catalog/access-requests", json=body, headers=(who or ckit.consumer).headers)
    assert response.status_code == expect, response.text
    return response.json()


def decide(  # noqa: PLR0917 - a test helper read as decide(kit, id, verb, body)
    ckit: CatalogKit, request_id: str, verb: str, body: dict[str, Any], who: Department | None = None, expect: int = 200
) -> Any:
    response = ckit.client.post(
        f"/v1/catalog/access-requests/{request_id}/{verb}", json=body, headers=(who or ckit.provider).headers
    )
    assert response.status_code == expect, response.text
    return response.json()


def granted(ckit: CatalogKit, **request: Any) -> dict[str, Any]:
    """An approved grant: an unconditional resource and items requested by the consumer (matter made once)."""
    with ckit.runtime.session_scope() as session:
        exists = get_matter(session, MATTER) is not None
    if not exists:
        make_matter(ckit)
    resource = ckit.insert_resource(share_type="unconditional", items=OPEN_ITEMS)
    done = submit(ckit, request_body(resource, **request))
    assert done["status"] == "approved"
    response = ckit.client.get(f"/v1/catalog/grants/{done['grant_id']}", headers=ckit.consumer.headers)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def freeze_today(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    monkeypatch.setattr(access_requests, "today", lambda: day)


def _entries(ckit: CatalogKit, action: str) -> list[AuditEntry]:
    with ckit.runtime.session_scope() as session:
        stmt = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.leaf_index)
        return list(session.scalars(stmt))


def _events(ckit: CatalogKit, department: str) -> list[str]:
    with ckit.runtime.session_scope() as session:
        stmt = select(WebhookEvent.type).where(WebhookEvent.department_code == department).order_by(WebhookEvent.pk)
        return list(session.scalars(stmt))


# ----------------------------------------------------------------------------- approval


def test_unconditional_request_is_approved_at_once_with_a_grant(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="unconditional", items=OPEN_ITEMS)
    done = submit(ckit, request_body(resource, quota_per_day=50))
    assert (done["status"], done["decided_by"], done["overdue"], done["working_days_left"]) == (
        "approved", "system", False, None,
    )  # fmt: skip
    assert done["receipt"]["leaf_index"] >= 0
    grant = ckit.client.get(f"/v1/catalog/grants/{done['grant_id']}", headers=ckit.consumer.headers).json()
    assert grant["items"] == ["uscc", "name"]
    assert (grant["consumer_code"], grant["provider_code"], grant["resource_code"]) == (
        ckit.consumer.code, ckit.provider.code, resource,
    )  # fmt: skip
    assert (grant["status"], grant["consent_required"], grant["quota_per_day"], grant["request_id"]) == (
        "active", False, 50, done["id"],
    )  # fmt: skip
    assert grant["matter_codes"] == [MATTER]
    entry = _entries(ckit, "catalog.access_request.created")[-1]
    assert (entry.resource_code, entry.matter_code, entry.department_code) == (resource, MATTER, ckit.consumer.code)
    assert json.loads(entry.body or b"{}")["grant_id"] == done["grant_id"]


def test_a_conditional_item_sends_an_unconditional_resource_to_the_provider(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="unconditional", items=DEFAULT_ITEMS)
    assert submit(ckit, request_body(resource, ["uscc", "name"]))["status"] == "approved"
    pending = submit(ckit, request_body(resource, ["uscc", "registered_capital"]))
    assert (pending["status"], pending["grant_id"]) == ("pending", None)


def test_conditional_request_goes_to_the_provider_who_approves(ckit: CatalogKit, monkeypatch: Any) -> None:
    freeze_today(monkeypatch, date(2026, 3, 6))  # a Friday
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="conditional")
    pending = submit(ckit, request_body(resource, ["uscc", "legal_representative", "uscc"], valid_days=30))
    assert pending["status"] == "pending"
    assert pending["items"] == ["uscc", "legal_representative"]
    assert pending["due_date"] == "2026-03-20"  # 10 working days, two weekends skipped
    assert (pending["overdue"], pending["working_days_left"]) == (False, 10)
    assert "cn.gov.licence-hub.catalog.access-request.submitted" in _events(ckit, ckit.provider.code)

    approved = decide(ckit, pending["id"], "approve", {"reason": "符合共享条件"})
    assert (approved["status"], approved["decided_by"], approved["decision_reason"]) == (
        "approved", ckit.provider.code, "符合共享条件",
    )  # fmt: skip
    grant = ckit.client.get(f"/v1/catalog/grants/{approved['grant_id']}", headers=ckit.provider.headers).json()
    assert grant["consent_required"] is True  # a personal item (法定代表人) is granted
    assert grant["items"] == ["uscc", "legal_representative"]
    days = (date.fromisoformat(grant["valid_until"][:10]) - date.fromisoformat(grant["valid_from"][:10])).days
    assert days == 30
    assert "cn.gov.licence-hub.catalog.access-request.approved" in _events(ckit, ckit.consumer.code)
    assert _entries(ckit, "catalog.access_request.approved")[-1].resource_code == resource


def test_provider_narrows_items_and_sets_terms_on_approval(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="conditional")
    pending = submit(ckit, request_body(resource, ["uscc", "legal_representative", "registered_capital"]))
    outside = decide(ckit, pending["id"], "approve", {"items": ["name"]}, expect=422)
    assert outside["code"] == "approval_items_invalid"
    approved = decide(
        ckit, pending["id"], "approve",
        {"items": ["uscc", "registered_capital"], "quota_per_day": 5, "consent_required": False},
    )  # fmt: skip
    grant = ckit.client.get(f"/v1/catalog/grants/{approved['grant_id']}", headers=ckit.consumer.headers).json()
    assert (grant["items"], grant["quota_per_day"], grant["consent_required"]) == (
        ["uscc", "registered_capital"], 5, False,
    )  # fmt: skip
    entry = _entries(ckit, "catalog.access_request.approved")[-1]
    assert json.loads(entry.body or b"{}")["consent_required"] == "false"  # a waived consent is on the record


def test_provider_rejects_with_a_reason(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="conditional")
    pending = submit(ckit, request_body(resource, ["registered_capital"]))
    no_reason = decide(ckit, pending["id"], "reject", {}, expect=422)
    assert no_reason["code"] == "decision_reason_required"
    blank = decide(ckit, pending["id"], "reject", {"reason": "   "}, expect=422)
    assert blank["code"] == "decision_reason_required"
    rejected = decide(ckit, pending["id"], "reject", {"reason": "申请用途与所列事项无关"})
    assert (rejected["status"], rejected["decision_reason"], rejected["grant_id"]) == (
        "rejected", "申请用途与所列事项无关", None,
    )  # fmt: skip
    assert "cn.gov.licence-hub.catalog.access-request.rejected" in _events(ckit, ckit.consumer.code)


def test_deciding_twice_is_a_conflict(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="conditional")
    pending = submit(ckit, request_body(resource))
    decide(ckit, pending["id"], "approve", {})
    again = decide(ckit, pending["id"], "reject", {"reason": "改变主意"}, expect=409)
    assert again["code"] == "access_request_already_decided"
    twice = decide(ckit, pending["id"], "approve", {}, expect=409)
    assert twice["code"] == "access_request_already_decided"
    with ckit.runtime.session_scope() as session:
        assert session.get(AccessRequest, pending["id"]).status == "approved"  # type: ignore[union-attr]


def test_only_the_provider_or_an_admin_decides(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="conditional")
    pending = submit(ckit, request_body(resource))
    third = ckit.department("临江市交通运输局")
    for who in (ckit.consumer, third):
        refused = decide(ckit, pending["id"], "approve", {}, who=who, expect=404)
        assert refused["code"] == "access_request_not_found"
        assert "receipt" in refused  # the refusal is audited
    denied = [e for e in _entries(ckit, "catalog.access_request.approved") if e.outcome == "denied"]
    assert {e.department_code for e in denied} == {ckit.consumer.code, third.code}
    assert {e.error_code for e in denied} == {"access_request_not_found"}
    assert ckit.client.get(f"/v1/catalog/access-requests/{pending['id']}", headers=third.headers).status_code == 404
    assert decide(ckit, pending["id"], "approve", {}, who=ckit.admin)["status"] == "approved"


def test_consumer_withdraws_a_pending_request(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="conditional")
    pending = submit(ckit, request_body(resource))
    by_provider = decide(ckit, pending["id"], "withdraw", {}, who=ckit.provider, expect=403)
    assert by_provider["code"] == "access_request_withdraw_forbidden"
    withdrawn = decide(ckit, pending["id"], "withdraw", {"reason": "事项已调整"}, who=ckit.consumer)
    assert withdrawn["status"] == "withdrawn"
    assert decide(ckit, pending["id"], "withdraw", {}, who=ckit.consumer, expect=409)["code"] == (
        "access_request_already_decided"
    )
    assert decide(ckit, pending["id"], "approve", {}, expect=409)["code"] == "access_request_already_decided"


# ----------------------------------------------------------------------------- refusals


def test_a_none_resource_cannot_be_requested(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="none", items=(ItemSpec("uscc", "统一社会信用代码", "none"),))
    refused = submit(ckit, request_body(resource, ["uscc"]), expect=403)
    assert refused["code"] == "resource_not_shareable"
    assert "receipt" in refused
    denied = _entries(ckit, "catalog.access_request.created")[-1]
    assert (denied.outcome, denied.error_code, denied.resource_code) == ("denied", "resource_not_shareable", resource)
    with ckit.runtime.session_scope() as session:
        assert session.scalars(select(AccessRequest).where(AccessRequest.resource_code == resource)).first() is None


def test_items_not_in_the_resource_are_refused(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="unconditional", items=OPEN_ITEMS)
    refused = submit(ckit, request_body(resource, ["uscc", "bank_account", "salary"]), expect=422)
    assert (refused["code"], refused["items"]) == ("access_request_items_unknown", ["bank_account", "salary"])
    empty = submit(ckit, request_body(resource, []) | {"items": []}, expect=422)
    assert empty["code"] == "request_invalid"  # the items are listed explicitly


def test_a_none_item_cannot_be_requested(ckit: CatalogKit) -> None:
    make_matter(ckit)
    items = (*OPEN_ITEMS, ItemSpec("id_number", "法定代表人身份证号", "none", personal=True))
    resource = ckit.insert_resource(share_type="conditional", items=items)
    refused = submit(ckit, request_body(resource, ["uscc", "id_number"]), expect=403)
    assert (refused["code"], refused["items"]) == ("item_not_shareable", ["id_number"])
    assert submit(ckit, request_body(resource, ["uscc"]))["status"] == "pending"


def test_matters_must_exist_and_be_the_consumers(ckit: CatalogKit) -> None:
    make_matter(ckit)
    make_matter(ckit, "11330100MB7654321Y3000222002", department=ckit.provider)
    resource = ckit.insert_resource(share_type="unconditional", items=OPEN_ITEMS)
    unknown = submit(ckit, request_body(resource, matter_codes=[MATTER, "NO-SUCH-MATTER"]), expect=422)
    assert (unknown["code"], unknown["matter_codes"]) == ("matter_unknown", ["NO-SUCH-MATTER"])
    foreign = submit(ckit, request_body(resource, matter_codes=["11330100MB7654321Y3000222002"]), expect=422)
    assert foreign["code"] == "matter_not_handled_by_consumer"


def test_unknown_unpublished_and_own_resources_are_refused(ckit: CatalogKit) -> None:
    make_matter(ckit)
    assert submit(ckit, request_body("3990/999999"), expect=422)["code"] == "resource_unknown"
    withdrawn = ckit.insert_resource(share_type="unconditional", items=OPEN_ITEMS, status="withdrawn")
    assert submit(ckit, request_body(withdrawn), expect=422)["code"] == "resource_unknown"
    own = ckit.insert_resource(share_type="unconditional", items=OPEN_ITEMS, provider=ckit.consumer)
    assert submit(ckit, request_body(own), expect=422)["code"] == "access_request_own_resource"


def test_requests_need_catalog_write(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="unconditional", items=OPEN_ITEMS)
    reader = ckit.department("临江市统计局", "catalog:read")
    response = ckit.client.post("/v1/catalog/access-requests", json=request_body(resource), headers=reader.headers)
    assert response.status_code == 403


# ----------------------------------------------------------------------------- listing and deadlines


def test_listing_by_role_status_and_overdue(ckit: CatalogKit, monkeypatch: Any) -> None:
    freeze_today(monkeypatch, date(2026, 3, 6))
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="conditional")
    late = submit(ckit, request_body(resource))
    answered = submit(ckit, request_body(resource, ["registered_capital"]))
    decide(ckit, answered["id"], "reject", {"reason": "不符合共享条件"})

    def listing(who: Department, **params: Any) -> list[dict[str, Any]]:
        response = ckit.client.get("/v1/catalog/access-requests", params=params, headers=who.headers)
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    assert {r["id"] for r in listing(ckit.consumer, role="consumer")} == {late["id"], answered["id"]}
    assert listing(ckit.consumer, role="provider") == []
    assert [r["id"] for r in listing(ckit.provider, role="provider", status="pending")] == [late["id"]]
    assert listing(ckit.provider, overdue="true") == []
    third = ckit.department("临江市交通运输局")
    assert listing(third) == []
    assert {late["id"], answered["id"]} <= {r["id"] for r in listing(ckit.admin)}

    freeze_today(monkeypatch, date(2026, 3, 20))  # the due date itself: still in time
    (row,) = listing(ckit.provider, status="pending")
    assert (row["overdue"], row["working_days_left"]) == (False, 0)
    assert listing(ckit.provider, overdue="true") == []

    freeze_today(monkeypatch, date(2026, 3, 23))  # the Monday after: one working day late
    (row,) = listing(ckit.provider, overdue="true")
    assert (row["id"], row["overdue"], row["working_days_left"]) == (late["id"], True, -1)
    (done,) = [r for r in listing(ckit.consumer) if r["id"] == answered["id"]]
    assert (done["overdue"], done["working_days_left"]) == (False, None)

    decide(ckit, late["id"], "approve", {"reason": "逾期后补办"})
    assert listing(ckit.provider, overdue="true") == []


def test_due_date_skips_weekends_and_calendar_holidays(ckit: CatalogKit, monkeypatch: Any) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="conditional")
    freeze_today(monkeypatch, date(2026, 3, 6))  # Friday: the next ten working days end on Friday 20 March
    assert submit(ckit, request_body(resource))["due_date"] == "2026-03-20"
    freeze_today(monkeypatch, date(2026, 9, 30))  # Wednesday before the holiday week
    # 1–8 October off, Saturday 10 October worked: 9, 10, 12–16, 19, 20, 21 October.
    held = submit(ckit, request_body(resource))
    assert held["due_date"] == "2026-10-21"
    freeze_today(monkeypatch, date(2026, 10, 9))
    row = ckit.client.get(f"/v1/catalog/access-requests/{held['id']}", headers=ckit.consumer.headers).json()
    assert row["working_days_left"] == 9  # 10 October (调休) counts, Sunday 11 October does not
    freeze_today(monkeypatch, date(2026, 9, 26))  # Saturday; Sunday 27 September is a make-up working day
    assert submit(ckit, request_body(resource))["due_date"] == "2026-10-15"


def test_without_a_calendar_only_weekends_are_off(make_settings: Any) -> None:
    cal = access_requests.calendar(make_settings())
    assert cal.add_working_days(date(2026, 9, 30), 10) == date(2026, 10, 14)
