"""Issuance end to end over HTTP: validate, identify, render, seal, store, record; files checked by real validators."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pikepdf
import zxingcpp
from factories import random_uscc
from PIL import Image
from sqlalchemy import func, select

from audit.models import AuditEntry
from hub.identity import service as identity
from hub.runtime import Runtime
from licences.identifiers import check_character, parse_identifier
from licences.models import IdempotencyKey, Licence
from tests.licences.licencekit import BUSINESS, LicenceKit, department_client
from tests.seals.sealkit import nss_store, pdfsig, run


def _count(runtime: Runtime, model: Any) -> int:
    with runtime.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_issue_business_licence_end_to_end(kit: LicenceKit, tmp_path: Path) -> None:
    body = kit.request("营业执照")
    licence = kit.issue(body)

    identifier = parse_identifier(licence["certificate_identifier"])
    assert identifier.type_code == BUSINESS and identifier.issuer_code == kit.issuer.code
    assert identifier.version == "001"
    body_chars = identifier.type_code + identifier.issuer_code + identifier.serial + identifier.version
    assert licence["certificate_identifier"].endswith("." + check_character(body_chars))
    assert licence["status"] == "valid"
    assert licence["certificate_holder_code"] == body["certificate_holder_code"]
    assert licence["certificate_validity_end"] == "9999-12-31"  # 营业执照: 长期
    assert licence["receipt"]["leaf_index"] >= 0

    response = kit.client.get(f"/v1/licences/{licence['certificate_identifier']}/file", headers=kit.issuer.headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = response.content
    path = tmp_path / "licence.pdf"
    path.write_bytes(pdf)

    # Independent validators: qpdf structure, pyHanko (our Verifier) and poppler's pdfsig.
    assert run("qpdf", "--check", str(path)).returncode == 0
    report = kit.seals.verifier().verify(pdf)
    assert report.verdict == "TOTAL-PASSED", report
    nss = nss_store(tmp_path, kit.seals.root_pem(tmp_path))
    (signature,) = pdfsig(path, nss)
    assert "Signature is Valid" in signature["Signature Validation"]
    assert "Certificate is Trusted" in signature["Certificate Validation"]

    # XMP metadata names the licence; the QR code on the page leads to the live status page.
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        xmp = bytes(doc.Root.Metadata.read_bytes()).decode()
    assert licence["certificate_identifier"] in xmp
    assert run("pdftoppm", "-png", "-r", "150", "-singlefile", str(path), str(tmp_path / "page")).returncode == 0
    with Image.open(tmp_path / "page.png") as image:
        found = zxingcpp.read_barcodes(image.convert("L"))
    (code,) = [r for r in found if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert code.text.startswith("http://testserver/v/")
    scanned = kit.client.get(code.text.removeprefix("http://testserver"), headers={"Accept": "application/json"})
    assert scanned.status_code == 200
    result = scanned.json()
    assert result["token_valid"] is True and result["status"] == "valid"
    assert result["certificate_type_name"] == "营业执照" and result["disclosed"] == {}


def test_every_demo_type_issues(kit: LicenceKit) -> None:
    from licences.demo_types import DEMO_TYPES

    for n, demo in enumerate(DEMO_TYPES, start=1):
        licence = kit.issue(kit.request(demo.name, serial=n))
        assert licence["certificate_type_code"] == demo.type_code
        assert licence["certificate_type_name"] == demo.name


def test_idempotency_key_replays_and_refuses_a_different_body(kit: LicenceKit, runtime: Runtime) -> None:
    body = kit.request()
    key = str(uuid.uuid4())
    first = kit.issue(body, key=key)
    response = kit.client.post("/v1/licences", json=body, headers={**kit.issuer.headers, "Idempotency-Key": key})
    assert response.status_code == 201 and response.headers["Idempotent-Replayed"] == "true"
    assert response.json()["certificate_identifier"] == first["certificate_identifier"]
    assert _count(runtime, Licence) == 1

    changed = {**body, "certificate_number": "ANOTHER-1"}
    response = kit.client.post("/v1/licences", json=changed, headers={**kit.issuer.headers, "Idempotency-Key": key})
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"

    response = kit.client.post("/v1/licences", json=body, headers=kit.issuer.headers)
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_missing"
    assert _count(runtime, Licence) == 1


def test_face_violating_the_schema_is_refused_without_echo(kit: LicenceKit, runtime: Runtime) -> None:
    body = kit.request()
    secret_value = "110101199003074514"
    body["face"]["legal_representative"] = secret_value * 10  # far too long
    body["face"]["no_such_field"] = "x"
    response = kit.client.post("/v1/licences", json=body, headers={**kit.issuer.headers, "Idempotency-Key": "k1"})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "licence_face_invalid"
    assert secret_value not in response.text
    assert {e["field"] for e in problem["errors"]} >= {"legal_representative"}
    assert _count(runtime, Licence) == 0
    with runtime.session_scope() as session:  # the refused request left no key behind: it can be retried
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_bad_holder_code_is_refused(kit: LicenceKit) -> None:
    body = kit.request()
    body["certificate_holder_code"] = body["certificate_holder_code"][:-1] + (
        "0" if body["certificate_holder_code"][-1] != "0" else "1"
    )
    body["face"]["unified_social_credit_code"] = body["certificate_holder_code"]
    response = kit.client.post("/v1/licences", json=body, headers={**kit.issuer.headers, "Idempotency-Key": "k2"})
    assert response.status_code == 422 and response.json()["code"] == "invalid_uscc"


def test_issuer_not_authorised_for_the_type(kit: LicenceKit, runtime: Runtime) -> None:
    with runtime.session_scope() as session:
        other = identity.create_department(
            session, code=random_uscc(), name="临江市卫生健康委员会", level="municipal", area_code="330100"
        )
        code = other.code
    stranger = department_client(kit.client, runtime, code, "licence:issue")
    response = kit.client.post(
        "/v1/licences", json=kit.request(), headers={**stranger.headers, "Idempotency-Key": "k3"}
    )
    assert response.status_code == 403 and response.json()["code"] == "licence_type_not_authorised"
    # and it cannot read or change the issuer's licences either (same 404 as a missing one)
    licence = kit.issue()
    ident = licence["certificate_identifier"]
    assert kit.client.get(f"/v1/licences/{ident}", headers=stranger.headers).status_code == 404
    response = kit.client.post(f"/v1/licences/{ident}/revoke", json={"reason": "x"}, headers=stranger.headers)
    assert response.status_code == 404


def test_scope_is_required(kit: LicenceKit, runtime: Runtime) -> None:
    reader = department_client(kit.client, runtime, kit.issuer.code, "exchange:verify")
    response = kit.client.post("/v1/licences", json=kit.request(), headers={**reader.headers, "Idempotency-Key": "k4"})
    assert response.status_code == 403 and response.json()["code"] == "scope_missing"
    assert kit.client.post("/v1/licences", json=kit.request(), headers={"Idempotency-Key": "k5"}).status_code == 401


def test_issuance_is_audited_against_the_holder(kit: LicenceKit, runtime: Runtime) -> None:
    licence = kit.issue()
    with runtime.session_scope() as session:
        entry = session.get(AuditEntry, licence["receipt"]["leaf_index"])
        assert entry is not None and entry.action == "licence.licence.issued"
        assert entry.certificate_identifier == licence["certificate_identifier"]
        assert entry.holder_ref and licence["certificate_holder_code"].encode() not in (entry.body or b"")


def test_licence_types_listed_and_defined(kit: LicenceKit, runtime: Runtime) -> None:
    listed = kit.client.get("/v1/licence-types", headers=kit.issuer.headers).json()
    names = {t["certificate_type_name"] for t in listed}
    assert {"营业执照", "食品经营许可证", "户口登记", "不动产权证书", "医师执业证书"} <= names
    business = next(t for t in listed if t["certificate_type_code"] == BUSINESS)
    assert business["face_schema"]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert all("x-share-type" in p and "title" in p for p in business["face_schema"]["properties"].values())

    authority = department_client(kit.client, runtime, kit.issuer.code, "catalog:write")
    definition = {
        "certificate_type_code": kit.issuer.code + "101", "certificate_type_name": "测试许可证", "holder_type": "001",
        "defining_authority_name": kit.issuer.name, "validity": {"kind": "years", "years": 3},
        "issuer_codes": [kit.issuer.code],
        "face_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "title": "名称", "x-share-type": "unconditional", "maxLength": 50},
            },
            "required": ["name"],
        },
    }  # fmt: skip
    response = kit.client.post("/v1/licence-types", json=definition, headers=authority.headers)
    assert response.status_code == 201, response.text
    again = kit.client.post("/v1/licence-types", json=definition, headers=authority.headers)
    assert again.status_code == 409 and again.json()["code"] == "licence_type_exists"
    foreign = {**definition, "certificate_type_code": BUSINESS[:18] + "102"}
    assert kit.client.post("/v1/licence-types", json=foreign, headers=authority.headers).status_code == 403
    bad = json.loads(json.dumps(definition))
    bad["certificate_type_code"] = kit.issuer.code + "102"
    del bad["face_schema"]["properties"]["name"]["x-share-type"]
    response = kit.client.post("/v1/licence-types", json=bad, headers=authority.headers)
    assert response.status_code == 422 and response.json()["code"] == "face_schema_invalid"


def test_verify_file_names_the_licence_and_its_status_now(kit: LicenceKit) -> None:
    licence = kit.issue()
    ident = licence["certificate_identifier"]
    pdf = kit.client.get(f"/v1/licences/{ident}/file", headers=kit.issuer.headers).content
    report = kit.client.post("/v1/verify/file", files={"file": ("l.pdf", pdf, "application/pdf")}).json()
    assert report["verdict"] == "TOTAL-PASSED"
    assert report["licence"]["certificate_identifier"] == ident and report["licence"]["status"] == "valid"
    kit.client.post(f"/v1/licences/{ident}/suspend", json={"reason": "核查中"}, headers=kit.issuer.headers)
    report = kit.client.post("/v1/verify/file", files={"file": ("l.pdf", pdf, "application/pdf")}).json()
    assert report["verdict"] == "TOTAL-PASSED"  # the seal is intact; the licence itself is suspended
    assert report["licence"]["status"] == "suspended" and report["licence"]["status_reason"] == "核查中"
    tampered = pdf.replace(b"/Producer", b"/Producex", 1)
    report = kit.client.post("/v1/verify/file", files={"file": ("l.pdf", tampered, "application/pdf")}).json()
    assert report["verdict"] != "TOTAL-PASSED" and report["licence"] is None
