"""``/verify``: upload a licence PDF and read its seal report in plain words; CSRF, CSP and error pages."""

from __future__ import annotations

import re

from sqlalchemy import select

from audit.models import AuditEntry
from hub.api.csrf import COOKIE
from tests.licences.licencekit import LicenceKit

_TOKEN = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')


def _form_token(kit: LicenceKit) -> str:
    page = kit.client.get("/verify")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    match = _TOKEN.search(page.text)
    assert match is not None
    assert kit.client.cookies.get(COOKIE) == match.group(1)  # double submit: the cookie repeats the field
    return match.group(1)


def _upload(kit: LicenceKit, pdf: bytes, token: str | None) -> tuple[int, str]:
    data = {"csrf_token": token} if token is not None else {}
    answer = kit.client.post("/verify", data=data, files={"file": ("licence.pdf", pdf, "application/pdf")})
    return answer.status_code, answer.text


def _sealed_file(kit: LicenceKit) -> tuple[dict[str, str], bytes]:
    licence = kit.issue()
    answer = kit.client.get(f"/v1/licences/{licence['certificate_identifier']}/file", headers=kit.issuer.headers)
    assert answer.status_code == 200
    return licence, answer.content


def test_a_sealed_licence_reads_as_valid_in_plain_words_and_is_audited(kit: LicenceKit) -> None:
    licence, pdf = _sealed_file(kit)
    status, html = _upload(kit, pdf, _form_token(kit))
    assert status == 200
    assert "印章有效，文件自盖章后未被修改" in html
    assert kit.issuer.name in html  # sealed by: the department named in the seal certificate
    assert "是：签名与文件内容一致" in html
    assert "证照现状" in html and "有效 Valid" in html
    leaf = int(re.search(r"Audit entry (\d+)", html).group(1))  # type: ignore[union-attr]
    with kit.runtime.session_scope() as session:
        entry = session.get(AuditEntry, leaf)
        assert entry is not None
        assert entry.action == "seals.file.verified"
        assert entry.certificate_identifier == licence["certificate_identifier"]


def test_a_revoked_licence_says_so_with_the_reason(kit: LicenceKit) -> None:
    licence, pdf = _sealed_file(kit)
    revoked = kit.client.post(
        f"/v1/licences/{licence['certificate_identifier']}/revoke", json={"reason": "以欺骗手段取得许可"},
        headers=kit.issuer.headers,
    )  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    status, html = _upload(kit, pdf, _form_token(kit))
    assert status == 200
    assert "已撤销 Revoked" in html and "以欺骗手段取得许可" in html


def test_a_changed_file_fails_and_says_what_failed(kit: LicenceKit) -> None:
    _, pdf = _sealed_file(kit)
    at = pdf.index(b"/Producer") if b"/Producer" in pdf else len(pdf) // 3
    tampered = pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]
    status, html = _upload(kit, tampered, _form_token(kit))
    assert status == 200
    assert "核验未通过" in html
    assert "印章有效" not in html
    not_a_pdf_status, not_a_pdf = _upload(kit, b"hello", _form_token(kit))
    assert not_a_pdf_status == 200 and "核验未通过" in not_a_pdf


def test_without_the_form_token_nothing_is_verified(kit: LicenceKit) -> None:
    _, pdf = _sealed_file(kit)
    with kit.runtime.session_scope() as session:
        before = len(session.scalars(select(AuditEntry.leaf_index)).all())
    status, html = _upload(kit, pdf, None)  # no field: a cross-site post
    assert status == 403 and "页面已过期" in html
    _form_token(kit)
    assert _upload(kit, pdf, "x" * 43)[0] == 403  # a field that does not match the cookie
    kit.client.cookies.clear()
    assert _upload(kit, pdf, "y" * 43)[0] == 403  # a field without a cookie
    with kit.runtime.session_scope() as session:
        assert len(session.scalars(select(AuditEntry.leaf_index)).all()) == before


def test_missing_and_oversized_files_get_a_page_not_a_stack_trace(kit: LicenceKit) -> None:
    token = _form_token(kit)
    missing = kit.client.post("/verify", data={"csrf_token": token})
    assert missing.status_code == 422 and "请选择一个 PDF 文件" in missing.text
    status, html = _upload(kit, b"%PDF-" + b"0" * (21 * 1024 * 1024), token)
    assert status == 413 and "文件太大" in html


def test_pages_carry_a_strict_content_security_policy_and_no_inline_code(kit: LicenceKit) -> None:
    page = kit.client.get("/verify")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "style-src 'self'" in policy and "script-src" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text and "<style" not in page.text and " style=" not in page.text
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    css = kit.client.get("/static/hub.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
