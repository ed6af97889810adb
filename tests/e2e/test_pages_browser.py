"""The ``/verify`` page in a real browser: Debian's Chromium driven by Playwright against ``licence-hub demo``.

A verifier on a phone-sized screen uploads a sealed demo licence and reads "seals valid", then a changed copy
and reads "verification failed"; the page loads no script and breaks no rule of its Content-Security-Policy.
Screenshots go to ``HUB_TEST_ARTIFACTS`` (default ``test-artifacts/``) for people to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import MASTER_KEY, free_port, stop_process
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.e2e.test_distributed import wait_ready
from tests.licences.test_render import scanned_qr_codes

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a sandbox without a display; no background traffic (this machine has no network but loopback).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
PHONE = {"width": 390, "height": 844}
ISSUER = "临江市市场监督管理局"


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, object]]]:
    """``licence-hub demo`` on SQLite (the embedded default), served on a free port; its credentials."""
    work = tmp_path_factory.mktemp("demo-browser")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {
        "HUB_ENV": "demo", "HUB_DATA_DIR": str(work / "var"), "HUB_MASTER_KEY": MASTER_KEY, "HUB_PUBLIC_URL": base,
        "HUB_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    credentials = work / "credentials.json"
    log = work / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "demo", "--port", str(port), "--credentials", str(credentials)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_ready(base, process, log)
        yield base, json.loads(credentials.read_text())
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _artifacts() -> Path:
    path = Path(os.environ.get("HUB_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _issuer_headers(base: str, credentials: dict[str, object]) -> dict[str, str]:
    departments = {d["name"]: d for d in credentials["departments"]}  # type: ignore[attr-defined]
    issuer = departments[ISSUER]
    token = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"},
        auth=(issuer["client_id"], issuer["client_secret"]), timeout=30,
    )  # fmt: skip
    token.raise_for_status()
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _sealed_demo_licence(base: str, credentials: dict[str, object]) -> bytes:
    licence = next(lic for lic in credentials["licences"] if lic["type"] == "营业执照")  # type: ignore[attr-defined]
    headers = _issuer_headers(base, credentials)
    pdf = httpx.get(f"{base}/v1/licences/{licence['certificate_identifier']}/file", headers=headers, timeout=30)
    pdf.raise_for_status()
    return pdf.content


def _department_code(credentials: dict[str, object], name: str) -> str:
    return str(next(d["code"] for d in credentials["departments"] if d["name"] == name))  # type: ignore[attr-defined]


def _staff_sign_in(page: Page, base: str, department: str, roles: list[str]) -> None:
    """An officer signs in through the development identity provider's form."""
    page.goto(f"{base}/staff/sign-in")
    page.fill("#officer_id", "wang.fang")
    page.fill("#name", "王芳")
    page.select_option("#department_code", department)
    for role in roles:
        page.check(f"input[name=roles][value='{role}']")
    page.click("form[action='/staff/sign-in'] button[type=submit]")
    page.wait_for_url(f"{base}/console")


def _upload(page: Page, base: str, path: Path) -> str:
    page.goto(f"{base}/verify")
    page.set_input_files("input[type=file]", str(path))
    page.click("button[type=submit]")
    page.wait_for_selector("[role=status], [role=alert]")
    return page.inner_text("main")


def test_a_verifier_on_a_phone_uploads_a_licence_and_reads_the_verdict(
    demo_hub: tuple[str, dict[str, object]], browser: Browser, tmp_path: Path
) -> None:
    base, credentials = demo_hub
    pdf = _sealed_demo_licence(base, credentials)
    genuine, changed = tmp_path / "营业执照.pdf", tmp_path / "changed.pdf"
    genuine.write_bytes(pdf)
    at = len(pdf) // 3
    changed.write_bytes(pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :])

    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _note(problems, message))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    try:
        text = _upload(page, base, genuine)
        assert "印章有效，文件自盖章后未被修改" in text
        assert ISSUER in text and "证照现状" in text
        assert page.evaluate("getComputedStyle(document.querySelector('.verdict')).backgroundColor") == (
            "rgb(0, 112, 60)"  # the stylesheet loaded under the CSP: green for a pass
        )
        page.screenshot(path=str(_artifacts() / "verify-valid-phone.png"), full_page=True)

        text = _upload(page, base, changed)
        assert "核验未通过" in text and "印章有效" not in text
        page.screenshot(path=str(_artifacts() / "verify-changed-phone.png"), full_page=True)
        assert page.evaluate("document.scripts.length") == 0
    finally:
        context.close()
    assert problems == []


def _note(problems: list[str], message: ConsoleMessage) -> None:
    if message.type in {"error", "warning"}:  # a CSP violation is reported as a console error
        problems.append(f"{message.type}: {message.text}")


AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def test_the_pages_pass_an_accessibility_check(
    demo_hub: tuple[str, dict[str, object]], browser: Browser, tmp_path: Path
) -> None:
    """axe-core (WCAG 2 A/AA rules) finds no serious or critical violation on the verify, portal and staff pages.

    The check runs a script, which the pages' CSP forbids; this context alone bypasses the CSP to inject it.
    """
    base, credentials = demo_hub
    genuine = tmp_path / "营业执照.pdf"
    genuine.write_bytes(_sealed_demo_licence(base, credentials))
    citizen = next(h for h in credentials["holders"] if h["name"] == "张伟")  # type: ignore[attr-defined]
    licence = next(lic for lic in credentials["licences"] if lic["holder"] == "张伟")  # type: ignore[attr-defined]
    context = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    found: dict[str, list[dict[str, object]]] = {}
    try:
        page.goto(f"{base}/verify")
        found["verify form"] = _axe(page)
        _upload(page, base, genuine)
        found["verify report"] = _axe(page)
        page.goto(f"{base}/me/sign-in")
        found["sign in"] = _axe(page)
        page.fill("#holder_code", citizen["code"])
        page.fill("#name", citizen["name"])
        page.click("button[type=submit]")
        identifier = licence["certificate_identifier"]
        for name, path in (
            ("my licences", "/me"), ("licence", f"/me/licences/{identifier}"), ("qr", f"/me/licences/{identifier}/qr"),
            ("consents", "/me/consents"), ("access log", "/me/access-log"), ("timeline", "/me/timeline"),
            ("notifications", "/me/notifications"),
        ):  # fmt: skip
            page.goto(base + path)
            found[name] = _axe(page)
        staff = browser.new_context(locale="zh-CN", bypass_csp=True).new_page()
        staff.goto(f"{base}/staff/sign-in")
        found["staff sign in"] = _axe(staff)
        roles = ["licence:issue", "catalog:write", "audit:read"]
        _staff_sign_in(staff, base, _department_code(credentials, ISSUER), roles)
        business = next(lic for lic in credentials["licences"] if lic["type"] == "营业执照")  # type: ignore[attr-defined]
        for name, path in (
            ("console", "/console"), ("issue form", "/console/licences/new"),
            ("console licence", f"/console/licences/{business['certificate_identifier']}"),
            ("batches", "/console/batches"), ("access requests", "/console/access-requests"),
            ("objections", "/console/objections"), ("audit search", "/audit?action=licence.licence.issued"),
            ("audit entry", "/audit/entries/1"),
        ):  # fmt: skip
            staff.goto(base + path)
            found[name] = _axe(staff)
            if name == "audit entry":
                staff.screenshot(path=str(_artifacts() / "audit-entry.png"), full_page=True)
        staff.goto(f"{base}/console/licences/new")
        staff.click("form[action='/console/licences/new'] button")
        found["issue form fields"] = _axe(staff)
        staff.context.close()
    finally:
        context.close()
    serious = {
        where: [(v["id"], v["impact"], v["help"]) for v in violations if v["impact"] in {"serious", "critical"}]
        for where, violations in found.items()
    }
    assert serious == {key: [] for key in found}
    assert len(found) == 20


def _axe(page: Page) -> list[dict[str, object]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})")
    violations: list[dict[str, object]] = result["violations"]
    return violations


def _revoke_from_the_console(
    officer: Page, base: str, credentials: dict[str, object], licence: dict[str, str], problems: list[str]
) -> None:
    """The issuer's officer signs in to the department console and revokes the licence with a reason."""
    officer.on("console", lambda message: _note(problems, message))
    _staff_sign_in(officer, base, _department_code(credentials, ISSUER), ["licence:issue"])
    officer.goto(f"{base}/console/licences/{licence['certificate_identifier']}")
    officer.fill("#reason-revoke", "营业期限届满未续期")
    officer.click("form[action$='/revoke'] button")
    assert "已撤销 Revoked" in officer.inner_text("[role=status]")
    officer.screenshot(path=str(_artifacts() / "console-licence-revoked.png"), full_page=True)


def test_a_holder_shows_a_licence_a_verifier_scans_it_and_sees_the_revocation(
    demo_hub: tuple[str, dict[str, object]], browser: Browser
) -> None:
    """Issue 8's story: sign in, show by QR, scan in another browser (valid), revoke, scan again, read the log."""
    base, credentials = demo_hub
    company = next(h for h in credentials["holders"] if h["name"] == "临江智造科技有限公司")  # type: ignore[attr-defined]
    licence = next(
        lic
        for lic in credentials["licences"]  # type: ignore[attr-defined]
        if lic["type"] == "营业执照" and lic["holder"] == company["name"]
    )
    holder_ctx = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN")
    verifier_ctx = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN")
    officer_ctx = browser.new_context(locale="zh-CN")
    problems: list[str] = []
    try:
        me = holder_ctx.new_page()
        me.on("console", lambda message: _note(problems, message))
        me.goto(f"{base}/me")
        assert me.url.endswith("/me/sign-in")
        me.select_option("#holder_type", "001")
        me.fill("#holder_code", company["code"])
        me.fill("#name", company["name"])
        me.click("button[type=submit]")
        me.click("text=营业执照")
        me.click("text=生成二维码")
        me.wait_for_selector(".qr svg")
        assert me.is_visible("#qr-pause")  # the refresh script ran under the CSP and offers a pause
        me.screenshot(path=str(_artifacts() / "portal-qr-phone.png"), full_page=True)
        scan_url = me.get_attribute("a[href*='/v/']", "href")
        assert scan_url and scan_url.startswith(f"{base}/v/")

        scan = verifier_ctx.new_page()
        scan.on("console", lambda message: _note(problems, message))
        scan.goto(scan_url)
        assert "有效 Valid" in scan.inner_text("[role=status]")
        scan.screenshot(path=str(_artifacts() / "scan-valid-phone.png"), full_page=True)

        _revoke_from_the_console(officer_ctx.new_page(), base, credentials, licence, problems)
        scan.reload()
        assert "已撤销 Revoked" in scan.inner_text("[role=status]")
        assert "营业期限届满未续期" in scan.inner_text("main")
        scan.screenshot(path=str(_artifacts() / "scan-revoked-phone.png"), full_page=True)

        me.goto(f"{base}/me/access-log")
        log = me.inner_text("main")
        assert log.count("有人扫码核验") >= 2  # both scans, against this holder
        me.screenshot(path=str(_artifacts() / "portal-access-log-phone.png"), full_page=True)
    finally:
        holder_ctx.close()
        verifier_ctx.close()
        officer_ctx.close()
    assert problems == []


def test_the_qr_printed_on_an_issued_pdf_opens_the_live_status_page(
    demo_hub: tuple[str, dict[str, object]], browser: Browser, tmp_path: Path
) -> None:
    """Rasterise the sealed PDF (pdftoppm), decode its QR code (zxing-cpp), open it in the browser: live status."""
    base, credentials = demo_hub
    pdf = tmp_path / "licence.pdf"
    pdf.write_bytes(_sealed_demo_licence(base, credentials))
    (url,) = scanned_qr_codes(pdf, tmp_path)
    assert url.startswith(f"{base}/v/")
    context = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(url)
        verdict = page.inner_text("[role=status]")
        assert "有效 Valid" in verdict, verdict  # the story test revokes another company's licence, not this one
        assert "营业执照" in page.inner_text("main")
        page.screenshot(path=str(_artifacts() / "scan-printed-qr-phone.png"), full_page=True)
    finally:
        context.close()
