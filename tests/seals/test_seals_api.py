"""``/v1/seals`` lifecycle and ``POST /v1/verify/file`` end to end: create, seal, suspend, revoke, rotate, verify."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from cryptography import x509
from factories import bearer, department
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from audit.models import AuditEntry
from hub.runtime import Runtime
from seals import lifecycle
from seals.models import IssuedCertificate
from seals.sealing import seal_document
from tests.seals.sealkit import SEAL_RECT, sample_pdf


@pytest.fixture
def admin(client: TestClient, runtime: Runtime) -> dict[str, str]:
    headers, _ = bearer(client, runtime, "admin")
    return headers


@pytest.fixture
def dept_code(runtime: Runtime) -> str:
    with runtime.session_scope() as session:
        return department(session).code


def create(client: TestClient, admin: dict[str, str], dept_code: str, **extra: Any) -> Any:
    body = {"department_code": dept_code, "name": "电子证照专用章", "kind": "licence", **extra}
    return client.post("/v1/seals", json=body, headers=admin)


def sign_with(runtime: Runtime, seal_id: str) -> bytes:
    with runtime.session_scope() as session:
        seal = lifecycle.get_seal_or_raise(session, seal_id)
        return seal_document(
            session, runtime.seal_context, runtime.prepared_seals, seal, sample_pdf(), placement=SEAL_RECT
        )


def verify(client: TestClient, pdf: bytes) -> Any:
    response = client.post("/v1/verify/file", files={"file": ("licence.pdf", pdf, "application/pdf")})
    assert response.status_code == 200, response.text
    return response.json()


def test_create_seal_draws_an_image_and_certifies_a_key(
    client: TestClient, admin: dict[str, str], dept_code: str
) -> None:
    response = create(client, admin, dept_code)
    assert response.status_code == 201, response.text
    seal = response.json()
    assert seal["status"] == "active"
    assert seal["image_generated"] is True
    assert seal["code"].startswith("330100") and len(seal["code"]) == 13
    assert seal["receipt"]["leaf_index"] >= 0
    cert = x509.load_pem_x509_certificate(seal["certificate_pem"].encode())
    assert dept_code in cert.subject.rfc4514_string()
    image = client.get(f"/v1/seals/{seal['id']}/image", headers=admin)
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).mode == "RGBA"
    der = client.get(f"/v1/seals/{seal['id']}/certificate", headers=admin).content
    assert x509.load_der_x509_certificate(der) == cert
    assert seal["id"] in {s["id"] for s in client.get("/v1/seals", headers=admin).json()}
    assert "private" not in response.text.lower()  # no key material in any answer


def test_uploaded_image_is_sanitised(client: TestClient, admin: dict[str, str], dept_code: str) -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (300, 300), (220, 20, 30, 255)).save(buf, format="PNG", pnginfo=None)
    raw = buf.getvalue() + b"TRAILING-PAYLOAD"
    response = create(client, admin, dept_code, image_base64=base64.b64encode(raw).decode())
    assert response.status_code == 201, response.text
    png = client.get(f"/v1/seals/{response.json()['id']}/image", headers=admin).content
    assert b"TRAILING-PAYLOAD" not in png
    assert response.json()["image_generated"] is False


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"image_base64": base64.b64encode(b"GIF89a not really").decode()}, "seal_image_invalid"),
        ({"image_base64": "***"}, "invalid_input"),
        ({"kind": "wedding"}, "request_invalid"),
        ({"name": ""}, "request_invalid"),
    ],
)
def test_bad_seal_requests_are_clear_422s(
    client: TestClient, admin: dict[str, str], dept_code: str, extra: dict[str, str], code: str
) -> None:
    response = create(client, admin, dept_code, **extra)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_unknown_department_and_bad_uscc(client: TestClient, admin: dict[str, str]) -> None:
    assert create(client, admin, "91330100MA2H7K3A0X").json()["code"] in {"invalid_uscc", "not_found"}


def test_only_admins_manage_seals_and_departments_see_only_their_own(
    client: TestClient, runtime: Runtime, admin: dict[str, str], dept_code: str
) -> None:
    seal_id = create(client, admin, dept_code).json()["id"]
    issuer, _ = bearer(client, runtime, "licence:issue")
    assert create(client, issuer, dept_code).status_code == 403
    assert client.post(f"/v1/seals/{seal_id}/revoke", json={"reason": "unspecified"}, headers=issuer).status_code == 403
    # Another department cannot read it, and cannot tell it from a missing seal (no IDOR).
    assert client.get(f"/v1/seals/{seal_id}", headers=issuer).status_code == 404
    assert client.get(f"/v1/seals/{seal_id}/image", headers=issuer).status_code == 404
    assert seal_id not in {s["id"] for s in client.get("/v1/seals", headers=issuer).json()}
    assert client.get(f"/v1/seals/{seal_id}").status_code == 401


def test_lifecycle_suspend_reinstate_revoke_with_crl_and_audit(
    client: TestClient, runtime: Runtime, admin: dict[str, str], dept_code: str
) -> None:
    seal = create(client, admin, dept_code).json()
    sealed = sign_with(runtime, seal["id"])
    checked = verify(client, sealed)
    assert checked["verdict"] == "TOTAL-PASSED"
    assert checked["signatures"][0]["hub_seal"] == {
        "id": seal["id"], "code": seal["code"], "name": seal["name"], "department_code": dept_code, "status": "active"
    }  # fmt: skip

    suspended = client.post(f"/v1/seals/{seal['id']}/suspend", headers=admin).json()
    assert suspended["status"] == "suspended"
    crl = x509.load_der_x509_crl(client.get("/v1/pki/crl/issuing.crl").content)
    entry = crl.get_revoked_certificate_by_serial_number(int(seal["certificate_serial"], 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.certificate_hold
    with pytest.raises(lifecycle.SealStateConflict):
        sign_with(runtime, seal["id"])  # a suspended seal signs nothing

    assert client.post(f"/v1/seals/{seal['id']}/reinstate", headers=admin).json()["status"] == "active"
    crl = x509.load_der_x509_crl(client.get("/v1/pki/crl/issuing.crl").content)
    assert crl.get_revoked_certificate_by_serial_number(int(seal["certificate_serial"], 16)) is None
    assert verify(client, sign_with(runtime, seal["id"]))["verdict"] == "TOTAL-PASSED"

    revoked = client.post(f"/v1/seals/{seal['id']}/revoke", json={"reason": "key_compromise"}, headers=admin)
    assert revoked.json()["status"] == "revoked"
    again = client.post(f"/v1/seals/{seal['id']}/reinstate", headers=admin)
    assert again.status_code == 409
    assert again.json()["code"] == "seal_state_conflict"
    # A B-B seal revoked now: nothing proves the signature is older, so it no longer passes.
    report = verify(client, sealed)
    assert report["verdict"] != "TOTAL-PASSED"
    assert report["signatures"][0]["revocation"] == "revoked"
    with runtime.session_scope() as session:
        actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("seals.%"))))
    assert {"seals.seal.created", "seals.seal.suspended", "seals.seal.reinstated", "seals.seal.revoked"} <= actions
    assert "seals.file.verified" in actions


def test_rotate_replaces_key_and_keeps_old_documents_valid(
    client: TestClient, runtime: Runtime, admin: dict[str, str], dept_code: str
) -> None:
    old = create(client, admin, dept_code).json()
    sealed_before = sign_with(runtime, old["id"])
    response = client.post(f"/v1/seals/{old['id']}/rotate", headers=admin)
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["replaces"] == old["id"]
    assert new["key_id"] != old["key_id"]
    assert new["certificate_serial"] != old["certificate_serial"]
    assert client.get(f"/v1/seals/{old['id']}", headers=admin).json()["status"] == "superseded"
    with pytest.raises(lifecycle.SealStateConflict):
        sign_with(runtime, old["id"])
    assert verify(client, sealed_before)["verdict"] == "TOTAL-PASSED"  # the old certificate is not revoked
    assert verify(client, sign_with(runtime, new["id"]))["verdict"] == "TOTAL-PASSED"
    with runtime.session_scope() as session:
        assert session.get(IssuedCertificate, old["certificate_serial"]).revoked_at is None  # type: ignore[union-attr]


def test_verify_endpoint_refuses_oversized_and_reports_garbage(client: TestClient) -> None:
    report = verify(client, b"not a pdf at all")
    assert report["verdict"] == "TOTAL-FAILED"
    assert report["sub_indication"] == "FORMAT_FAILURE"
    assert "receipt" in report
    huge = client.post(
        "/v1/verify/file", files={"file": ("x.pdf", b"%PDF-" + b"0" * (21 * 1024 * 1024), "application/pdf")}
    )
    assert huge.status_code == 413
    assert huge.json()["code"] == "file_too_large"
    missing = client.post("/v1/verify/file")
    assert missing.status_code == 422
