"""``licence-hub demo``: seeds a believable, fictional city (临江市) once, and writes its credentials."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import access_requests, matters
from catalog.access_requests import AccessRequestIn, ApproveIn
from catalog.matters import MaterialIn, MatterIn
from catalog.models import Resource
from hub.clock import utcnow
from hub.codes import make_id_number, make_uscc
from hub.exchange import consents
from hub.identity import service as identity
from hub.identity.models import Department
from hub.runtime import Runtime
from licences import types as licence_types
from licences.demo_types import DEMO_TYPES
from licences.issuance import Actor, Issuer, issue
from licences.schemas import LicenceRequest
from seals import lifecycle as seal_lifecycle
from seals.lifecycle import SealOwner

AREA = "330100"  # the demo city's GB/T 2260 code; the city and every name below are fictional

# (org code body, name, scopes) — registration "1" 机构编制, category "1" 机关 (GB 32100 Table 1).
DEPARTMENTS: tuple[tuple[str, str, str], ...] = (
    ("00201001", "临江市政务服务和数据管理局", "admin audit:read catalog:read catalog:write"),
    ("00201002", "临江市市场监督管理局", "licence:issue licence:read catalog:read catalog:write exchange:verify"),
    ("00201003", "临江市公安局", "licence:issue licence:read catalog:read catalog:write"),
    ("00201004", "临江市自然资源和规划局", "licence:issue licence:read catalog:read catalog:write"),
    ("00201005", "临江市卫生健康委员会", "licence:issue licence:read catalog:read catalog:write"),
    ("00201006", "临江市人力资源和社会保障局", "exchange:fetch exchange:verify catalog:read catalog:write"),
)
CITIZENS: tuple[tuple[str, dt.date, str, str], ...] = (
    ("330102", dt.date(1985, 3, 12), "123", "张伟"),
    ("330106", dt.date(1992, 11, 2), "246", "李娜"),
    ("330105", dt.date(1978, 6, 30), "371", "王芳"),
)
# registration "9" 工商, category "1" 企业.
COMPANIES: tuple[tuple[str, str], ...] = (
    ("MA2H7K3A", "临江市青禾餐饮管理有限公司"),
    ("MA2J9P4B", "临江智造科技有限公司"),
)


def department_code(org8: str) -> str:
    return make_uscc("1", "1", AREA, org8)


def credentials_path(runtime: Runtime) -> Path:
    return runtime.settings.data_dir / "demo-credentials.json"


def _seed(session: Session, runtime: Runtime) -> dict[str, Any]:
    departments = []
    for org8, name, scopes in DEPARTMENTS:
        department = identity.create_department(
            session, code=department_code(org8), name=name, level="municipal", area_code=AREA
        )
        client, secret = identity.create_client(session, department_code=department.code, scopes=scopes)
        departments.append(
            {
                "code": department.code,
                "name": name,
                "client_id": client.client_id,
                "client_secret": secret,
                "scopes": client.scopes,
            }
        )
    holders = []
    for area, birth, seq, name in CITIZENS:
        code = make_id_number(area, birth, seq)
        identity.resolve_holder(session, holder_type="111", holder_code=code, name=name)
        holders.append({"type": "111", "code": code, "name": name})
    for org8, name in COMPANIES:
        code = make_uscc("9", "1", AREA, org8)
        identity.resolve_holder(session, holder_type="001", holder_code=code, name=name)
        holders.append({"type": "001", "code": code, "name": name})
    licences = _seed_licences(session, runtime, departments, holders)
    scenarios = _seed_exchange(session, runtime, departments, holders)
    return {"departments": departments, "holders": holders, "licences": licences, "scenarios": scenarios}


# Which demo department issues which demo licence type (by name), and to whom (holder names).
ISSUERS = {
    "营业执照": ("临江市市场监督管理局", ("临江市青禾餐饮管理有限公司", "临江智造科技有限公司")),
    "食品经营许可证": ("临江市市场监督管理局", ("临江市青禾餐饮管理有限公司",)),
    "户口登记": ("临江市公安局", ("张伟", "李娜", "王芳")),
    "不动产权证书": ("临江市自然资源和规划局", ("张伟",)),
    "医师执业证书": ("临江市卫生健康委员会", ("李娜",)),
}


def _seed_licences(
    session: Session, runtime: Runtime, departments: list[dict[str, Any]], holders: list[dict[str, str]]
) -> list[dict[str, str]]:
    """Licence seals for the issuing departments, the five demo types, and sealed licences for the demo holders."""
    by_name = {d["name"]: d for d in departments}
    issuing = sorted({dept for dept, _ in ISSUERS.values()})
    for name in issuing:
        dept = by_name[name]
        owner = SealOwner(code=dept["code"], name=name, area_code=AREA)
        seal_lifecycle.create_seal(session, runtime.seal_context, owner=owner, name="电子证照专用章", kind="licence")
    for demo in DEMO_TYPES:
        licence_types.ensure_demo_types(session, [by_name[ISSUERS[demo.name][0]]["code"]], only=(demo.type_code,))
    issued = []
    people = {h["name"]: h for h in holders}
    for serial, demo in enumerate(DEMO_TYPES, start=1):
        dept_name, holder_names = ISSUERS[demo.name]
        dept = by_name[dept_name]
        issuer = Issuer(dept["code"], dept_name, AREA)
        for n, holder_name in enumerate(holder_names):
            holder = people[holder_name]
            request = LicenceRequest(
                certificate_type_code=demo.type_code, certificate_holder_type=holder["type"],
                certificate_holder_code=holder["code"], certificate_holder_name=holder_name,
                face=demo.sample_face(holder_name, holder["code"], serial * 10 + n),
            )  # fmt: skip
            done = issue(session, runtime.licence_context, issuer, request, Actor("system", "demo"))
            issued.append({"certificate_identifier": done.licence.identifier, "type": demo.name, "holder": holder_name})
    return issued


# The consumer's matters (事项) and what each needs; the demo holder each scenario is for.
CONSUMER = "临江市人力资源和社会保障局"
PLATFORM = "临江市政务服务和数据管理局"
MATTERS: tuple[tuple[str, str, tuple[tuple[str, str, bool], ...], str], ...] = (
    ("ZYDJ-001", "用人单位就业登记", (("M01", "营业执照", True), ("M02", "食品经营许可证", False)),
     "临江市青禾餐饮管理有限公司"),
    ("ZGRD-001", "卫生专业技术人员职称申报", (("M01", "医师执业证书", True), ("M02", "户口登记", False)), "李娜"),
)  # fmt: skip
GRANTED_ITEMS = {
    "营业执照": ["unified_social_credit_code", "name", "entity_type", "legal_representative", "established_on"],
    "食品经营许可证": ["operator_name", "social_credit_code", "business_items", "valid_until"],
    "医师执业证书": ["name", "physician_level", "practice_category", "practice_scope", "principal_institution"],
}


def _seed_exchange(
    session: Session, runtime: Runtime, departments: list[dict[str, Any]], holders: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """The platform seal, the consumer's matters, its grants (one needing consent) and the holder's consent."""
    by_name = {d["name"]: d for d in departments}
    platform = by_name[PLATFORM]
    owner = SealOwner(code=platform["code"], name=PLATFORM, area_code=AREA)
    seal_lifecycle.create_seal(session, runtime.seal_context, owner=owner, name="电子证照平台专用章", kind="platform")
    consumer = by_name[CONSUMER]["code"]
    types = {demo.name: demo.type_code for demo in DEMO_TYPES}
    people = {h["name"]: h for h in holders}
    now = utcnow()
    scenarios = []
    for suffix, name, materials, holder_name in MATTERS:
        code = f"{consumer}-{suffix}"
        body = MatterIn(code=code, name=name, materials=[
            MaterialIn(code=m, name=label, required=required, licence_type_codes=[types[label]])
            for m, label, required in materials
        ])  # fmt: skip
        matters.create_matter(session, body, department_code=consumer)
        for _, label, _required in materials:
            if label in GRANTED_ITEMS:
                _grant(
                    session,
                    runtime,
                    consumer=consumer,
                    matter_code=code,
                    type_code=types[label],
                    items=GRANTED_ITEMS[label],
                )
        holder = people[holder_name]
        if holder["type"] == "111":  # personal data: the grant needs the holder's consent (用证授权)
            consents.give(
                session, consents.HolderKey(holder["type"], holder["code"]), department_code=consumer,
                matter_code=code, case_number=None, expires_at=now + dt.timedelta(days=90), now=now,
            )  # fmt: skip
        scenarios.append({"matter_code": code, "department_code": consumer,
                          "holder": {"type": holder["type"], "code": holder["code"]}})  # fmt: skip
    return scenarios


def _grant(
    session: Session, runtime: Runtime, *, consumer: str, matter_code: str, type_code: str, items: list[str]
) -> None:
    resource = session.scalar(select(Resource.code).where(Resource.licence_type_code == type_code))
    if resource is None:
        return
    body = AccessRequestIn(
        resource_code=resource, items=items, matter_codes=[matter_code], purpose="办理事项时核验申请材料（免证办）",
        legal_basis="《国务院关于加快推进政务服务“一网通办”的指导意见》（国发〔2018〕27号）",
    )  # fmt: skip
    submitted = access_requests.submit(session, runtime.settings, body, consumer_code=consumer)
    if submitted.grant is None:  # conditional items: the provider approves (the demo decides for it)
        request = submitted.request
        access_requests.approve(
            session, runtime.settings, request, ApproveIn(reason="演示：同意共享"), decided_by=request.provider_code
        )


def seed_demo(runtime: Runtime) -> tuple[dict[str, Any], bool]:
    """Seed once; later runs return the stored credentials. Returns (credentials, created_now)."""
    path = credentials_path(runtime)
    with runtime.session_scope() as session:
        if session.get(Department, department_code(DEPARTMENTS[0][0])) is not None:
            if path.exists():
                return json.loads(path.read_text()), False
            return {
                "departments": [],
                "holders": [],
                "scenarios": [],
                "note": "seeded earlier; secrets not kept",
            }, False
        credentials = _seed(session, runtime)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, ensure_ascii=False, indent=2)
    return credentials, True
