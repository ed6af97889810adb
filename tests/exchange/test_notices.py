"""Push notices: departments that fetched or verified a licence hear when it changes; nobody else does."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from factories import department
from sqlalchemy import select

from hub.clock import utcnow
from hub.exchange import notices
from hub.webhooks.models import WebhookEvent
from licences.models import Licence
from tests.licences.licencekit import Department, LicenceKit, department_client


def _verifier(kit: LicenceKit, name: str) -> Department:
    with kit.runtime.session_scope() as session:
        code = department(session, name).code
    return department_client(kit.client, kit.runtime, code, "exchange:verify")


def _verify(kit: LicenceKit, who: Department, identifier: str) -> None:
    answer = kit.client.post("/v1/exchange/verify", json={"certificate_identifier": identifier}, headers=who.headers)
    assert answer.status_code == 200, answer.text


def _events(kit: LicenceKit, department_code: str) -> list[dict[str, Any]]:
    with kit.runtime.session_scope() as session:
        rows = session.scalars(select(WebhookEvent).where(WebhookEvent.department_code == department_code)).all()
        return [json.loads(row.body) for row in rows]


def test_a_revocation_reaches_the_departments_that_relied_on_the_licence(kit: LicenceKit) -> None:
    relying = _verifier(kit, "临江市人力资源和社会保障局")
    bystander = _verifier(kit, "临江市住房和城乡建设局")
    licence = kit.issue()
    identifier = licence["certificate_identifier"]
    _verify(kit, relying, identifier)
    refused = kit.client.post("/v1/exchange/verify", json={"certificate_identifier": identifier},
                              headers=kit.issuer.headers)  # fmt: skip
    assert refused.status_code == 403  # a denied call is no reliance

    revoked = kit.client.post(f"/v1/licences/{identifier}/revoke", json={"reason": "吊销"}, headers=kit.issuer.headers)
    assert revoked.status_code == 200, revoked.text

    [event] = _events(kit, relying.code)
    assert event["type"] == "cn.gov.licence-hub.licence.revoked"
    assert event["subject"] == identifier
    assert event["data"]["status"] == "revoked"
    assert event["data"]["certificate_identifier"] == identifier
    assert "face" not in event["data"]
    assert licence["certificate_holder_code"] not in json.dumps(event, ensure_ascii=False)
    assert _events(kit, bystander.code) == []
    assert _events(kit, kit.issuer.code) == []


def test_an_amendment_names_the_new_version_and_reaches_holders_of_older_versions(kit: LicenceKit) -> None:
    relying = _verifier(kit, "临江市卫生健康委员会")
    licence = kit.issue()
    identifier = licence["certificate_identifier"]
    _verify(kit, relying, identifier)
    renewed = kit.client.post(f"/v1/licences/{identifier}/renew", json={}, headers=kit.issuer.headers)
    assert renewed.status_code in {200, 201}, renewed.text
    second = renewed.json()["certificate_identifier"]
    face = dict(licence["face"]) | {"domicile": "临江市新区创业大道1号"}
    amended = kit.client.post(f"/v1/licences/{second}/amend", json={"face": face, "reason": "住所变更"},
                              headers=kit.issuer.headers)  # fmt: skip
    assert amended.status_code in {200, 201}, amended.text
    third = amended.json()["certificate_identifier"]

    changes = {(e["type"], e["data"]["certificate_identifier"], e["data"]["new_certificate_identifier"])
               for e in _events(kit, relying.code)}  # fmt: skip
    assert changes == {
        ("cn.gov.licence-hub.licence.renewed", identifier, second),
        ("cn.gov.licence-hub.licence.amended", second, third),  # it verified only the first version
    }


def test_reliance_older_than_the_window_is_forgotten(kit: LicenceKit) -> None:
    relying = _verifier(kit, "临江市民政局")
    identifier = kit.issue()["certificate_identifier"]
    _verify(kit, relying, identifier)
    settings = kit.runtime.settings.model_copy(update={"exchange_notice_window_days": 1})
    with kit.runtime.session_scope() as session:
        licence = session.scalar(select(Licence).where(Licence.identifier == identifier))
        assert licence is not None
        later = utcnow() + timedelta(days=2)
        assert notices.notify_relying(session, settings, "suspended", licence, None, now=later) == []
        assert notices.notify_relying(session, settings, "suspended", licence, None, now=utcnow()) == [relying.code]


@pytest.mark.parametrize("verb", ["suspend", "revoke"])
def test_a_second_identical_notice_is_not_sent_twice(kit: LicenceKit, verb: str) -> None:
    relying = _verifier(kit, "临江市教育局")
    identifier = kit.issue()["certificate_identifier"]
    _verify(kit, relying, identifier)
    body = {"reason": "核查中"}
    assert kit.client.post(f"/v1/licences/{identifier}/{verb}", json=body, headers=kit.issuer.headers).is_success
    with kit.runtime.session_scope() as session:
        licence = session.scalar(select(Licence).where(Licence.identifier == identifier))
        assert licence is not None
        past = {"suspend": "suspended", "revoke": "revoked"}[verb]
        again = notices.notify_relying(session, kit.runtime.settings, past, licence, None, now=utcnow())
        assert again == [relying.code]
    assert len(_events(kit, relying.code)) == 1  # same event id: emit is idempotent
