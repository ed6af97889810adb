"""Staff sign-in, the auditor console ``/audit`` and the department console ``/console`` (issue 8)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import jwt
from sqlalchemy import select, update

from audit.models import AuditEntry
from hub.api.routes.staff import STAFF_COOKIE
from hub.audited import integrate_pending
from licences.models import Licence
from tests.exchange.exchangekit import BUSINESS, MATTER, ExchangeKit, _resource, make_exchange_kit
from tests.factories import ec_key
from tests.licences.licencekit import LicenceKit, demo_type

_TOKEN = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')


def _csrf(kit: LicenceKit, path: str) -> str:
    page = kit.client.get(path)
    assert page.status_code == 200, page.text
    match = _TOKEN.search(page.text)
    assert match is not None, page.text
    return match.group(1)


def _sign_in(kit: LicenceKit, department: str, roles: list[str], officer: str = "zhang.wei", **extra: str) -> Any:
    kit.client.cookies.clear()  # one officer at a time
    form: dict[str, Any] = {"officer_id": officer, "name": "张伟", "department_code": department, "roles": roles}
    form |= {"csrf_token": _csrf(kit, "/staff/sign-in")} | extra
    return kit.client.post("/staff/sign-in", data=form, follow_redirects=False)


def _entries(
    kit: LicenceKit, action: str, outcome: str | None = None, *, licence: str | None = None, after: int = -1
) -> list[AuditEntry]:
    """Entries of ``action`` (the log outlives each test's rolled-back transaction: filter what is this test's)."""
    with kit.runtime.session_scope() as session:
        stmt = select(AuditEntry).where(AuditEntry.action == action, AuditEntry.leaf_index > after)
        if outcome is not None:
            stmt = stmt.where(AuditEntry.outcome == outcome)
        if licence is not None:
            stmt = stmt.where(AuditEntry.certificate_identifier == licence)
        return list(session.scalars(stmt))


def _last_leaf(kit: LicenceKit) -> int:
    with kit.runtime.session_scope() as session:
        return max(session.scalars(select(AuditEntry.leaf_index)).all(), default=-1)


def _use_cookie(kit: LicenceKit, token: str) -> None:
    kit.client.cookies.clear()
    kit.client.cookies.set(STAFF_COOKIE, token)


# ------------------------------------------------------------------------------------------------ sign-in


def test_an_officer_signs_in_with_a_strict_cookie_and_the_sign_in_refuses_what_it_must(kit: LicenceKit) -> None:
    for path in ("/audit", "/console", "/console/licences/new", "/console/objections", "/audit/entries/0"):
        answer = kit.client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, f"/staff/sign-in?next={path}"), path

    before = _last_leaf(kit)
    no_token = kit.client.post(
        "/staff/sign-in", data={"officer_id": "a", "name": "b", "department_code": kit.issuer.code}
    )
    assert no_token.status_code == 403 and "页面已过期" in no_token.text
    unknown = _sign_in(kit, "91330100MA2H7K3A0Y", ["licence:issue"])
    assert unknown.status_code == 401 and "未在平台登记" in unknown.text
    admin = _sign_in(kit, kit.issuer.code, ["admin"])
    assert admin.status_code == 403 and "staff_role_not_allowed" in admin.text
    assert STAFF_COOKIE not in kit.client.cookies
    assert len(_entries(kit, "identity.staff.signed_in", "denied", after=before)) == 2

    away = _sign_in(kit, kit.issuer.code, ["licence:issue"], next="https://evil.example/console")
    assert (away.status_code, away.headers["location"]) == (303, "/console")  # no open redirect
    cookie = next(h for h in away.headers.get_list("set-cookie") if h.startswith(STAFF_COOKIE))
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
    back = _sign_in(kit, kit.issuer.code, ["audit:read"], next="/audit/entries/3")
    assert back.headers["location"] == "/audit/entries/3"

    token = kit.client.cookies[STAFF_COOKIE]
    as_holder = kit.client.get("/v1/me/licences", headers={"Authorization": f"Bearer {token}"})
    assert as_holder.status_code == 401 and as_holder.json()["code"] == "id_token_invalid"
    signed_out = kit.client.post("/staff/sign-out", data={"csrf_token": _csrf(kit, "/console")}, follow_redirects=False)
    assert signed_out.headers["location"] == "/staff/sign-in"
    assert STAFF_COOKIE not in kit.client.cookies


def test_holder_and_forged_tokens_do_not_open_a_console(kit: LicenceKit) -> None:
    holder = kit.holder()
    holder_token = kit.holder_headers(holder)["Authorization"].removeprefix("Bearer ")
    before = _last_leaf(kit)
    _use_cookie(kit, holder_token)
    assert kit.client.get("/console", follow_redirects=False).status_code == 303

    _sign_in(kit, kit.issuer.code, ["audit:read"])
    genuine = kit.client.cookies[STAFF_COOKIE]
    claims = jwt.decode(genuine, options={"verify_signature": False})
    header = jwt.get_unverified_header(genuine)
    forged_key, _ = ec_key()
    forged = jwt.encode(claims | {"roles": ["audit:read", "licence:issue"]}, forged_key, algorithm="ES256",
                        headers={"kid": header["kid"]})  # fmt: skip
    _use_cookie(kit, forged)
    assert kit.client.get("/audit", follow_redirects=False).status_code == 303
    expired = jwt.encode(claims | {"exp": claims["iat"] - 60}, forged_key, algorithm="ES256", headers=header)
    _use_cookie(kit, expired)
    assert kit.client.get("/audit", follow_redirects=False).status_code == 303
    assert len(_entries(kit, "identity.staff.signed_in", "denied", after=before)) == 3  # holder, forged, expired


# ------------------------------------------------------------------------------------------------ auditor console


def test_an_auditor_finds_a_holders_uses_and_proves_an_entry_and_sees_tampering(kit: LicenceKit) -> None:
    holder = kit.holder()
    licence = kit.issue(kit.request(holder=holder))
    identifier = licence["certificate_identifier"]
    # Someone without audit:read is told so.
    _sign_in(kit, kit.issuer.code, ["licence:issue"])
    assert kit.client.get("/audit").status_code == 403
    _sign_in(kit, kit.issuer.code, ["audit:read"], officer="auditor.li")
    before = _last_leaf(kit)

    page = kit.client.get("/audit", params={"holder_type": holder["type"], "holder_code": holder["code"]})
    assert page.status_code == 200, page.text
    assert "licence.licence.issued" in page.text and identifier in page.text
    searched = _entries(kit, "audit.entries.searched", after=before)
    # Looking a person up is itself logged, naming the officer.
    assert [json.loads(e.body or "{}")["client_id"] for e in searched] == ["staff:auditor.li"]
    holder_log = kit.client.get("/v1/me/access-log", headers=kit.holder_headers(holder)).json()
    assert "audit.entries.searched" in [item["action"] for item in holder_log]

    (issued,) = _entries(kit, "licence.licence.issued", licence=identifier)
    pending = kit.client.get(f"/audit/entries/{issued.leaf_index}")
    assert pending.status_code == 200 and "尚未纳入检查点" in pending.text
    integrate_pending(kit.runtime)
    proven = kit.client.get(f"/audit/entries/{issued.leaf_index}")
    assert "已验证" in proven.text and "✓ matches" in proven.text and "leads to the checkpoint" in proven.text
    assert "— " in proven.text and kit.runtime.audit_signer.origin in proven.text  # the signed note itself

    with kit.runtime.session_scope() as session:  # an insider edits the row
        altered = identifier[:-1] + ("X" if identifier[-1] != "X" else "Y")  # the check character is 0-9A-Z
        body = (issued.body or b"").replace(identifier.encode(), altered.encode())
        assert body != issued.body
        session.execute(update(AuditEntry).where(AuditEntry.leaf_index == issued.leaf_index).values(body=body))
    tampered = kit.client.get(f"/audit/entries/{issued.leaf_index}")
    assert "验证失败" in tampered.text and "the body was altered" in tampered.text

    assert kit.client.get("/audit/entries/99999999").status_code == 404
    bad_time = kit.client.get("/audit", params={"since": "yesterday"})
    assert bad_time.status_code == 422 and "time_invalid" in bad_time.text
    bad_code = kit.client.get("/audit", params={"holder_type": "111", "holder_code": "110101199003070000"})
    assert bad_code.status_code == 422


def test_the_auditor_search_pages_through_results(kit: LicenceKit) -> None:
    _sign_in(kit, kit.issuer.code, ["audit:read"])
    for _ in range(3):
        kit.issue()
    first = kit.client.get("/audit", params={"action": "licence.licence.issued", "outcome": "ok"})
    shown = re.findall(r'href="/audit/entries/(\d+)"', first.text)
    assert len(shown) == 3 and "下一页" not in first.text
    later = kit.client.get("/audit", params={"action": "licence.licence.issued", "after": shown[1]})
    assert re.findall(r'href="/audit/entries/(\d+)"', later.text) == shown[2:]


# ------------------------------------------------------------------------------------------------ department console


def _issue_form(kit: LicenceKit, holder: dict[str, str], key: str | None = None) -> tuple[dict[str, Any], Any]:
    kind = demo_type("营业执照")
    page = kit.client.get("/console/licences/new", params={"type": kind.type_code})
    assert page.status_code == 200 and "照面信息" in page.text
    found = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert found is not None
    form = {
        "csrf_token": _csrf(kit, "/console/licences/new"), "idempotency_key": key or found.group(1),
        "certificate_type_code": kind.type_code, "holder_code": holder["code"], "holder_name": holder["name"],
    }  # fmt: skip
    for field, value in kind.sample_face(holder["name"], holder["code"], 1).items():
        assert f'name="face.{field}"' in page.text
        form[f"face.{field}"] = value
    return form, kit.client.post("/console/licences", data=form, follow_redirects=False)


def test_an_officer_issues_a_licence_from_the_form_downloads_it_and_revokes_it(kit: LicenceKit) -> None:
    _sign_in(kit, kit.issuer.code, ["licence:issue"], officer="wang.fang")
    holder = kit.holder()
    form, issued = _issue_form(kit, holder)
    assert issued.status_code == 303, issued.text
    path = issued.headers["location"]
    identifier = path.rsplit("/", 1)[1]
    again = kit.client.post("/console/licences", data=form, follow_redirects=False)  # a double submit
    assert again.headers["location"] == path
    with kit.runtime.session_scope() as session:
        rows = session.scalars(select(Licence).where(Licence.holder_code == holder["code"])).all()
        assert [r.identifier for r in rows] == [identifier]
    (issued_entry,) = _entries(kit, "licence.licence.issued", licence=identifier)
    assert json.loads(issued_entry.body or "{}")["client_id"] == "staff:wang.fang"

    page = kit.client.get(path)
    assert page.status_code == 200 and "有效 Valid" in page.text and holder["name"] in page.text
    pdf = kit.client.get(f"{path}/file")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert hashlib.sha256(pdf.content).hexdigest() == rows[0].file_sha256

    token = _csrf(kit, path)
    no_reason = kit.client.post(f"{path}/revoke", data={"csrf_token": token})
    assert no_reason.status_code == 422 and "form_invalid" in no_reason.text
    revoked = kit.client.post(f"{path}/revoke", data={"csrf_token": token, "reason": "以欺骗手段取得许可"})
    assert revoked.status_code == 200 and "已撤销 Revoked" in revoked.text and "以欺骗手段取得许可" in revoked.text
    twice = kit.client.post(f"{path}/revoke", data={"csrf_token": token, "reason": "again"})
    assert twice.status_code == 409

    other_check = (
        "1" if holder["code"][-1] != "1" else "2"
    )  # any other check character: invalid (was "0": 1 in 11 passed)
    wrong = form | {"idempotency_key": "another-key", "holder_code": holder["code"][:-1] + other_check}
    refused = kit.client.post("/console/licences", data=wrong)
    assert refused.status_code == 422
    without_csrf = kit.client.post("/console/licences", data=form | {"csrf_token": "x" * 43})
    assert without_csrf.status_code == 403


def test_another_departments_officer_gets_the_same_404_and_is_audited(kit: LicenceKit) -> None:
    ex: ExchangeKit = make_exchange_kit(kit)
    identifier = ex.company_licence["certificate_identifier"]
    _sign_in(kit, ex.consumer.code, ["licence:issue", "catalog:write"], officer="intruder")
    assert kit.client.get(f"/console/licences/{identifier}").status_code == 404
    assert kit.client.get(f"/console/licences/{identifier}/file").status_code == 404
    token = _csrf(kit, "/console")
    revoke = kit.client.post(f"/console/licences/{identifier}/revoke", data={"csrf_token": token, "reason": "x"})
    assert revoke.status_code == 404
    with kit.runtime.session_scope() as session:
        assert session.scalar(select(Licence.status).where(Licence.identifier == identifier)) == "valid"
    issue_page = kit.client.get("/console/licences/new", params={"type": BUSINESS})
    assert "本部门没有可颁发的证照类型" in issue_page.text


def test_batches_access_requests_and_objections_are_handled_from_the_console(kit: LicenceKit) -> None:
    ex: ExchangeKit = make_exchange_kit(kit)
    lines = "\n".join(json.dumps(kit.request(serial=n)) for n in range(2)) + "\n{broken\n"
    batch = kit.client.post("/v1/licences/batches", content=lines.encode(),
                            headers={**kit.issuer.headers, "Content-Type": "application/x-ndjson"})  # fmt: skip
    assert batch.status_code == 202, batch.text
    batch_id = batch.json()["batch_id"]

    _sign_in(kit, kit.issuer.code, ["licence:issue", "catalog:write"], officer="chen.jing")
    listed = kit.client.get("/console/batches")
    assert batch_id in listed.text and "/ 3" in listed.text
    one = kit.client.get(f"/console/batches/{batch_id}")
    assert one.status_code == 200 and "失败的行" in one.text
    assert kit.client.get("/console/batches/" + "0" * 32).status_code == 404

    request = kit.client.post(
        "/v1/catalog/access-requests", headers=ex.consumer.headers,
        json={"resource_code": _resource(kit, demo_type("户口登记").type_code), "items": ["address"],
              "matter_codes": [MATTER], "purpose": "核验住址", "legal_basis": "《户口登记条例》"},
    )  # fmt: skip
    assert request.status_code == 201 and request.json()["status"] == "pending", request.text
    request_id = request.json()["id"]
    page = kit.client.get("/console/access-requests")
    assert request_id in page.text and "待审核 Pending" in page.text
    token = _csrf(kit, "/console/access-requests")
    before = _last_leaf(kit)
    no_reason = kit.client.post(f"/console/access-requests/{request_id}/reject", data={"csrf_token": token})
    assert no_reason.status_code == 422
    assert len(_entries(kit, "catalog.access_request.rejected", "denied", after=before)) == 1  # the refusal is audited
    rejected = kit.client.post(
        f"/console/access-requests/{request_id}/reject", data={"csrf_token": token, "reason": "住址不在本事项所需范围"}
    )
    assert rejected.status_code == 200 and "已拒绝 Rejected" in rejected.text

    objection = kit.client.post(
        "/v1/catalog/objections", headers=ex.consumer.headers,
        json={"certificate_identifier": ex.company_licence["certificate_identifier"], "claimed_value": "新住所",
              "reason": "住所已变更，登记信息未更新"},
    )  # fmt: skip
    assert objection.status_code == 201, objection.text
    objection_id = objection.json()["id"]
    handled = kit.client.get("/console/objections")
    assert f'action="/console/objections/{objection_id}"' in handled.text and "已提出 Raised" in handled.text
    token = _csrf(kit, "/console/objections")
    reject_no_reason = kit.client.post(
        f"/console/objections/{objection_id}", data={"csrf_token": token, "verb": "reject"}
    )
    assert reject_no_reason.status_code == 422
    skip_ahead = kit.client.post(f"/console/objections/{objection_id}", data={"csrf_token": token, "verb": "verify"})
    assert skip_ahead.status_code == 409
    accepted = kit.client.post(f"/console/objections/{objection_id}", data={"csrf_token": token, "verb": "accept"})
    assert accepted.status_code == 200 and "已受理 Accepted" in accepted.text
