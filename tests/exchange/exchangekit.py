"""A complete exchange scenario over the real API, for the exchange tests.

A consumer department, a matter whose materials are licence types, grants (one without and one with holder
consent), licences held, and the platform seal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from factories import department
from sqlalchemy import select

from catalog.models import Resource
from seals import lifecycle
from seals.lifecycle import SealOwner
from tests.licences.licencekit import BUSINESS, Department, LicenceKit, demo_type, department_client
from tests.seals.sealkit import SealKit, make_kit

MATTER = "11330100MB1234567X3000333001"
OTHER_MATTER = "11330100MB1234567X3000333002"
DOCTOR = demo_type("医师执业证书").type_code
BUSINESS_ITEMS = ["unified_social_credit_code", "name", "entity_type", "legal_representative"]
DOCTOR_ITEMS = ["name", "physician_level", "practice_category", "birth_date"]
CONSUMER_SCOPES = "catalog:read catalog:write exchange:fetch exchange:verify"


@dataclass
class ExchangeKit:
    kit: LicenceKit
    consumer: Department
    provider: Department  # the issuer's catalogue client: it provides the licence-type resources
    platform: SealKit
    grants: dict[str, dict[str, Any]]  # by licence type code
    company: dict[str, str]
    company_licence: dict[str, Any]
    citizen: dict[str, str]
    doctor_licence: dict[str, Any]

    def fetch_body(self, **change: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "matter_code": MATTER, "case_number": "LJ-2026-000777", "officer_id": "officer-42",
            "holder": {"type": self.company["type"], "code": self.company["code"]},
            "certificate_type_code": BUSINESS,
        }  # fmt: skip
        body.update(change)
        return {k: v for k, v in body.items() if v is not None}

    def fetch(self, who: Department | None = None, **change: Any) -> Any:
        headers = (who or self.consumer).headers
        return self.kit.client.post("/v1/exchange/fetch", json=self.fetch_body(**change), headers=headers)

    def consent(self, holder: dict[str, str], *, department_code: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"department_code": department_code or self.consumer.code, "matter_code": MATTER} | extra
        answer = self.kit.client.post("/v1/me/consents", json=body, headers=self.kit.holder_headers(holder))
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def new_department(self, name: str, scopes: str = CONSUMER_SCOPES) -> Department:
        with self.kit.runtime.session_scope() as session:
            code = department(session, name).code
        return department_client(self.kit.client, self.kit.runtime, code, scopes)


def _post(kit: LicenceKit, path: str, body: dict[str, Any], who: Department, expect: int = 201) -> Any:
    answer = kit.client.post(path, json=body, headers=who.headers)
    assert answer.status_code == expect, answer.text
    return answer.json()


def _resource(kit: LicenceKit, type_code: str) -> str:
    with kit.runtime.session_scope() as session:
        code = session.scalar(select(Resource.code).where(Resource.licence_type_code == type_code))
    assert code is not None, f"licence type {type_code} is not published in the catalogue"
    return code


def grant_for(
    kit: LicenceKit, consumer: Department, provider: Department, type_code: str, items: list[str], **extra: Any
) -> dict[str, Any]:
    """An approved grant for ``consumer`` on the licence type's resource (approved by the provider if needed)."""
    body = {
        "resource_code": _resource(kit, type_code), "items": items, "matter_codes": [MATTER],
        "purpose": "办理企业职工就业登记时核验材料", "legal_basis": "《就业服务与就业管理规定》第六十二条",
    } | extra  # fmt: skip
    request = _post(kit, "/v1/catalog/access-requests", body, consumer)
    if request["status"] == "pending":
        request = _post(kit, f"/v1/catalog/access-requests/{request['id']}/approve", {}, provider, 200)
    assert request["status"] == "approved", request
    grant = kit.client.get(f"/v1/catalog/grants/{request['grant_id']}", headers=consumer.headers)
    assert grant.status_code == 200, grant.text
    result: dict[str, Any] = grant.json()
    return result


def make_exchange_kit(kit: LicenceKit) -> ExchangeKit:
    with kit.runtime.session_scope() as session:
        consumer_code = department(session, "临江市人力资源和社会保障局").code
    consumer = department_client(kit.client, kit.runtime, consumer_code, CONSUMER_SCOPES)
    provider = department_client(kit.client, kit.runtime, kit.issuer.code, "catalog:read catalog:write")
    materials = [
        {"code": "M01", "name": "营业执照", "licence_type_codes": [BUSINESS]},
        {"code": "M02", "name": "医师执业证书", "licence_type_codes": [DOCTOR]},
        {"code": "M03", "name": "户口登记", "required": False, "licence_type_codes": [demo_type("户口登记").type_code]},
    ]
    _post(kit, "/v1/catalog/matters", {"code": MATTER, "name": "企业职工就业登记", "materials": materials}, consumer)
    _post(kit, "/v1/catalog/matters", {"code": OTHER_MATTER, "name": "失业登记", "materials": []}, consumer)
    grants = {
        BUSINESS: grant_for(kit, consumer, provider, BUSINESS, BUSINESS_ITEMS),
        DOCTOR: grant_for(kit, consumer, provider, DOCTOR, DOCTOR_ITEMS),
    }
    platform = make_kit(kit.runtime, name="临江市政务服务和大数据管理局")
    with kit.runtime.session_scope() as session:
        owner = SealOwner(code=platform.owner.code, name=platform.owner.name, area_code=platform.owner.area_code)
        lifecycle.create_seal(
            session, kit.runtime.seal_context, owner=owner, name="电子证照平台专用章", kind="platform"
        )
    company = kit.holder("营业执照")
    citizen = kit.holder("医师执业证书")
    return ExchangeKit(
        kit, consumer, provider, platform, grants, company, kit.issue(kit.request("营业执照", holder=company)),
        citizen, kit.issue(kit.request("医师执业证书", holder=citizen)),
    )  # fmt: skip
