"""Purpose-stamped copies (加注件): granted fields only, the purpose printed, sealed by the platform seal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.clock import utcnow
from hub.exchange import copies
from hub.exchange.models import PurposeCopy
from licences.models import Licence, LicenceType
from tests.licences.licencekit import LicenceKit
from tests.licences.test_demo_types import pdf_text
from tests.seals.sealkit import make_kit

GRANTED = ["unified_social_credit_code", "name", "entity_type"]


@pytest.fixture
def platform(kit: LicenceKit) -> Any:
    """The hub's operating department with its 电子证照平台专用章."""
    from seals import lifecycle
    from seals.lifecycle import SealOwner

    seals = make_kit(kit.runtime, name="临江市政务服务和大数据管理局")
    with kit.runtime.session_scope() as session:
        owner = SealOwner(code=seals.owner.code, name=seals.owner.name, area_code=seals.owner.area_code)
        lifecycle.create_seal(
            session, kit.runtime.seal_context, owner=owner, name="电子证照平台专用章", kind="platform"
        )
    return seals


def _purpose(kit: LicenceKit) -> copies.CopyPurpose:
    return copies.CopyPurpose(
        department_code=kit.issuer.code, department_name="临江市人力资源和社会保障局", matter_code="MATTER-0001",
        matter_name="企业职工就业登记", case_number="LJ-2026-000123", officer_id="officer-7",
    )  # fmt: skip


def _promise(kit: LicenceKit, identifier: str, *, all_fields: bool = False, url_ttl: float = 600) -> str:
    now = utcnow()
    with kit.runtime.session_scope() as session:
        licence = session.scalar(select(Licence).where(Licence.identifier == identifier))
        assert licence is not None
        copy = copies.promise(
            session, licence, _purpose(kit), fields=GRANTED, all_fields=all_fields, now=now,
            url_ttl=timedelta(seconds=url_ttl), valid_for=timedelta(days=30),
        )  # fmt: skip
        return copy.id


def _download(kit: LicenceKit, copy_id: str, department: str | None = None) -> bytes:
    now = utcnow()
    ctx = kit.runtime.licence_context
    with kit.runtime.session_scope() as session:
        copy = copies.get_for_download(session, copy_id, department or kit.issuer.code, now=now)
        licence = session.scalar(select(Licence).where(Licence.identifier == copy.licence_identifier))
        assert licence is not None
        licence_type = session.get(LicenceType, licence.type_code)
        assert licence_type is not None
        source = copies.CopySource(licence, licence_type, _purpose(kit))
        return copies.file_for(session, ctx, copy, source, now=now)


def test_a_copy_shows_only_granted_fields_and_its_purpose(kit: LicenceKit, platform: Any, tmp_path: Path) -> None:
    licence = kit.issue()
    copy_id = _promise(kit, licence["certificate_identifier"])
    pdf = _download(kit, copy_id)

    report = platform.verifier().verify(pdf)
    assert report.verdict == "TOTAL-PASSED", report.detail
    [signature] = report.signatures
    assert signature.signer is not None
    assert signature.signer.organization_identifier == platform.owner.code  # the platform sealed it, not the issuer
    assert signature.timestamp_time is not None  # B-T

    text = pdf_text(pdf, tmp_path)
    for printed in ("加注件", "企业职工就业登记", "LJ-2026-000123", "officer-7", "MATTER-0001", "他用无效"):
        assert printed in text
    face = licence["face"]
    for key in GRANTED:
        assert str(face[key]).replace(" ", "") in text
    assert str(face["legal_representative"]) not in text  # not granted, not printed
    assert str(face["domicile"]).replace(" ", "") not in text


def test_the_copy_is_generated_once_and_then_served_from_storage(kit: LicenceKit, platform: Any) -> None:
    copy_id = _promise(kit, kit.issue()["certificate_identifier"])
    first = _download(kit, copy_id)
    second = _download(kit, copy_id)
    assert first == second
    with kit.runtime.session_scope() as session:
        row = session.get(PurposeCopy, copy_id)
        assert row is not None and row.file_sha256 is not None and row.downloaded_at is not None
        assert kit.runtime.storage.get(row.file_sha256) == first


def test_a_grant_of_every_field_serves_the_issuer_sealed_original(kit: LicenceKit, platform: Any) -> None:
    licence = kit.issue()
    pdf = _download(kit, _promise(kit, licence["certificate_identifier"], all_fields=True))
    assert pdf == kit.runtime.storage.get(licence["file_sha256"])


def test_a_tampered_copy_fails_verification(kit: LicenceKit, platform: Any) -> None:
    pdf = bytearray(_download(kit, _promise(kit, kit.issue()["certificate_identifier"])))
    at = pdf.index(b"LJ-2026-000123") if b"LJ-2026-000123" in pdf else len(pdf) // 3
    pdf[at] ^= 0x01
    assert platform.verifier().verify(bytes(pdf)).verdict == "TOTAL-FAILED"


def test_only_the_fetching_department_downloads_and_only_while_the_url_lives(kit: LicenceKit, platform: Any) -> None:
    identifier = kit.issue()["certificate_identifier"]
    copy_id = _promise(kit, identifier)
    with pytest.raises(copies.CopyNotFound):
        _download(kit, copy_id, department=platform.owner.code)
    with pytest.raises(copies.CopyNotFound):
        _download(kit, "0" * 32)
    expired = _promise(kit, identifier, url_ttl=-1)
    with pytest.raises(copies.CopyExpired):
        _download(kit, expired)


def test_without_a_platform_seal_no_copy_is_made(kit: LicenceKit) -> None:
    copy_id = _promise(kit, kit.issue()["certificate_identifier"])
    with pytest.raises(copies.PlatformSealMissing):
        _download(kit, copy_id)
    with kit.runtime.session_scope() as session:
        row = session.get(PurposeCopy, copy_id)
        assert row is not None and row.file_sha256 is None


def test_the_download_route_serves_the_fetching_department_and_audits(kit: LicenceKit, platform: Any) -> None:
    from factories import department

    from audit.models import AuditEntry
    from tests.licences.licencekit import department_client

    with kit.runtime.session_scope() as session:
        code = department(session, "临江市人力资源和社会保障局").code
    fetcher = department_client(kit.client, kit.runtime, code, "exchange:fetch")
    licence = kit.issue()
    now = utcnow()
    with kit.runtime.session_scope() as session:
        row = session.scalar(select(Licence).where(Licence.identifier == licence["certificate_identifier"]))
        assert row is not None
        purpose = copies.CopyPurpose(code, "临江市人力资源和社会保障局", "M-1", "就业登记", "CASE-9", "officer-1")
        copy_id = copies.promise(
            session, row, purpose, fields=GRANTED, all_fields=False, now=now, url_ttl=timedelta(minutes=5),
            valid_for=timedelta(days=30),
        ).id  # fmt: skip

    answer = kit.client.get(f"/v1/exchange/copies/{copy_id}", headers=fetcher.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["cache-control"] == "no-store"
    assert platform.verifier().verify(answer.content).verdict == "TOTAL-PASSED"
    with kit.runtime.session_scope() as session:
        entry = session.get(AuditEntry, int(answer.headers["audit-receipt-leaf-index"]))
        assert entry is not None
        assert (entry.action, entry.outcome, entry.department_code) == ("exchange.copy.downloaded", "ok", code)
        assert (entry.matter_code, entry.case_number, entry.officer_id) == ("M-1", "CASE-9", "officer-1")

    for headers, status, problem in (
        (kit.issuer.headers, 403, "scope_missing"),
        (None, 401, "token_missing"),
    ):
        refused = kit.client.get(f"/v1/exchange/copies/{copy_id}", headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (status, problem)
        assert "receipt" in refused.json()
    other = department_client(kit.client, kit.runtime, kit.issuer.code, "exchange:fetch")  # another department
    refused = kit.client.get(f"/v1/exchange/copies/{copy_id}", headers=other.headers)
    assert (refused.status_code, refused.json()["code"]) == (404, "copy_not_found")
    assert refused.content[:5] != b"%PDF-"
