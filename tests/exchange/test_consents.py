"""Holder consents (用证授权): given, listed, withdrawn through /v1/me/consents, and checked by the exchange."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from catalog.models import Matter
from hub.clock import utcnow
from hub.exchange import consents
from hub.exchange.models import Consent
from tests.catalog.catalogkit import CatalogKit

MATTER = "CONSENT-TEST-0001"


def _matter(ckit: CatalogKit, code: str = MATTER) -> str:
    now = utcnow()
    with ckit.runtime.session_scope() as session:
        session.add(
            Matter(
                code=code, name="企业职工就业登记", department_code=ckit.consumer.code, created_at=now, modified_at=now
            )
        )
    return code


def _holder(kit: Any) -> tuple[dict[str, str], dict[str, str]]:
    holder = kit.holder("营业执照")
    return holder, kit.holder_headers(holder)


def test_a_holder_gives_lists_and_withdraws_a_consent(kit: Any, ckit: CatalogKit) -> None:
    matter = _matter(ckit)
    holder, headers = _holder(kit)
    body = {"department_code": ckit.consumer.code, "matter_code": matter, "valid_days": 7}
    given = kit.client.post("/v1/me/consents", json=body, headers=headers)
    assert given.status_code == 201, given.text
    consent = given.json()
    assert consent["active"] is True
    assert consent["department_name"] == ckit.consumer.name
    assert consent["receipt"]["leaf_index"] >= 0

    listed = kit.client.get("/v1/me/consents", headers=headers).json()
    assert [c["id"] for c in listed] == [consent["id"]]

    key = consents.HolderKey(holder["type"], holder["code"])
    with ckit.runtime.session_scope() as session:
        found = consents.check(
            session, key, department_code=ckit.consumer.code, matter_code=matter, case_number="C-1", at=utcnow()
        )
        assert found.id == consent["id"]

    withdrawn = kit.client.delete(f"/v1/me/consents/{consent['id']}", headers=headers)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["active"] is False
    with ckit.runtime.session_scope() as session, pytest.raises(consents.ConsentWithdrawn):
        consents.check(
            session, key, department_code=ckit.consumer.code, matter_code=matter, case_number="C-1", at=utcnow()
        )


def test_another_holder_cannot_see_or_withdraw_my_consent(kit: Any, ckit: CatalogKit) -> None:
    matter = _matter(ckit)
    _, mine = _holder(kit)
    _, theirs = _holder(kit)
    body = {"department_code": ckit.consumer.code, "matter_code": matter}
    consent_id = kit.client.post("/v1/me/consents", json=body, headers=mine).json()["id"]
    assert kit.client.get("/v1/me/consents", headers=theirs).json() == []
    refused = kit.client.delete(f"/v1/me/consents/{consent_id}", headers=theirs)
    assert refused.status_code == 404
    assert refused.json()["code"] == "consent_not_found"
    unknown = kit.client.delete(f"/v1/me/consents/{'0' * 32}", headers=mine)
    assert unknown.json()["code"] == "consent_not_found"
    with ckit.runtime.session_scope() as session:
        assert session.get(Consent, consent_id).withdrawn_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"department_code": "91110000000000000X"}, "consent_invalid"),  # no such department
        ({"matter_code": "NO-SUCH-MATTER"}, "consent_invalid"),
        ({"valid_days": 0}, "request_invalid"),
        ({"valid_days": 366}, "request_invalid"),
        ({"unexpected": 1}, "request_invalid"),
    ],
)
def test_invalid_consents_are_refused(kit: Any, ckit: CatalogKit, change: dict[str, Any], code: str) -> None:
    matter = _matter(ckit)
    _, headers = _holder(kit)
    body = {"department_code": ckit.consumer.code, "matter_code": matter} | change
    refused = kit.client.post("/v1/me/consents", json=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == code
    assert kit.client.get("/v1/me/consents", headers=headers).json() == []


def test_consents_need_a_holder_sign_in(kit: Any, ckit: CatalogKit) -> None:
    assert kit.client.get("/v1/me/consents").status_code == 401
    department_token = ckit.consumer.headers
    assert kit.client.get("/v1/me/consents", headers=department_token).status_code == 401


def test_the_check_names_the_most_specific_reason(ckit: CatalogKit) -> None:
    matter = _matter(ckit)
    other_matter = _matter(ckit, "CONSENT-TEST-0002")
    other_department = ckit.department("临江市住房和城乡建设局")
    key = consents.HolderKey("111", "11010519491231002X")
    now = utcnow()

    def check(department: str = ckit.consumer.code, case: str = "C-1", matter_code: str = matter) -> None:
        with ckit.runtime.session_scope() as session:
            consents.check(session, key, department_code=department, matter_code=matter_code, case_number=case, at=now)

    def give(department: str, **kwargs: Any) -> Consent:
        with ckit.runtime.session_scope() as session:
            values = {"matter_code": matter, "case_number": None, "expires_at": now + timedelta(days=1)} | kwargs
            return consents.give(session, key, department_code=department, now=now - timedelta(hours=1), **values)

    with pytest.raises(consents.ConsentMissing):
        check()
    give(other_department.code)
    with pytest.raises(consents.ConsentForOtherDepartment):
        check()
    give(ckit.consumer.code, case_number="C-9")
    with pytest.raises(consents.ConsentForOtherCase):
        check()
    check(case="C-9")  # the case it names
    give(ckit.consumer.code, expires_at=now - timedelta(minutes=1) + timedelta(minutes=1))  # expires exactly now
    with pytest.raises(consents.ConsentExpired):
        check()
    with pytest.raises(consents.ConsentMissing):
        check(matter_code=other_matter)  # consents are per matter
    give(ckit.consumer.code, expires_at=now + timedelta(days=2))
    check()  # a live, any-case consent wins over the expired and the other-case ones


def test_a_consent_cannot_be_given_for_the_past_or_for_more_than_a_year(ckit: CatalogKit) -> None:
    matter = _matter(ckit)
    key = consents.HolderKey("111", "11010519491231002X")
    now = utcnow()
    for expires in (now, now + timedelta(days=consents.MAX_CONSENT_DAYS, seconds=1)):
        with ckit.runtime.session_scope() as session, pytest.raises(consents.ConsentInvalid):
            consents.give(
                session, key, department_code=ckit.consumer.code, matter_code=matter, case_number=None,
                expires_at=expires, now=now,
            )  # fmt: skip
