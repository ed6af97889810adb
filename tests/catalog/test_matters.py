"""Matters (事项) and materials over HTTP: create, read, update, validation, who may change them, audit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from audit.models import AuditEntry
from catalog import matters
from hub.runtime import Runtime
from licences.types import ensure_demo_types
from tests.catalog.catalogkit import CatalogKit
from tests.licences.licencekit import BUSINESS

MATTER = "11330100MB1234567X3000111001"


def _types(ckit: CatalogKit) -> None:
    with ckit.runtime.session_scope() as session:
        ensure_demo_types(session, [ckit.provider.code], only=(BUSINESS,))


def matter_body(code: str = MATTER, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "name": "就业登记", "materials": []}
    body.update(extra)
    return body


def _post(ckit: CatalogKit, body: dict[str, Any], headers: dict[str, str] | None = None, expect: int = 201) -> Any:
    response = ckit.client.post("/v1/catalog/matters", json=body, headers=headers or ckit.consumer.headers)
    assert response.status_code == expect, response.text
    return response.json()


def _actions(runtime: Runtime, action: str) -> list[AuditEntry]:
    with runtime.session_scope() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_create_read_and_list_a_matter_with_materials(ckit: CatalogKit) -> None:
    _types(ckit)
    resource = ckit.insert_resource(share_type="unconditional")
    materials = [
        {"code": "M01", "name": "营业执照", "licence_type_codes": [BUSINESS]},
        {"code": "M02", "name": "企业登记信息", "required": False, "resource_codes": [resource]},
        {"code": "M03", "name": "营业执照或登记信息", "licence_type_codes": [BUSINESS], "resource_codes": [resource]},
    ]
    created = _post(ckit, matter_body(materials=materials, description="劳动者就业登记"))
    assert created["department_code"] == ckit.consumer.code
    assert created["status"] == "active"
    assert [m["code"] for m in created["materials"]] == ["M01", "M02", "M03"]
    assert created["materials"][1] == {
        "code": "M02", "name": "企业登记信息", "required": False, "licence_type_codes": [], "resource_codes": [resource]
    }  # fmt: skip
    assert created["receipt"]["leaf_index"] >= 0

    got = ckit.client.get(f"/v1/catalog/matters/{MATTER}", headers=ckit.provider.headers)
    assert got.status_code == 200
    assert got.json()["materials"] == created["materials"]
    listed = ckit.client.get("/v1/catalog/matters", params={"department_code": ckit.consumer.code},
                             headers=ckit.provider.headers)  # fmt: skip
    assert [m["code"] for m in listed.json()] == [MATTER]
    entry = _actions(ckit.runtime, "catalog.matter.created")[-1]
    assert (entry.matter_code, entry.department_code, entry.outcome) == (MATTER, ckit.consumer.code, "ok")

    with ckit.runtime.session_scope() as session:
        found = matters.materials_for(session, MATTER)
        assert [(m.code, m.required, m.licence_type_codes) for m in found] == [
            ("M01", True, [BUSINESS]), ("M02", False, []), ("M03", True, [BUSINESS]),
        ]  # fmt: skip


def test_materials_for_an_unknown_matter_raises(ckit: CatalogKit) -> None:
    with ckit.runtime.session_scope() as session, pytest.raises(matters.MatterNotFound):
        matters.materials_for(session, "NO-SUCH-MATTER")
    assert ckit.client.get("/v1/catalog/matters/NO-SUCH-MATTER", headers=ckit.consumer.headers).status_code == 404


@pytest.mark.parametrize("code", ["abc123", "SHORT", "A--BCDEFG", "-ABCDEFG", "ABCDEFG-", "事项编码123456", "A" * 65])
def test_malformed_matter_codes_are_refused(ckit: CatalogKit, code: str) -> None:
    response = ckit.client.post("/v1/catalog/matters", json=matter_body(code), headers=ckit.consumer.headers)
    assert response.status_code == 422
    assert response.json()["code"] in {"matter_code_invalid", "request_invalid"}


def test_well_formed_codes_are_accepted(ckit: CatalogKit) -> None:
    for code in ("000105410000", "11330100MB1234567X-3000-111", "A" * 64):
        _post(ckit, matter_body(code))


def test_duplicate_matter_code_is_a_conflict(ckit: CatalogKit) -> None:
    _post(ckit, matter_body())
    again = ckit.client.post("/v1/catalog/matters", json=matter_body(), headers=ckit.provider.headers)
    assert (again.status_code, again.json()["code"]) == (409, "matter_exists")


def test_material_validation(ckit: CatalogKit) -> None:
    _types(ckit)
    withdrawn = ckit.insert_resource(share_type="unconditional", status="withdrawn")

    def refused(materials: list[dict[str, Any]], code: str) -> None:
        response = ckit.client.post(
            "/v1/catalog/matters", json=matter_body(materials=materials), headers=ckit.consumer.headers
        )
        assert (response.status_code, response.json()["code"]) == (422, code), response.text

    refused([{"code": "M01", "name": "营业执照"}], "material_unsatisfiable")
    refused(
        [{"code": "M01", "name": "x", "licence_type_codes": ["91330100MA00000000999"]}], "material_licence_type_unknown"
    )
    refused([{"code": "M01", "name": "x", "resource_codes": ["3990/999999"]}], "material_resource_unknown")
    refused([{"code": "M01", "name": "x", "resource_codes": [withdrawn]}], "material_resource_unknown")
    refused(
        [{"code": "M01", "name": "a", "licence_type_codes": [BUSINESS]},
         {"code": "M01", "name": "b", "licence_type_codes": [BUSINESS]}],
        "material_invalid",
    )  # fmt: skip
    with ckit.runtime.session_scope() as session:
        assert matters.get_matter(session, MATTER) is None  # nothing half-written


def test_only_an_admin_names_another_handling_department(ckit: CatalogKit) -> None:
    denied = ckit.client.post(
        "/v1/catalog/matters", json=matter_body(department_code=ckit.provider.code), headers=ckit.consumer.headers
    )
    assert (denied.status_code, denied.json()["code"]) == (403, "matter_department_forbidden")
    created = _post(ckit, matter_body(department_code=ckit.provider.code), headers=ckit.admin.headers)
    assert created["department_code"] == ckit.provider.code
    entry = _actions(ckit.runtime, "catalog.matter.created")[-1]
    assert entry.actor_type == "admin"


def test_update_materials_keeps_codes_adds_and_removes(ckit: CatalogKit) -> None:
    _types(ckit)
    resource = ckit.insert_resource(share_type="unconditional")
    _post(ckit, matter_body(materials=[
        {"code": "M01", "name": "营业执照", "licence_type_codes": [BUSINESS]},
        {"code": "M02", "name": "登记信息", "resource_codes": [resource]},
    ]))  # fmt: skip
    update = {
        "name": "就业登记（变更）",
        "materials": [
            {"code": "M03", "name": "新材料", "resource_codes": [resource]},
            {"code": "M01", "name": "营业执照（副本）", "required": False, "licence_type_codes": [BUSINESS, BUSINESS]},
        ],
    }
    response = ckit.client.put(f"/v1/catalog/matters/{MATTER}", json=update, headers=ckit.consumer.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "就业登记（变更）"
    assert [(m["code"], m["name"], m["required"]) for m in body["materials"]] == [
        ("M03", "新材料", True), ("M01", "营业执照（副本）", False),
    ]  # fmt: skip
    assert body["materials"][1]["licence_type_codes"] == [BUSINESS]  # de-duplicated
    assert body["receipt"]["leaf_index"] >= 0
    assert _actions(ckit.runtime, "catalog.matter.updated")[-1].matter_code == MATTER


def test_update_by_another_department_is_refused_and_unknown_is_404(ckit: CatalogKit) -> None:
    _post(ckit, matter_body())
    update = {"name": "改名", "materials": []}
    other = ckit.client.put(f"/v1/catalog/matters/{MATTER}", json=update, headers=ckit.provider.headers)
    assert (other.status_code, other.json()["code"]) == (403, "matter_not_handler")
    missing = ckit.client.put("/v1/catalog/matters/NO-SUCH-MATTER", json=update, headers=ckit.consumer.headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "matter_not_found")
    by_admin = ckit.client.put(f"/v1/catalog/matters/{MATTER}", json=update, headers=ckit.admin.headers)
    assert by_admin.status_code == 200
    with ckit.runtime.session_scope() as session:
        matter = matters.get_matter_or_raise(session, MATTER)
        assert (matter.name, matter.department_code) == ("改名", ckit.consumer.code)


def test_matters_need_catalogue_scopes(ckit: CatalogKit) -> None:
    outsider = ckit.department("临江市档案馆", "licence:read")
    assert ckit.client.get("/v1/catalog/matters", headers=outsider.headers).status_code == 403
    response = ckit.client.post("/v1/catalog/matters", json=matter_body(), headers=outsider.headers)
    assert response.status_code == 403
    reader = ckit.department("临江市统计局", "catalog:read")
    assert ckit.client.get("/v1/catalog/matters", headers=reader.headers).status_code == 200
    assert ckit.client.post("/v1/catalog/matters", json=matter_body(), headers=reader.headers).status_code == 403
