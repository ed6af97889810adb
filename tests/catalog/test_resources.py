"""Resources through the API: create, read, change, version, withdraw, and the licence-type link."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from audit.models import AuditEntry
from catalog.classifications import LICENCE_NODE, ensure_classifications
from catalog.models import Classification, Grant, Resource
from hub.clock import utcnow
from hub.webhooks.models import WebhookEvent
from licences.demo_types import DEMO_TYPES
from licences.types import ensure_demo_types
from tests.catalog.catalogkit import LEGAL_BASIS

RESOURCES = "/v1/catalog/resources"


def resource_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "classification_code": "102",
        "name": "企业基本登记信息",
        "summary": "本市登记注册的企业的基本信息。",
        "format": "数据库",
        "items": [
            {"key": "uscc", "name": "统一社会信用代码", "share_type": "unconditional", "length": 18},
            {"key": "name", "name": "企业名称", "share_type": "unconditional"},
            {"key": "legal_representative", "name": "法定代表人", "share_type": "conditional", "personal": True},
            {"key": "registered_capital", "name": "注册资本", "data_type": "number", "share_type": "conditional"},
        ],
        "share_type": "conditional",
        "share_conditions": "仅限办理企业相关政务服务事项时使用",
        "share_method": "api",
        "open_attribute": "closed",
        "update_frequency": "daily",
        "publish_date": "2026-01-15",
        "keywords": ["企业", "登记"],
    }
    body.update(overrides)
    return body


@pytest.fixture
def tree(runtime: Any) -> None:
    with runtime.session_scope() as session:
        ensure_classifications(session)


def create(ckit: Any, expect: int = 201, headers: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    response = ckit.client.post(RESOURCES, json=resource_body(**overrides), headers=headers or ckit.provider.headers)
    assert response.status_code == expect, response.text
    return dict(response.json())


def audit_rows(runtime: Any, code: str) -> list[AuditEntry]:
    with runtime.session_scope() as session:
        query = select(AuditEntry).where(AuditEntry.resource_code == code).order_by(AuditEntry.leaf_index)
        rows = list(session.scalars(query))
        session.expunge_all()
    return rows


# ------------------------------------------------------------------------------------------- create and read


def test_create_and_get(ckit: Any, runtime: Any, tree: None) -> None:
    response = ckit.client.post(RESOURCES, json=resource_body(), headers=ckit.provider.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    code = created["code"]
    assert code.startswith("102/") and len(code) == 10
    assert response.headers["Location"] == f"{RESOURCES}/{code}"
    assert created["receipt"]["leaf_index"] >= 0
    assert created["provider_code"] == ckit.provider.code
    assert created["provider_name"] == ckit.provider.name
    assert created["version"] == 1 and created["status"] == "published"
    assert created["contains_personal_data"] is True

    got = ckit.client.get(f"{RESOURCES}/{code}", headers=ckit.consumer.headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert [i["key"] for i in body["items"]] == ["uscc", "name", "legal_representative", "registered_capital"]
    assert body["items"][2] | {"personal": True} == body["items"][2]
    assert body["items"][3]["data_type"] == "number"
    assert body["share_conditions"] == "仅限办理企业相关政务服务事项时使用"

    [entry] = audit_rows(runtime, code)
    assert entry.action == "catalog.resource.created"
    assert entry.actor == ckit.provider.code


def test_codes_follow_the_classification_sequence(ckit: Any, tree: None) -> None:
    first = create(ckit)["code"]
    second = create(ckit, name="企业年报信息")["code"]
    assert int(second.split("/")[1]) == int(first.split("/")[1]) + 1


def test_withdrawn_codes_are_never_reused(ckit: Any, runtime: Any, tree: None) -> None:
    code = create(ckit)["code"]
    response = ckit.client.post(f"{RESOURCES}/{code}/withdraw", json={"reason": "数据已并入新资源"},
                                headers=ckit.provider.headers)  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn"
    assert response.json()["withdrawal_reason"] == "数据已并入新资源"
    again = create(ckit)["code"]
    assert again != code and int(again.split("/")[1]) > int(code.split("/")[1])
    # Withdrawn, yet still readable under its code, and it can no longer change.
    assert ckit.client.get(f"{RESOURCES}/{code}", headers=ckit.consumer.headers).json()["status"] == "withdrawn"
    patch = ckit.client.patch(f"{RESOURCES}/{code}", json={"name": "新名称"}, headers=ckit.provider.headers)
    assert patch.status_code == 409 and patch.json()["code"] == "resource_withdrawn"
    twice = ckit.client.post(f"{RESOURCES}/{code}/withdraw", json={"reason": "再次"}, headers=ckit.provider.headers)
    assert twice.status_code == 409
    with runtime.session_scope() as session:
        assert session.get(Classification, "102").next_sequence == int(again.split("/")[1]) + 1  # type: ignore[union-attr]
    assert [e.action for e in audit_rows(runtime, code)][-3:] == [
        "catalog.resource.withdrawn", "catalog.resource.updated", "catalog.resource.withdrawn",
    ]  # fmt: skip


def test_admin_names_the_provider_and_a_department_cannot(ckit: Any, tree: None) -> None:
    made = create(ckit, headers=ckit.admin.headers, provider_code=ckit.provider.code)
    assert made["provider_code"] == ckit.provider.code
    refused = ckit.client.post(
        RESOURCES, json=resource_body(provider_code=ckit.admin.code), headers=ckit.provider.headers
    )
    assert refused.status_code == 403 and refused.json()["code"] == "provider_not_allowed"
    unknown = ckit.client.post(
        RESOURCES, json=resource_body(provider_code="91330100MA2XXXXX0X"), headers=ckit.admin.headers
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "provider_unknown"


# ------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"classification_code": "9"}, "request_invalid"),  # 类 is 1–3
        ({"classification_code": "10a"}, "request_invalid"),
        ({"classification_code": "109"}, "classification_unknown"),
        (
            {
                "share_type": "none",
                "share_conditions": None,
                "items": [{"key": "a", "name": "甲", "share_type": "none"}],
            },
            "resource_invalid",
        ),  # no legal basis
        ({"share_conditions": None}, "resource_invalid"),  # conditional without conditions
        ({"share_conditions": "   "}, "resource_invalid"),
        (
            {
                "items": [
                    {"key": "a", "name": "甲", "share_type": "conditional"},
                    {"key": "a", "name": "乙", "share_type": "conditional"},
                ]
            },
            "resource_invalid",
        ),  # duplicate keys
        (
            {
                "share_type": "unconditional",
                "items": [
                    {"key": "a", "name": "甲", "share_type": "unconditional"},
                    {"key": "b", "name": "乙", "share_type": "none"},
                ],
            },
            "resource_invalid",
        ),  # more open than an item
        ({"items": [{"key": "a", "name": "甲", "share_type": "none"}]}, "resource_invalid"),  # nothing shareable
        ({"related_codes": ["102/999999"]}, "related_resource_unknown"),
        ({"related_codes": ["102-000001"]}, "request_invalid"),
        ({"format": "Excel"}, "request_invalid"),
        ({"update_frequency": "hourly"}, "request_invalid"),
        ({"items": []}, "request_invalid"),
        ({"items": [{"key": "1bad", "name": "甲", "share_type": "conditional"}]}, "request_invalid"),
        ({"name": ""}, "request_invalid"),
        ({"summary": " \n\t "}, "request_invalid"),  # blank: DCAT-AP needs a dct:description
        ({"summary": "\x1f"}, "request_invalid"),  # a C0 separator: blank to Python, not to pydantic's strip
        ({"summary": "摘要\x00"}, "request_invalid"),  # control characters cannot be exported as XML
        ({"name": "名称\n第二行"}, "request_invalid"),  # a title is one line
        ({"keywords": ["\x1c"]}, "request_invalid"),
        ({"share_method": "licence"}, "resource_invalid"),  # reserved for licence types
        ({"open_attribute": "open"}, "resource_invalid"),  # open needs unconditional, no personal data
        ({"unknown_field": 1}, "request_invalid"),
    ],
)
def test_create_refuses_inconsistent_metadata(ckit: Any, tree: None, overrides: dict[str, Any], code: str) -> None:
    refused = create(ckit, expect=422, **overrides)
    assert refused["code"] == code


def test_none_resource_needs_and_keeps_its_legal_basis(ckit: Any, tree: None) -> None:
    made = create(
        ckit, share_type="none", share_conditions=None, legal_basis=LEGAL_BASIS,
        items=[{"key": "case", "name": "案件信息", "share_type": "none"}],
    )  # fmt: skip
    assert made["legal_basis"] == LEGAL_BASIS and made["share_type"] == "none"


def test_related_codes_must_exist(ckit: Any, tree: None) -> None:
    first = create(ckit)["code"]
    second = create(ckit, name="企业年报信息", related_codes=[first, first])
    assert second["related_codes"] == [first]


def test_writes_need_catalog_write(ckit: Any, tree: None) -> None:
    reader = ckit.department("临江市统计局", "catalog:read")
    refused = ckit.client.post(RESOURCES, json=resource_body(), headers=reader.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "scope_missing"
    assert ckit.client.get(RESOURCES, headers=reader.headers).status_code == 200
    writer_only = ckit.department("临江市档案局", "catalog:write")
    assert ckit.client.get(RESOURCES, headers=writer_only.headers).status_code == 403
    assert ckit.client.get(RESOURCES).status_code == 401


def test_malformed_codes_in_paths(ckit: Any, tree: None) -> None:
    for bad in ("102", "102/12345", "102/0000001", "x02/000001", "102/00000a"):
        response = ckit.client.get(f"{RESOURCES}/{bad}", headers=ckit.consumer.headers)
        assert response.status_code == 422, bad
        assert response.json()["code"] == "resource_code_invalid"
    missing = ckit.client.get(f"{RESOURCES}/102/999999", headers=ckit.consumer.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "resource_not_found"


def test_duplicate_codes_are_impossible(ckit: Any, runtime: Any, tree: None) -> None:
    """Even a counter set back by hand never hands out a used code again."""
    code = create(ckit)["code"]
    with runtime.session_scope() as session:
        session.get(Classification, "102").next_sequence = int(code.split("/")[1])  # type: ignore[union-attr]
    again = create(ckit)["code"]
    assert again != code
    with runtime.session_scope() as session:
        assert len(list(session.scalars(select(Resource.code).where(Resource.code == code)))) == 1


# ------------------------------------------------------------------------------------------- update, versions


def test_metadata_change_keeps_the_version(ckit: Any, runtime: Any, tree: None) -> None:
    made = create(ckit)
    response = ckit.client.patch(
        f"{RESOURCES}/{made['code']}", json={"summary": "更新后的摘要", "update_frequency": "weekly"},
        headers=ckit.provider.headers,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1 and body["summary"] == "更新后的摘要" and body["update_frequency"] == "weekly"
    assert body["modified_at"] > made["modified_at"]
    assert body["receipt"] is not None
    versions = ckit.client.get(f"{RESOURCES}/{made['code']}/versions", headers=ckit.consumer.headers).json()
    assert [v["version"] for v in versions] == [1]
    [_, entry] = audit_rows(runtime, made["code"])
    assert entry.action == "catalog.resource.updated"


def _grant(runtime: Any, consumer: str, provider: str, code: str, grant_status: str = "active") -> None:
    now = utcnow()
    with runtime.session_scope() as session:
        session.add(
            Grant(
                id=f"g{len(grant_status)}{code[-6:]}{consumer[-4:]}", consumer_code=consumer, provider_code=provider,
                resource_code=code, items=["uscc"], matter_codes=["M1"], purpose="测试", legal_basis=LEGAL_BASIS,
                consent_required=False, valid_from=now, valid_until=now + timedelta(days=30), quota_per_day=None,
                status=grant_status, created_at=now, modified_at=now,
            )
        )  # fmt: skip


def test_schema_change_makes_a_version_and_notifies_grant_holders(ckit: Any, runtime: Any, tree: None) -> None:
    made = create(ckit)
    code = made["code"]
    _grant(runtime, ckit.consumer.code, ckit.provider.code, code)
    revoked_holder = ckit.department("临江市民政局")
    _grant(runtime, revoked_holder.code, ckit.provider.code, code, grant_status="revoked")
    items = resource_body()["items"]
    items[1] |= {"share_type": "conditional"}  # share type changed
    items.append({"key": "established_on", "name": "成立日期", "data_type": "date", "share_type": "unconditional"})
    response = ckit.client.patch(
        f"{RESOURCES}/{code}",
        json={"items": items[1:], "change_summary": "新增成立日期"},
        headers=ckit.provider.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert [i["key"] for i in response.json()["items"]][-1] == "established_on"

    versions = ckit.client.get(f"{RESOURCES}/{code}/versions", headers=ckit.consumer.headers).json()
    assert [(v["version"], v["change_summary"]) for v in versions] == [(1, "首次发布"), (2, "新增成立日期")]
    first = ckit.client.get(f"{RESOURCES}/{code}/versions/1", headers=ckit.consumer.headers).json()
    assert first["snapshot"]["items"][0]["key"] == "uscc"
    second = ckit.client.get(f"{RESOURCES}/{code}/versions/2", headers=ckit.consumer.headers).json()
    assert "uscc" not in [i["key"] for i in second["snapshot"]["items"]]
    assert ckit.client.get(f"{RESOURCES}/{code}/versions/3", headers=ckit.consumer.headers).status_code == 404

    with runtime.session_scope() as session:
        events = list(session.scalars(select(WebhookEvent).where(WebhookEvent.subject == code)))
        sent = {(e.department_code, e.type) for e in events}
        body = events[0].body
    assert sent == {(ckit.consumer.code, "cn.gov.licence-hub.catalog.resource.version-changed")}
    assert b'"removed":["uscc"]' in body.replace(b" ", b"") or b'"removed": ["uscc"]' in body

    # Renaming an item is not a schema change.
    items2 = response.json()["items"]
    items2[0]["name"] = "企业名称（全称）"
    renamed = ckit.client.patch(f"{RESOURCES}/{code}", json={"items": items2}, headers=ckit.provider.headers)
    assert renamed.json()["version"] == 2 and renamed.json()["items"][0]["name"] == "企业名称（全称）"


def test_resource_share_type_change_is_a_new_version(ckit: Any, tree: None) -> None:
    made = create(ckit, share_type="conditional", items=[{"key": "a", "name": "甲", "share_type": "unconditional"}])
    response = ckit.client.patch(
        f"{RESOURCES}/{made['code']}", json={"share_type": "unconditional"}, headers=ckit.provider.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2


def test_update_is_checked_like_create(ckit: Any, tree: None) -> None:
    made = create(ckit)
    refused = ckit.client.patch(
        f"{RESOURCES}/{made['code']}", json={"share_type": "none"}, headers=ckit.provider.headers
    )
    assert refused.status_code == 422 and refused.json()["code"] == "resource_invalid"
    self_ref = ckit.client.patch(
        f"{RESOURCES}/{made['code']}", json={"related_codes": [made["code"]]}, headers=ckit.provider.headers
    )
    assert self_ref.status_code == 422 and self_ref.json()["code"] == "related_resource_unknown"
    for summary in ("  ", "\x1e\x1f"):
        blank = ckit.client.patch(
            f"{RESOURCES}/{made['code']}", json={"summary": summary}, headers=ckit.provider.headers
        )
        assert blank.status_code == 422 and blank.json()["code"] == "request_invalid"
    kept = ckit.client.patch(
        f"{RESOURCES}/{made['code']}", json={"summary": "  第一行\n第二行\t "}, headers=ckit.provider.headers
    )
    assert kept.status_code == 200 and kept.json()["summary"] == "第一行\n第二行"
    export = ckit.client.get(f"/v1/catalog/dcat/datasets/{made['code']}", headers=ckit.provider.headers)
    assert export.status_code != 500


def test_other_departments_get_the_same_404_as_missing(ckit: Any, runtime: Any, tree: None) -> None:
    code = create(ckit)["code"]
    other = ckit.client.patch(f"{RESOURCES}/{code}", json={"name": "篡改"}, headers=ckit.consumer.headers)
    missing = ckit.client.patch(f"{RESOURCES}/102/999999", json={"name": "篡改"}, headers=ckit.consumer.headers)
    assert other.status_code == missing.status_code == 404
    assert other.json()["code"] == missing.json()["code"] == "resource_not_found"
    assert other.json()["receipt"] is not None  # the refusal is audited
    withdraw = ckit.client.post(f"{RESOURCES}/{code}/withdraw", json={"reason": "x"}, headers=ckit.consumer.headers)
    assert withdraw.status_code == 404
    assert ckit.client.get(f"{RESOURCES}/{code}", headers=ckit.provider.headers).json()["name"] == "企业基本登记信息"
    denied = [e for e in audit_rows(runtime, code) if e.outcome == "denied"]
    assert {e.action for e in denied} == {"catalog.resource.updated", "catalog.resource.withdrawn"}
    assert {e.actor for e in denied} == {ckit.consumer.code}
    # An admin may change any department's resource.
    admin = ckit.client.patch(f"{RESOURCES}/{code}", json={"name": "企业登记信息"}, headers=ckit.admin.headers)
    assert admin.status_code == 200 and admin.json()["name"] == "企业登记信息"


# ------------------------------------------------------------------------------------------- classifications


def test_classification_tree(ckit: Any, tree: None) -> None:
    nodes = {n["code"]: n for n in ckit.client.get("/v1/catalog/classifications", headers=ckit.consumer.headers).json()}
    assert nodes["1"]["name"] == "基础信息资源类" and nodes["2"]["level"] == 1 and nodes["3"]["parent_code"] is None
    assert nodes[LICENCE_NODE] == {"code": "105", "name": "电子证照基础信息资源", "level": 2, "parent_code": "1"}
    made = ckit.client.post(
        "/v1/catalog/classifications", json={"code": "105001", "name": "企业证照"}, headers=ckit.admin.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["level"] == 3 and made.json()["parent_code"] == "105"
    leaf = ckit.client.post(
        "/v1/catalog/classifications", json={"code": "1050011", "name": "市场监管证照"}, headers=ckit.admin.headers
    )
    assert leaf.json()["level"] == 4
    orphan = ckit.client.post(
        "/v1/catalog/classifications", json={"code": "105002001", "name": "无上级"}, headers=ckit.admin.headers
    )
    assert orphan.status_code == 404 and orphan.json()["code"] == "classification_not_found"
    malformed = ckit.client.post(
        "/v1/catalog/classifications", json={"code": "1050", "name": "四位"}, headers=ckit.admin.headers
    )
    assert malformed.status_code == 422 and malformed.json()["code"] == "classification_code_invalid"
    duplicate = ckit.client.post(
        "/v1/catalog/classifications", json={"code": "105001", "name": "重复"}, headers=ckit.admin.headers
    )
    assert duplicate.status_code == 409
    by_department = ckit.client.post(
        "/v1/catalog/classifications", json={"code": "102001", "name": "x"}, headers=ckit.provider.headers
    )
    assert by_department.status_code == 403
    assert create(ckit, classification_code="1050011")["code"] == "1050011/000001"


def test_ensure_classifications_is_idempotent(runtime: Any, tree: None) -> None:
    with runtime.session_scope() as session:
        assert ensure_classifications(session) == 0


# ------------------------------------------------------------------------------------------- licence types


def test_demo_licence_types_are_published(kit: Any, ckit: Any, runtime: Any) -> None:
    with runtime.session_scope() as session:
        rows = {
            r.licence_type_code: (r.code, r.share_type, r.provider_code, r.contains_personal_data, r.share_method)
            for r in session.scalars(select(Resource).where(Resource.licence_type_code.is_not(None)))
        }
    assert set(rows) == {t.type_code for t in DEMO_TYPES}
    business = next(t for t in DEMO_TYPES if t.name == "营业执照")
    code, share_type, provider, personal, method = rows[business.type_code]
    assert code.startswith(f"{LICENCE_NODE}/") and share_type == "unconditional" and not personal
    assert provider == kit.seals.owner.code and method == "licence"
    household = next(t for t in DEMO_TYPES if t.name == "户口登记")
    assert rows[household.type_code][1] == "conditional" and rows[household.type_code][3] is True

    body = ckit.client.get(f"{RESOURCES}/{code}", headers=ckit.consumer.headers).json()
    assert [i["key"] for i in body["items"]] == list(business.face_schema["properties"])
    assert body["items"][0]["name"] == "统一社会信用代码"
    assert body["items"][5]["data_type"] == "date"
    listed = ckit.client.get("/v1/licence-types", headers=ckit.consumer.headers).json()
    assert {t["certificate_type_code"]: t["catalogue_resource_code"] for t in listed}[business.type_code] == code
    # Seeding again publishes nothing twice.
    with runtime.session_scope() as session:
        ensure_demo_types(session, [kit.seals.owner.code])
        assert len(list(session.scalars(select(Resource).where(Resource.licence_type_code.is_not(None))))) == 5


def test_a_licence_type_defined_through_the_api_is_published(ckit: Any, runtime: Any) -> None:
    food = next(t for t in DEMO_TYPES if t.name == "食品经营许可证")
    type_code = f"{ckit.admin.code}001"
    response = ckit.client.post(
        "/v1/licence-types",
        json={
            "certificate_type_code": type_code, "certificate_type_name": "摊贩登记证", "holder_type": "111",
            "defining_authority_name": ckit.admin.name, "validity": {"kind": "years", "years": 3},
            "issuer_codes": [ckit.provider.code], "face_schema": food.face_schema,
        },
        headers=ckit.admin.headers,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    code = response.json()["catalogue_resource_code"]
    assert code.startswith(f"{LICENCE_NODE}/")
    body = ckit.client.get(f"{RESOURCES}/{code}", headers=ckit.consumer.headers).json()
    assert body["licence_type_code"] == type_code
    assert body["provider_code"] == ckit.admin.code  # the defining authority is a department here
    assert body["share_type"] == "conditional" and body["share_conditions"]
    assert {i["key"]: i["share_type"] for i in body["items"]}["signatory"] == "none"
    assert all(i["personal"] for i in body["items"])  # holder type 111
    found = ckit.client.get(RESOURCES, params={"licence_type_code": type_code}, headers=ckit.consumer.headers).json()
    assert [r["code"] for r in found["items"]] == [code]
