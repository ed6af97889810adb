"""The holder portal ``/me``: sign in, my licences, a QR code that verifies, consents, who used my data."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from audit.models import AuditEntry
from hub.api.csrf import COOKIE as CSRF_COOKIE
from hub.api.routes.portal import SESSION_COOKIE
from tests.exchange.exchangekit import MATTER, ExchangeKit, make_exchange_kit
from tests.licences.licencekit import LicenceKit

_TOKEN = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')


def _csrf(kit: LicenceKit, path: str) -> str:
    page = kit.client.get(path)
    assert page.status_code == 200, page.text
    match = _TOKEN.search(page.text)
    assert match is not None
    return match.group(1)


def _sign_in(kit: LicenceKit, holder: dict[str, str]) -> Any:
    form = {"holder_type": holder["type"], "holder_code": holder["code"], "name": holder["name"]}
    return kit.client.post("/me/sign-in", data=form | {"csrf_token": _csrf(kit, "/me/sign-in")}, follow_redirects=False)


def test_signed_out_visitors_are_sent_to_sign_in_and_a_form_without_its_token_is_refused(kit: LicenceKit) -> None:
    for path in ("/me", "/me/consents", "/me/access-log", "/me/timeline", "/me/notifications"):
        answer = kit.client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/me/sign-in"), path
    holder = kit.holder()
    refused = kit.client.post(
        "/me/sign-in", data={"holder_type": holder["type"], "holder_code": holder["code"], "name": holder["name"]}
    )
    assert refused.status_code == 403 and "页面已过期" in refused.text
    assert SESSION_COOKIE not in kit.client.cookies
    bad = kit.client.post(
        "/me/sign-in", data={"holder_type": "001", "holder_code": "91330100MA2H7K3A0X", "name": "某公司",
                             "csrf_token": _csrf(kit, "/me/sign-in")},
    )  # fmt: skip
    assert bad.status_code == 422 and "证件号码不正确" in bad.text  # a wrong check character


def test_a_holder_signs_in_sees_the_licence_shows_a_qr_that_verifies_and_reads_who_scanned_it(
    kit: LicenceKit,
) -> None:
    holder = kit.holder()
    licence = kit.issue(kit.request(holder=holder))
    signed_in = _sign_in(kit, holder)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/me")
    cookie = next(h for h in signed_in.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "path=/me" in cookie.lower()

    home = kit.client.get("/me")
    assert home.status_code == 200 and "营业执照" in home.text and "有效 Valid" in home.text
    identifier = licence["certificate_identifier"]
    page = kit.client.get(f"/me/licences/{identifier}")
    assert page.status_code == 200 and "生成二维码" in page.text and holder["name"] in page.text

    qr = kit.client.get(f"/me/licences/{identifier}/qr", params={"field": ["name"]})
    assert qr.status_code == 200, qr.text
    assert "<svg" in qr.text and 'data-seconds="' in qr.text and 'src="/static/qr-refresh.js"' in qr.text
    assert "<style" not in qr.text and "<script>" not in qr.text  # no inline code: the CSP allows 'self' only
    assert "script-src 'self'" in qr.headers["content-security-policy"]
    url = re.search(r'href="(http://testserver/v/[^"]+)"', qr.text)
    assert url is not None
    scanned = kit.client.get(url.group(1).removeprefix("http://testserver"), headers={"Accept": "application/json"})
    assert scanned.status_code == 200 and scanned.json()["verdict"] == "valid"
    assert list(scanned.json()["disclosed"]) == ["name"]  # only what the holder chose

    log = kit.client.get("/me/access-log")
    assert log.status_code == 200 and "有人扫码核验" in log.text and "您出示了证照" in log.text
    timeline = kit.client.get("/me/timeline")
    assert "颁发证照" in timeline.text and "一企一档" in timeline.text


def test_another_holders_licence_is_not_found_and_a_forged_session_is_audited(kit: LicenceKit) -> None:
    owner, other = kit.holder(serial=1), kit.holder(serial=2)
    licence = kit.issue(kit.request(holder=owner))
    _sign_in(kit, other)
    page = kit.client.get(f"/me/licences/{licence['certificate_identifier']}")
    assert page.status_code == 404 and "没有找到这本证照" in page.text
    qr = kit.client.get(f"/me/licences/{licence['certificate_identifier']}/qr")
    assert qr.status_code == 404

    kit.client.cookies.set(SESSION_COOKIE, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", path="/me")
    answer = kit.client.get("/me", follow_redirects=False)
    assert answer.status_code == 303
    with kit.runtime.session_scope() as session:
        denied = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "identity.holder.signed_in", AuditEntry.outcome == "denied")
        ).all()
    assert denied


def test_consents_are_given_and_withdrawn_from_the_portal(kit: LicenceKit) -> None:
    ex: ExchangeKit = make_exchange_kit(kit)
    holder = {"type": ex.company["type"], "code": ex.company["code"], "name": ex.company["name"]}
    _sign_in(kit, holder)
    token = _csrf(kit, "/me/consents")
    given = kit.client.post(
        "/me/consents", data={"department_code": ex.consumer.code, "matter_code": MATTER, "valid_days": "7",
                              "csrf_token": token}, follow_redirects=False,
    )  # fmt: skip
    assert given.status_code == 303, given.text
    page = kit.client.get("/me/consents")
    assert "有效 active" in page.text and MATTER in page.text
    consent_id = re.search(r'action="/me/consents/([0-9a-f]{32})/withdraw"', page.text).group(1)  # type: ignore[union-attr]
    assert kit.client.post(f"/me/consents/{consent_id}/withdraw", data={}).status_code == 403
    assert "有效 active" in kit.client.get("/me/consents").text  # without the form token nothing was withdrawn
    withdrawn = kit.client.post(
        f"/me/consents/{consent_id}/withdraw", data={"csrf_token": token}, follow_redirects=False
    )
    assert withdrawn.status_code == 303
    assert "已撤回 withdrawn" in kit.client.get("/me/consents").text
    unknown = kit.client.post(
        "/me/consents", data={"department_code": "91330100MA2H7K3A0X", "matter_code": MATTER, "csrf_token": token}
    )
    assert unknown.status_code == 422 and "未能授权" in unknown.text
    assert kit.client.cookies.get(CSRF_COOKIE) == token
