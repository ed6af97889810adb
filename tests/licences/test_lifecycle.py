"""Lifecycle transitions, the signed status list, QR presentations and the holder's views."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from hub.api.routes.scan import MAX_TOKEN
from hub.clock import utcnow
from hub.keys import service as keys
from hub.keys.service import SigningKey
from hub.runtime import Runtime
from licences.presentation import issue_presentation
from tests.licences.licencekit import LicenceKit


def _post(kit: LicenceKit, ident: str, action: str, body: dict[str, object], expect: int) -> dict[str, object]:
    response = kit.client.post(f"/v1/licences/{ident}/{action}", json=body, headers=kit.issuer.headers)
    assert response.status_code == expect, response.text
    result: dict[str, object] = response.json()
    return result


def _offline_status(kit: LicenceKit, licence: dict[str, object]) -> int:
    """Read a licence's 2-bit entry with PyJWT and the standard library only (docs/offline-verification.md)."""
    entry = licence["status_entry"]
    assert isinstance(entry, dict)
    jwks = kit.client.get("/v1/presentations/jwks.json").json()
    token = kit.client.get(str(entry["status_list"]).removeprefix("http://testserver")).text
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    payload = jwt.decode(token, key, algorithms=["ES256"])
    encoded = payload["credentialSubject"]["encodedList"]
    assert encoded[0] == "u"
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    index = int(entry["index"])
    byte = bits[index * 2 // 8]
    return (byte >> (6 - (index * 2) % 8)) & 0b11


def test_suspend_reinstate_revoke_and_illegal_transitions(kit: LicenceKit) -> None:
    ident = str(kit.issue()["certificate_identifier"])
    suspended = _post(kit, ident, "suspend", {"reason": "整改期间暂停"}, 200)
    assert suspended["status"] == "suspended" and suspended["status_reason"] == "整改期间暂停"
    assert _offline_status(kit, suspended) == 1
    reinstated = _post(kit, ident, "reinstate", {}, 200)
    assert reinstated["status"] == "valid" and _offline_status(kit, reinstated) == 0
    assert _post(kit, ident, "reinstate", {}, 409)["code"] == "licence_transition_not_allowed"
    assert _post(kit, ident, "revoke", {}, 422)["code"] == "request_invalid"  # reason required
    revoked = _post(kit, ident, "revoke", {"reason": "以欺骗手段取得许可"}, 200)
    assert revoked["status"] == "revoked" and _offline_status(kit, revoked) == 2
    problem = _post(kit, ident, "reinstate", {}, 409)
    assert problem["code"] == "licence_transition_not_allowed" and problem["licence_status"] == "revoked"
    assert _post(kit, ident, "suspend", {"reason": "x"}, 409)["code"] == "licence_transition_not_allowed"


def test_renew_and_amend_create_linked_versions(kit: LicenceKit) -> None:
    body = kit.request("食品经营许可证")
    first = kit.issue(body)
    ident = str(first["certificate_identifier"])
    renewed = _post(kit, ident, "renew", {}, 201)
    assert str(renewed["certificate_identifier"]).split(".")[-2] == "002"
    assert renewed["supersedes"] == ident and renewed["certificate_validity_start"] == first["certificate_validity_end"]
    old = kit.client.get(f"/v1/licences/{ident}", headers=kit.issuer.headers).json()
    assert old["status"] == "superseded" and old["superseded_by"] == renewed["certificate_identifier"]
    assert _offline_status(kit, old) == 3
    assert _post(kit, ident, "renew", {}, 409)["code"] == "licence_transition_not_allowed"

    face = dict(body["face"])
    face["business_premises"] = "浙江省临江市滨江区更正路1号"
    amended = _post(kit, str(renewed["certificate_identifier"]), "amend", {"face": face, "reason": "经营场所更正"}, 201)
    assert str(amended["certificate_identifier"]).split(".")[-2] == "003"
    assert amended["face"]["business_premises"] == "浙江省临江市滨江区更正路1号"
    bad = {**face, "business_premises": 12}
    assert (
        _post(kit, str(amended["certificate_identifier"]), "amend", {"face": bad, "reason": "x"}, 422)["code"]
        == "licence_face_invalid"
    )
    # the amended version's file is sealed anew
    file = kit.client.get(f"/v1/licences/{amended['certificate_identifier']}/file", headers=kit.issuer.headers)
    assert kit.seals.verifier().verify(file.content).verdict == "TOTAL-PASSED"


def _present(kit: LicenceKit, holder: dict[str, str], ident: str, fields: list[str] | None) -> dict[str, object]:
    body = {} if fields is None else {"fields": fields}
    response = kit.client.post(f"/v1/me/licences/{ident}/presentations", json=body, headers=kit.holder_headers(holder))
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def _scan(kit: LicenceKit, url_or_token: str) -> dict[str, object]:
    path = url_or_token.removeprefix("http://testserver") if url_or_token.startswith("http") else f"/v/{url_or_token}"
    response = kit.client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_holder_shows_a_licence_by_qr_and_scans_are_audited(kit: LicenceKit) -> None:
    holder = kit.holder("营业执照")
    licence = kit.issue(kit.request("营业执照", holder=holder))
    ident = str(licence["certificate_identifier"])
    mine = kit.client.get("/v1/me/licences", headers=kit.holder_headers(holder)).json()
    assert [lic["certificate_identifier"] for lic in mine] == [ident]

    shown = _present(kit, holder, ident, ["name", "legal_representative"])
    assert str(shown["url"]).startswith("http://testserver/v/") and "<svg" in str(shown["qr_svg"])
    assert shown["fields"] == ["name", "legal_representative"]
    result = _scan(kit, str(shown["url"]))
    assert result["token_valid"] is True and result["status"] == "valid" and result["verdict"] == "valid"
    assert set(result["disclosed"]) == {"name", "legal_representative"}  # type: ignore[arg-type]
    html = kit.client.get(str(shown["url"]).removeprefix("http://testserver")).text
    assert "有效" in html and licence["face"]["legal_representative"] in html  # type: ignore[index]
    assert licence["face"]["registered_capital"] not in html  # type: ignore[index]

    # the issuer revokes: the same code now shows red with the reason
    _post(kit, ident, "revoke", {"reason": "吊销营业执照"}, 200)
    result = _scan(kit, str(shown["url"]))
    assert result["verdict"] == "revoked" and result["status_reason"] == "吊销营业执照"
    assert "已撤销" in kit.client.get(str(shown["url"]).removeprefix("http://testserver")).text

    log = kit.client.get("/v1/me/access-log", headers=kit.holder_headers(holder)).json()
    scans = [e for e in log if e["action"] == "licence.presentation.scanned"]
    assert len(scans) == 4 and all(e["certificate_identifier"] == ident for e in scans)
    timeline = kit.client.get("/v1/me/timeline", headers=kit.holder_headers(holder)).json()
    assert [e["event"] for e in timeline if e["event"] in {"issued", "revoked"}] == ["issued", "revoked"]


def test_presentation_refusals(kit: LicenceKit, runtime: Runtime) -> None:
    holder = kit.holder("营业执照")
    licence = kit.issue(kit.request("营业执照", holder=holder))
    ident = str(licence["certificate_identifier"])
    token = str(_present(kit, holder, ident, ["name"])["token"])

    # a changed field: the payload is re-encoded, the signature no longer matches
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["disclosed"]["name"]["value"] = "冒名顶替有限公司"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _scan(kit, f"{head}.{forged}.{sig}")["verdict"] == "not_genuine"

    # signed by a key the hub never published, and one re-using the hub's kid
    with runtime.session_scope() as session:
        real = keys.signing_key(session, runtime.master_keys, keys.PRESENTATION)
    stranger = SigningKey("stranger", "ES256", ec.generate_private_key(ec.SECP256R1()))
    impostor = SigningKey(real.kid, "ES256", ec.generate_private_key(ec.SECP256R1()))
    status = claims["status"]
    for key, code in ((stranger, "presentation_key_unknown"), (impostor, "presentation_signature_invalid")):
        fake = issue_presentation(
            key, issuer="http://testserver", licence=claims["lic"], disclosed=claims["disclosed"], status=status,
            ttl_seconds=60, now=utcnow(),
        )  # fmt: skip
        result = _scan(kit, fake.token)
        assert result["verdict"] == "not_genuine" and result["error_code"] == code
        assert result["disclosed"] == {} and result["certificate_type_name"] is None

    # expired: a genuine hub signature from ten minutes ago
    old = issue_presentation(
        real, issuer="http://testserver", licence=claims["lic"], disclosed=claims["disclosed"], status=status,
        ttl_seconds=60, now=utcnow() - timedelta(minutes=10),
    )  # fmt: skip
    result = _scan(kit, old.token)
    assert result["verdict"] == "code_expired" and result["token_valid"] is False and result["disclosed"] == {}
    assert "二维码已过期" in kit.client.get(f"/v/{old.token}").text

    # garbage and an unknown static id
    assert _scan(kit, "not-a-token")["verdict"] == "not_genuine"
    assert _scan(kit, "0" * 32)["verdict"] == "not_genuine"

    # someone else cannot present my licence; an unknown field is refused
    other = kit.holder("营业执照", serial=2)
    response = kit.client.post(f"/v1/me/licences/{ident}/presentations", json={}, headers=kit.holder_headers(other))
    assert response.status_code == 404
    response = kit.client.post(
        f"/v1/me/licences/{ident}/presentations", json={"fields": ["salary"]}, headers=kit.holder_headers(holder)
    )
    assert response.status_code == 422 and response.json()["code"] == "presentation_field_unknown"


def test_a_code_longer_than_the_bound_is_refused_before_any_check(kit: LicenceKit, runtime: Runtime) -> None:
    """The scan route reads its path segment itself (no FastAPI parameter solving): same bound, same 422."""
    committer = runtime.audit
    before = committer.entries
    response = kit.client.get("/v/" + "a" * (MAX_TOKEN + 1), headers={"Accept": "application/json"})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "request_invalid" and problem["detail"].startswith("path.token:")
    assert problem["errors"] == [
        {"loc": ["path", "token"], "msg": f"String should have at most {MAX_TOKEN} characters",
         "type": "string_too_long"},
    ]  # fmt: skip
    assert "a" * 64 not in problem["detail"] and committer.entries == before  # nothing echoed, nothing audited
    at_bound = _scan(kit, "a" * MAX_TOKEN)  # as long as allowed: checked, refused and audited like any code
    assert at_bound["verdict"] == "not_genuine" and at_bound["error_code"] == "presentation_malformed"
    assert committer.entries == before + 1
    token = kit.client.get("/openapi.json").json()["paths"]["/v/{token}"]["get"]["parameters"][0]
    assert token["name"] == "token" and token["in"] == "path" and token["schema"]["maxLength"] == MAX_TOKEN


def test_offline_verification_with_pyjwt_only(kit: LicenceKit) -> None:
    holder = kit.holder("营业执照")
    licence = kit.issue(kit.request("营业执照", holder=holder))
    default = _present(kit, holder, str(licence["certificate_identifier"]), None)
    assert "business_scope" not in default["fields"]  # type: ignore[operator]  # long texts only when chosen
    token = str(
        _present(kit, holder, str(licence["certificate_identifier"]), ["name", "legal_representative"])["token"]
    )
    jwks = kit.client.get("/v1/presentations/jwks.json").json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    claims = jwt.decode(token, key, algorithms=["ES256"], options={"require": ["exp", "iat", "jti"]})
    assert claims["lic"]["certificate_identifier"] == licence["certificate_identifier"]
    assert claims["exp"] - claims["iat"] <= 300
    assert licence["certificate_holder_code"] not in json.dumps(claims, ensure_ascii=False)  # not disclosed
    assert _offline_status(kit, licence) == 0
    _post(kit, str(licence["certificate_identifier"]), "revoke", {"reason": "测试"}, 200)
    assert _offline_status(kit, licence) == 2


def test_a_rotated_presentation_key_is_accepted_at_once(kit: LicenceKit, runtime: Runtime) -> None:
    holder = kit.holder("营业执照")
    licence = kit.issue(kit.request("营业执照", holder=holder))
    ident = str(licence["certificate_identifier"])
    before = str(_present(kit, holder, ident, ["name"])["url"])
    assert _scan(kit, before)["verdict"] == "valid"  # the key set is now cached in this process
    with runtime.session_scope() as session:
        keys.rotate_key(session, runtime.master_keys, keys.PRESENTATION)
    after = str(_present(kit, holder, ident, ["name"])["url"])
    assert (
        jwt.get_unverified_header(after.rsplit("/", 1)[1])["kid"]
        != jwt.get_unverified_header(before.rsplit("/", 1)[1])["kid"]
    )
    assert _scan(kit, after)["verdict"] == "valid"  # unknown kid: one fresh read of the keys
    assert _scan(kit, before)["verdict"] == "valid"  # the retired key stays published for the overlap
