"""POST /v1/exchange/verify: status and validity by identifier, presentation token or file SHA-256; audited."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from audit.entries import Receipt
from audit.models import AuditEntry
from hub.api.routes import exchange as exchange_routes
from hub.identity import service as identity
from hub.runtime import Runtime
from tests.licences.licencekit import Department, LicenceKit, department_client

FACE_KEYS = {"face", "certificate_holder_code", "certificate_holder_name", "disclosed"}


@pytest.fixture
def verifier(kit: LicenceKit) -> Department:
    with kit.runtime.session_scope() as session:
        from factories import department

        code = department(session, "临江市人力资源和社会保障局").code
    return department_client(kit.client, kit.runtime, code, "exchange:verify")


def _entry(runtime: Runtime, receipt: dict[str, Any]) -> AuditEntry:
    parsed = Receipt.from_json(receipt)
    parsed.verify(runtime.audit_signer.private_key.public_key(), runtime.audit_signer.origin)
    with runtime.session_scope() as session:
        row = session.get(AuditEntry, parsed.leaf_index)
        assert row is not None
        session.expunge(row)
        return row


def _entries(runtime: Runtime) -> int:
    with runtime.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_verify_by_identifier_sha256_and_presentation(kit: LicenceKit, verifier: Department) -> None:
    holder = kit.holder()
    licence = kit.issue(kit.request(holder=holder))
    shown = kit.client.post(
        f"/v1/me/licences/{licence['certificate_identifier']}/presentations", json={},
        headers=kit.holder_headers(holder),
    )  # fmt: skip
    assert shown.status_code == 201, shown.text
    for target, via in (
        ({"certificate_identifier": licence["certificate_identifier"]}, "certificate_identifier"),
        ({"sha256": licence["file_sha256"].upper()}, "sha256"),
        ({"presentation": shown.json()["token"]}, "presentation"),
    ):
        answer = kit.client.post("/v1/exchange/verify", json=target, headers=verifier.headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "valid"
        assert body["certificate_identifier"] == licence["certificate_identifier"]
        assert body["certificate_type_code"] == licence["certificate_type_code"]
        assert body["certificate_issuing_authority_code"] == kit.issuer.code
        assert body["valid_from"] == licence["certificate_validity_start"]
        assert body["disputed"] is False
        assert not FACE_KEYS & body.keys()  # status and validity only
        assert holder["code"] not in answer.text and holder["name"] not in answer.text
        row = _entry(kit.runtime, body["receipt"])
        assert (row.action, row.outcome, row.department_code) == ("exchange.licence.verified", "ok", verifier.code)
        assert row.certificate_identifier == licence["certificate_identifier"]
        assert row.holder_ref is not None and holder["code"] not in (row.body or b"").decode()
        assert f'"via":"{via}"' in (row.body or b"").decode()


def test_verify_reports_the_live_status(kit: LicenceKit, verifier: Department) -> None:
    licence = kit.issue()
    identifier = licence["certificate_identifier"]
    revoked = kit.client.post(
        f"/v1/licences/{identifier}/revoke", json={"reason": "以欺骗手段取得"}, headers=kit.issuer.headers
    )
    assert revoked.status_code == 200, revoked.text
    answer = kit.client.post(
        "/v1/exchange/verify", json={"certificate_identifier": identifier}, headers=verifier.headers
    )
    assert answer.json()["status"] == "revoked"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "verify_target_invalid"),
        ({"certificate_identifier": "x", "sha256": "0" * 64}, 422, "verify_target_invalid"),
        ({"sha256": "g" * 64}, 422, "verify_target_invalid"),
        ({"certificate_identifier": "11100000000013338W032-0000000000000000000001-001"}, 404, "licence_not_found"),
        ({"sha256": "0" * 64}, 404, "licence_not_found"),
        ({"presentation": "not-a-token"}, 422, "presentation_malformed"),
    ],
)
def test_refusals_are_audited_once_and_disclose_nothing(
    kit: LicenceKit, verifier: Department, body: dict[str, Any], status: int, code: str
) -> None:
    before = _entries(kit.runtime)
    answer = kit.client.post("/v1/exchange/verify", json=body, headers=verifier.headers)
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["code"] == code
    assert "status" not in problem or problem["status"] == status
    row = _entry(kit.runtime, problem["receipt"])
    assert (row.action, row.outcome, row.error_code) == ("exchange.licence.verified", "denied", code)
    assert row.department_code == verifier.code
    assert _entries(kit.runtime) == before + 1


def test_a_forged_presentation_is_refused(kit: LicenceKit, verifier: Department) -> None:
    holder = kit.holder()
    licence = kit.issue(kit.request(holder=holder))
    token = kit.client.post(
        f"/v1/me/licences/{licence['certificate_identifier']}/presentations", json={},
        headers=kit.holder_headers(holder),
    ).json()["token"]  # fmt: skip
    head, payload, signature = token.split(".")
    middle = len(signature) // 2  # a character inside the signature: still valid base64url, wrong signature
    flipped = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    answer = kit.client.post(
        "/v1/exchange/verify", json={"presentation": f"{head}.{payload}.{flipped}"}, headers=verifier.headers
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "presentation_signature_invalid"
    assert licence["certificate_identifier"] not in answer.text


def test_no_token_and_wrong_scope_are_audited(kit: LicenceKit) -> None:
    body = {"certificate_identifier": "x"}
    for headers, status, code in ((None, 401, "token_missing"), (kit.issuer.headers, 403, "scope_missing")):
        before = _entries(kit.runtime)
        answer = kit.client.post("/v1/exchange/verify", json=body, headers=headers)
        assert answer.status_code == status, answer.text
        problem = answer.json()
        assert problem["code"] == code
        row = _entry(kit.runtime, problem["receipt"])
        assert (row.action, row.outcome, row.error_code) == ("exchange.licence.verified", "denied", code)
        assert _entries(kit.runtime) == before + 1


def test_concurrent_calls_are_read_together_and_each_gets_its_own_answer(kit: LicenceKit, verifier: Department) -> None:
    """Verify runs on the event loop and its reads are batched by the audit committer: no answer or entry mixed up."""
    licences = [kit.issue() for _ in range(3)]
    unknown = "11100000000013338W032-0000000000000000000009-001"
    bodies = [{"certificate_identifier": lic["certificate_identifier"]} for lic in licences]
    bodies += [{"sha256": licences[1]["file_sha256"]}, {"certificate_identifier": unknown}]
    calls = bodies * 4
    # One call first: it verifies the access token on a worker thread. The test runtime's sessions share one
    # connection (rolled back at the end), so only the committer's thread may use it while calls overlap.
    assert kit.client.post("/v1/exchange/verify", json=bodies[0], headers=verifier.headers).status_code == 200
    committer = kit.runtime.audit
    batches_before = committer.batches

    async def together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=kit.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return list(
                await asyncio.gather(
                    *(client.post("/v1/exchange/verify", json=b, headers=verifier.headers) for b in calls)
                )
            )

    answers = asyncio.run(together())
    leaves = set()
    for body, answer in zip(calls, answers, strict=True):
        named = body.get("certificate_identifier") or licences[1]["certificate_identifier"]
        if named == unknown:
            assert answer.status_code == 404, answer.text
            assert answer.json()["code"] == "licence_not_found"
            row = _entry(kit.runtime, answer.json()["receipt"])
            assert (row.outcome, row.error_code, row.department_code) == ("denied", "licence_not_found", verifier.code)
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json()["certificate_identifier"] == named
            row = _entry(kit.runtime, answer.json()["receipt"])
            assert (row.outcome, row.certificate_identifier) == ("ok", named)
        leaves.add(row.leaf_index)
    assert len(leaves) == len(calls)  # one entry per call
    assert committer.batches - batches_before < len(calls)  # and calls really shared batches


def test_a_client_disabled_after_its_token_was_checked_is_refused_at_once(
    kit: LicenceKit, verifier: Department
) -> None:
    """The token's verdict is cached per token; whether its client may still call is read on every call."""
    licence = kit.issue()
    body = {"certificate_identifier": licence["certificate_identifier"]}
    assert kit.client.post("/v1/exchange/verify", json=body, headers=verifier.headers).status_code == 200
    with kit.runtime.session_scope() as session:
        identity.disable_client(session, verifier.client_id)
    before = _entries(kit.runtime)
    answer = kit.client.post("/v1/exchange/verify", json=body, headers=verifier.headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "client_disabled"
    assert licence["certificate_identifier"] not in answer.text
    row = _entry(kit.runtime, answer.json()["receipt"])
    assert (row.action, row.outcome, row.error_code) == ("exchange.licence.verified", "denied", "client_disabled")
    assert _entries(kit.runtime) == before + 1


_BODY_CASES = [
    pytest.param(None, id="well-formed"),
    pytest.param(b'{"certificate_identifier": ', id="bad JSON"),
    pytest.param(b"", id="empty"),
    pytest.param(b"[]", id="not an object"),
    pytest.param(b'{"certificate_identifier": 7}', id="wrong type"),
    pytest.param(b'{"certificate_identifier": "x", "extra": 1}', id="unknown member"),
    pytest.param(b'{"sha256": "abc"}', id="too short"),
]


class _CountingJson:
    """``json`` for the exchange routes' module, counting the bodies its direct path parses."""

    def __init__(self) -> None:
        self.parsed = 0

    def loads(self, data: bytes) -> Any:
        self.parsed += 1
        return json.loads(data)


@pytest.mark.parametrize("raw", _BODY_CASES)
@pytest.mark.parametrize("auth", ["token", "none", "lowercase scheme"])
def test_the_hot_path_answers_as_fastapi_s_own_handler(
    kit: LicenceKit, verifier: Department, raw: bytes | None, auth: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``application/json`` takes the route's direct path; with a charset parameter, FastAPI's handler. Same answers."""
    counting = _CountingJson()
    monkeypatch.setattr(exchange_routes, "json", counting)
    licence = kit.issue(kit.request(holder=kit.holder()))
    identifier = licence["certificate_identifier"]
    body = raw if raw is not None else json.dumps({"certificate_identifier": identifier}).encode()
    token = verifier.headers["Authorization"].split(" ", 1)[1]
    scheme = {"token": "Bearer", "none": None, "lowercase scheme": "bearer"}[auth]
    headers = {"Authorization": f"{scheme} {token}"} if scheme else {}
    answers = []
    for content_type in ("application/json", "application/json; charset=utf-8"):
        answer = kit.client.post("/v1/exchange/verify", content=body, headers=headers | {"Content-Type": content_type})
        assert answer.status_code != 500, answer.text
        shown = {k: v for k, v in answer.json().items() if k not in {"receipt", "checked_at", "instance", "request_id"}}
        answers.append((answer.status_code, shown))
    assert answers[0] == answers[1]
    assert counting.parsed == 1  # the first call only: its body parsed by the direct path, valid or not
    if raw is None and scheme:
        assert answers[0][0] == 200 and answers[0][1]["status"] == "valid"
