"""POST /v1/exchange/fetch and /materials-check over the real API, and the refusal matrix of issue 7.

Every refusal must return its specific problem code, carry no licence data, and leave exactly one audit
entry with outcome ``denied``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from factories import random_uscc
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from audit.entries import Receipt
from audit.models import AuditEntry
from catalog import grant_check
from catalog.models import Grant
from catalog.workdays import local_day
from hub import audited
from hub.api.app import create_app
from hub.clock import utcnow
from hub.exchange.fetch import Fetched, FetchRequest, fetch_many
from hub.exchange.models import Consent, PurposeCopy
from hub.runtime import Runtime
from licences.models import Licence
from tests.exchange.exchangekit import (
    BUSINESS_ITEMS,
    DOCTOR,
    DOCTOR_ITEMS,
    MATTER,
    OTHER_MATTER,
    ExchangeKit,
    grant_for,
    make_exchange_kit,
)
from tests.licences.licencekit import BUSINESS, LicenceKit, make_licence_kit


@pytest.fixture
def ex(kit: LicenceKit) -> ExchangeKit:
    return make_exchange_kit(kit)


def _entries(ex: ExchangeKit, **where: Any) -> list[AuditEntry]:
    with ex.kit.runtime.session_scope() as session:
        query = select(AuditEntry).where(*(getattr(AuditEntry, k) == v for k, v in where.items()))
        rows = list(session.scalars(query.order_by(AuditEntry.leaf_index)))
        session.expunge_all()
        return rows


def _count(ex: ExchangeKit) -> int:
    with ex.kit.runtime.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


# ----------------------------------------------------------------------------- happy paths


def test_a_fetch_returns_only_granted_fields_a_receipt_and_a_stamped_copy(ex: ExchangeKit) -> None:
    answer = ex.fetch()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    licence = body["licence"]
    assert licence["certificate_identifier"] == ex.company_licence["certificate_identifier"]
    assert set(licence["face"]) == set(BUSINESS_ITEMS)  # granted fields only, in no other order than the face's
    assert "domicile" not in licence["face"]
    assert str(ex.company_licence["face"]["domicile"]) not in answer.text
    assert body["disputed"] is False
    assert body["grant_id"] == ex.grants[BUSINESS]["id"]

    [entry] = _entries(ex, leaf_index=body["receipt"]["leaf_index"])
    assert (entry.action, entry.outcome, entry.department_code) == ("exchange.licence.fetched", "ok", ex.consumer.code)
    assert (entry.matter_code, entry.case_number, entry.officer_id) == (MATTER, "LJ-2026-000777", "officer-42")
    assert entry.certificate_identifier == licence["certificate_identifier"]
    entry_body = json.loads(entry.body or b"{}")
    assert sorted(entry_body["fields"]) == sorted(BUSINESS_ITEMS)
    assert ex.company["code"] not in (entry.body or b"").decode()  # holder_ref only

    path = body["file_url"].removeprefix("http://testserver")
    copy = ex.kit.client.get(path, headers=ex.consumer.headers)
    assert copy.status_code == 200, copy.text
    assert ex.platform.verifier().verify(copy.content).verdict == "TOTAL-PASSED"
    assert ex.kit.client.get(path, headers=ex.provider.headers).status_code in {403, 404}  # not the fetcher

    # The holder sees the use of their data, with matter, case and fields.
    log = ex.kit.client.get("/v1/me/access-log", headers=ex.kit.holder_headers(ex.company)).json()
    fetched = [item for item in log if item["action"] == "exchange.licence.fetched"]
    assert fetched and fetched[-1]["case_number"] == "LJ-2026-000777"
    assert fetched[-1]["department_code"] == ex.consumer.code
    assert sorted(fetched[-1]["fields"]) == sorted(BUSINESS_ITEMS)
    # ... with a signed access receipt per use, the same promise the fetching department got.
    holder_receipt = Receipt.from_json(fetched[-1]["receipt"])
    signer = ex.kit.runtime.audit_signer
    holder_receipt.verify(signer.private_key.public_key(), signer.origin)
    assert fetched[-1]["receipt"] == body["receipt"]


def test_fetch_by_identifier_and_chosen_fields(ex: ExchangeKit) -> None:
    identifier = ex.company_licence["certificate_identifier"]
    answer = ex.fetch(certificate_type_code=None, certificate_identifier=identifier, fields=["name"])
    assert answer.status_code == 200, answer.text
    assert list(answer.json()["licence"]["face"]) == ["name"]


def test_a_consented_fetch_of_personal_data(ex: ExchangeKit) -> None:
    assert ex.grants[DOCTOR]["consent_required"] is True
    ex.consent(ex.citizen)
    answer = ex.fetch(holder={"type": "111", "code": ex.citizen["code"]}, certificate_type_code=DOCTOR)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["licence"]["face"]) == set(DOCTOR_ITEMS)


def test_a_disputed_licence_is_fetched_with_the_flag(ex: ExchangeKit) -> None:
    identifier = ex.company_licence["certificate_identifier"]
    raised = ex.kit.client.post(
        "/v1/catalog/objections",
        json={"certificate_identifier": identifier, "item_key": "domicile", "claimed_value": "临江市新区1号",
              "reason": "住所已变更"},
        headers=ex.consumer.headers,
    )  # fmt: skip
    assert raised.status_code == 201, raised.text
    objection = raised.json()["id"]
    issuer = ex.provider
    for verb in ("accept", "flag"):
        step = ex.kit.client.post(f"/v1/catalog/objections/{objection}/{verb}", json={}, headers=issuer.headers)
        assert step.status_code == 200, step.text
    answer = ex.fetch()
    assert answer.json()["disputed"] is True
    assert answer.json()["disputed_items"] == ["domicile"]


def test_materials_check_names_what_satisfies_each_material_and_why_not(ex: ExchangeKit) -> None:
    def check(holder: dict[str, str]) -> dict[str, Any]:
        body = {"matter_code": MATTER, "holder": {"type": holder["type"], "code": holder["code"]}}
        answer = ex.kit.client.post("/v1/exchange/materials-check", json=body, headers=ex.consumer.headers)
        assert answer.status_code == 200, answer.text
        return {m["material_code"]: m for m in answer.json()["materials"]}

    company = check(ex.company)
    assert company["M01"]["satisfied_by"] == {
        "certificate_identifier": ex.company_licence["certificate_identifier"], "certificate_type_code": BUSINESS,
    }  # fmt: skip
    assert company["M01"]["reason"] == "satisfied"
    assert company["M02"]["satisfied_by"] is None
    assert company["M02"]["reason"] == "consent_missing"  # personal data: consent comes before possession
    assert company["M03"]["reason"] == "grant_missing"  # no grant for 户口登记
    citizen = check(ex.citizen)
    assert citizen["M02"]["reason"] == "consent_missing"
    ex.consent(ex.citizen, case_number="CASE-1")  # a case-bound consent is enough to check before the case
    assert check(ex.citizen)["M02"]["reason"] == "satisfied"
    [entry] = _entries(ex, action="exchange.materials.checked", outcome="ok", holder_ref=_ref(ex, ex.company))
    assert entry.matter_code == MATTER


def _ref(ex: ExchangeKit, holder: dict[str, str]) -> str:
    from hub import audited

    return audited.holder_ref(ex.kit.runtime, holder["type"], holder["code"])


# ----------------------------------------------------------------------------- the refusal matrix


def _grant_update(ex: ExchangeKit, type_code: str, **values: Any) -> None:
    with ex.kit.runtime.session_scope() as session:
        session.execute(update(Grant).where(Grant.id == ex.grants[type_code]["id"]).values(**values))
        grant_check.note_grants_changed(session)


def _grant_post(ex: ExchangeKit, verb: str) -> None:
    grant_id = ex.grants[BUSINESS]["id"]
    answer = ex.kit.client.post(f"/v1/catalog/grants/{grant_id}/{verb}", json={"reason": "核查"},
                                headers=ex.provider.headers)  # fmt: skip
    assert answer.status_code == 200, answer.text


def _licence_post(ex: ExchangeKit, verb: str, body: dict[str, Any]) -> dict[str, Any]:
    identifier = ex.company_licence["certificate_identifier"]
    answer = ex.kit.client.post(f"/v1/licences/{identifier}/{verb}", json=body, headers=ex.kit.issuer.headers)
    assert answer.is_success, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _expire_licence(ex: ExchangeKit) -> None:
    with ex.kit.runtime.session_scope() as session:
        session.execute(
            update(Licence)
            .where(Licence.identifier == ex.company_licence["certificate_identifier"])
            .values(validity_end=date(2020, 1, 1), validity_start=date(2019, 1, 1))
        )


def _withdrawn_consent(ex: ExchangeKit) -> None:
    consent = ex.consent(ex.citizen)
    gone = ex.kit.client.delete(f"/v1/me/consents/{consent['id']}", headers=ex.kit.holder_headers(ex.citizen))
    assert gone.status_code == 200


def _expired_consent(ex: ExchangeKit) -> None:
    consent = ex.consent(ex.citizen)
    with ex.kit.runtime.session_scope() as session:
        session.execute(update(Consent).where(Consent.id == consent["id"]).values(expires_at=utcnow() - timedelta(1)))


def _nothing(_ex: ExchangeKit) -> None:
    """No setup: the request itself is what is wrong."""


CITIZEN = {"holder": "citizen", "certificate_type_code": DOCTOR}
Setup = Callable[[ExchangeKit], Any]
CASES: list[tuple[str, Setup, dict[str, Any], int, str]] = [
    ("no token", _nothing, {"who": "nobody"}, 401, "token_missing"),
    ("wrong scope", _nothing, {"who": "issuer"}, 403, "scope_missing"),
    ("another department, no grant", _nothing, {"who": "stranger"}, 403, "grant_missing"),
    ("grant expired", lambda ex: _grant_update(ex, BUSINESS, valid_until=utcnow() - timedelta(1)), {}, 403,
     "grant_expired"),
    ("grant suspended", lambda ex: _grant_post(ex, "suspend"), {}, 403, "grant_suspended"),
    ("grant revoked", lambda ex: _grant_post(ex, "revoke"), {}, 403, "grant_revoked"),
    ("wrong matter", _nothing, {"matter_code": OTHER_MATTER}, 403, "grant_matter_mismatch"),
    ("unknown matter", _nothing, {"matter_code": "NO-SUCH-MATTER"}, 404, "matter_not_found"),
    ("ungranted field", _nothing, {"fields": ["domicile"]}, 403, "grant_field_not_granted"),
    ("consent missing", _nothing, CITIZEN, 403, "consent_missing"),
    ("consent withdrawn", _withdrawn_consent, CITIZEN, 403, "consent_withdrawn"),
    ("consent expired", _expired_consent, CITIZEN, 403, "consent_expired"),
    ("consent for another department",
     lambda ex: ex.consent(ex.citizen, department_code=ex.kit.issuer.code), CITIZEN, 403, "consent_other_department"),
    ("consent for another case", lambda ex: ex.consent(ex.citizen, case_number="OTHER-1"), CITIZEN, 403,
     "consent_other_case"),
    ("licence revoked", lambda ex: _licence_post(ex, "revoke", {"reason": "吊销"}), {}, 409, "licence_revoked"),
    ("licence suspended", lambda ex: _licence_post(ex, "suspend", {"reason": "核查"}), {}, 409, "licence_suspended"),
    ("licence expired", _expire_licence, {}, 409, "licence_expired"),
    ("licence superseded", lambda ex: _licence_post(ex, "renew", {}), {"by_identifier": True}, 409,
     "licence_superseded"),
    ("unknown holder", _nothing, {"holder": "unknown"}, 404, "licence_not_held"),
    ("malformed holder code", _nothing, {"holder": "malformed"}, 422, "invalid_uscc"),
    ("case number missing", _nothing, {"case_number": None}, 422, "case_number_missing"),
    ("officer missing", _nothing, {"officer_id": None}, 422, "officer_id_missing"),
    ("matter missing", _nothing, {"matter_code": None}, 422, "matter_code_missing"),
]  # fmt: skip


def _request(ex: ExchangeKit, spec: dict[str, Any]) -> tuple[int, Any]:
    """The audit entry count just before the call, and the call's response."""
    spec = dict(spec)
    who = spec.pop("who", "consumer")
    holder = spec.pop("holder", "company")
    if spec.pop("by_identifier", False):
        spec |= {"certificate_type_code": None, "certificate_identifier": ex.company_licence["certificate_identifier"]}
    holders = {
        "company": {"type": "001", "code": ex.company["code"]},
        "citizen": {"type": "111", "code": ex.citizen["code"]},
        "unknown": {"type": "001", "code": random_uscc("9", "1")},
        "malformed": {"type": "001", "code": ex.company["code"][:-1] + ("0" if ex.company["code"][-1] != "0" else "1")},
    }
    body = ex.fetch_body(holder=holders[holder], **spec)
    headers = {"consumer": ex.consumer.headers, "issuer": ex.kit.issuer.headers, "nobody": None}.get(who)
    before = _count(ex)
    if who == "stranger":  # a department of its own, signed in before the count starts
        headers = ex.new_department("临江市住房和城乡建设局").headers
        before = _count(ex)
    return before, ex.kit.client.post("/v1/exchange/fetch", json=body, headers=headers)


@pytest.mark.parametrize(("name", "setup", "spec", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_every_refusal_has_its_code_no_data_and_one_denied_entry(  # noqa: PLR0917 - the matrix row
    ex: ExchangeKit, name: str, setup: Setup, spec: dict[str, Any], status: int, code: str
) -> None:
    setup(ex)
    before, answer = _request(ex, spec)
    assert answer.status_code == status, f"{name}: {answer.text}"
    problem = answer.json()
    assert problem["code"] == code, name
    assert answer.headers["content-type"].startswith("application/problem+json")
    for licence in (ex.company_licence, ex.doctor_licence):
        for value in licence["face"].values():
            if isinstance(value, str) and len(value) > 3:
                assert value not in answer.text, f"{name} leaked a face value"
    assert "licence" not in problem and "file_url" not in problem
    assert _count(ex) == before + 1, f"{name}: exactly one audit entry"
    [entry] = _entries(ex, leaf_index=problem["receipt"]["leaf_index"])
    assert (entry.action, entry.outcome, entry.error_code) == ("exchange.licence.fetched", "denied", code)


def test_the_quota_refuses_the_call_after_the_last_and_says_when_to_retry(ex: ExchangeKit) -> None:
    limited = ex.new_department("临江市医疗保障局")
    for matter in ({"code": "11330100MB1234567X3000444001", "name": "参保登记", "materials": []},):
        created = ex.kit.client.post("/v1/catalog/matters", json=matter, headers=limited.headers)
        assert created.status_code == 201, created.text
    grant_for(ex.kit, limited, ex.provider, BUSINESS, ["name"], quota_per_day=2,
              matter_codes=["11330100MB1234567X3000444001"])  # fmt: skip
    body = {"matter_code": "11330100MB1234567X3000444001", "fields": ["name"]}
    assert ex.fetch(who=limited, **body).status_code == 200
    assert ex.fetch(who=limited, **body).status_code == 200
    refused = ex.fetch(who=limited, **body)
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "grant_quota_exceeded"
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    # A refused fetch gives its call back: the counter stays at the quota.
    with ex.kit.runtime.session_scope() as session:
        grant = session.scalar(select(Grant).where(Grant.consumer_code == limited.code))
        assert grant is not None
        from catalog.workdays import local_day

        assert grant_check.usage(session, grant.id, local_day(utcnow())) == 2


def test_verify_checks_and_fetches_share_group_commits_and_leave_no_open_transaction(ex: ExchangeKit) -> None:
    """Verify and materials check are read-only units of work; a fetch commits its bookkeeping, then its entry.

    Either way the entry comes from the group committer, so no request holds the sequencer's row lock while
    FastAPI serialises its answer on the shared thread pool (the deadlock the exchange benchmark found).
    """
    committer = ex.kit.runtime.audit
    verifier = ex.consumer
    calls = (
        ("/v1/exchange/verify", {"certificate_identifier": ex.company_licence["certificate_identifier"]}),
        ("/v1/exchange/materials-check", {"matter_code": MATTER, "holder": ex.fetch_body()["holder"]}),
        ("/v1/exchange/fetch", ex.fetch_body()),
    )
    for path, body in calls:
        before = committer.entries
        answer = ex.kit.client.post(path, json=body, headers=verifier.headers)
        assert answer.status_code == 200, answer.text
        assert committer.entries == before + 1, path  # written by the committer, not in the request's transaction
        (entry,) = _entries(ex, leaf_index=answer.json()["receipt"]["leaf_index"])
        assert entry.outcome == "ok"
    copy_id = answer.json()["file_url"].rsplit("/", 1)[1]
    with ex.kit.runtime.session_scope() as session:  # the fetch's own commit: the promised copy is there
        assert session.get(PurposeCopy, copy_id) is not None


def test_a_state_changing_record_ends_its_transaction(ex: ExchangeKit) -> None:
    runtime = ex.kit.runtime
    with runtime.session_scope() as session:
        event = audited.event(action="test.state.changed", outcome="ok", actor_type="system", actor="test")
        receipt = audited.record(session, runtime, event)
        assert not session.in_transaction()  # committed at once: the sequencer's lock is already released
    (entry,) = _entries(ex, leaf_index=receipt.leaf_index)
    assert entry.action == "test.state.changed"


# ----------------------------------------------------------------------------- batches


def _limited(ex: ExchangeKit, name: str, quota: int) -> tuple[Any, str]:
    """A department with a grant of ``quota`` calls a day on the business licence, for a matter of its own."""
    limited = ex.new_department(name)
    matter = {"code": "11330100MB1234567X3000555001", "name": "社会保险登记", "materials": []}
    created = ex.kit.client.post("/v1/catalog/matters", json=matter, headers=limited.headers)
    assert created.status_code == 201, created.text
    grant_for(ex.kit, limited, ex.provider, BUSINESS, ["name"], quota_per_day=quota, matter_codes=[matter["code"]])
    return limited, matter["code"]


def test_a_batch_of_fetches_is_judged_call_by_call_in_order(ex: ExchangeKit) -> None:
    """One batch, one transaction: each call gets what it would have got alone, in arrival order.

    A call refused after the quota check (no licence held) gives its unit back, so the call after it
    still fits; once the quota is spent, even a call that would fail later is refused for the quota.
    """
    limited, matter = _limited(ex, "临江市社会保险事业管理中心", quota=2)
    stranger = ex.kit.holder("营业执照")  # a valid code that holds nothing

    def call(holder: dict[str, str] = ex.company, **change: Any) -> FetchRequest:
        fields: dict[str, Any] = {
            "department_code": limited.code, "matter_code": matter, "case_number": "LJ-2026-BATCH",
            "officer_id": "officer-7", "holder_type": holder["type"], "holder_code": holder["code"],
            "certificate_type_code": BUSINESS, "certificate_identifier": None, "fields": None,
        } | change  # fmt: skip
        return FetchRequest(**fields)

    calls = [
        call(),  # 1st unit
        call(stranger),  # licence_not_held: its unit goes back
        call(case_number=" "),  # refused before anything is read
        call(matter_code="11330100MB1234567X3000999999"),
        call(certificate_type_code=None, certificate_identifier="1.2.156.3005.2.NOT.AN.IDENTIFIER"),
        call(),  # 2nd unit
        call(),  # the quota is spent
        call(stranger),  # the quota is checked before the licence
    ]
    runtime = ex.kit.runtime
    with runtime.session_scope() as session:
        answers = fetch_many(session, runtime.grant_cache, runtime.settings, calls, at=utcnow())
    codes = [a.code if not isinstance(a, Fetched) else "ok" for a in answers]
    assert codes == [
        "ok", "licence_not_held", "case_number_missing", "matter_not_found", "licence_identifier_invalid",
        "ok", "grant_quota_exceeded", "grant_quota_exceeded",
    ]  # fmt: skip
    first, second = (a for a in answers if isinstance(a, Fetched))
    assert (first.decision.calls_today, second.decision.calls_today) == (1, 2)
    assert first.licence["face"] == {"name": ex.company_licence["face"]["name"]}  # the granted item only
    assert first.copy_id != second.copy_id
    with runtime.session_scope() as session:
        grant = session.scalar(select(Grant).where(Grant.consumer_code == limited.code))
        assert grant is not None
        assert grant_check.usage(session, grant.id, local_day(utcnow())) == 2
        promised = session.scalars(select(PurposeCopy.id).where(PurposeCopy.department_code == limited.code))
        assert set(promised) == {first.copy_id, second.copy_id}


@pytest.fixture
def live_ex(live_runtime: Runtime) -> Iterator[ExchangeKit]:
    """The exchange scenario on a committed database with real connections (threads do not share one)."""
    with TestClient(create_app(live_runtime), raise_server_exceptions=False) as client:
        yield make_exchange_kit(make_licence_kit(client, live_runtime))


def test_concurrent_fetches_share_batches_and_never_overspend_the_quota(live_ex: ExchangeKit) -> None:
    """Over HTTP, 24 fetches at once against a quota of 10: exactly 10 answered, 14 refused, 24 entries.

    PostgreSQL runs them in batches whose quota rows are locked; a lost update would answer more than 10.
    """
    limited, matter = _limited(live_ex, "临江市就业管理服务局", quota=10)
    before = _count(live_ex)
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(lambda i: live_ex.fetch(who=limited, matter_code=matter, case_number=f"LJ-{i}"),
                                range(24)))  # fmt: skip
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 10 + [429] * 14, [a.text for a in answers if a.status_code not in {200, 429}]
    assert {a.json()["code"] for a in answers if a.status_code == 429} == {"grant_quota_exceeded"}
    assert _count(live_ex) == before + 24
    entries = _entries(live_ex, department_code=limited.code, action="exchange.licence.fetched")
    assert sorted(e.outcome for e in entries) == ["denied"] * 14 + ["ok"] * 10
    assert {e.case_number for e in entries} == {f"LJ-{i}" for i in range(24)}
