"""QR presentation tokens (扫码亮证): round trip, every refusal, offline checks with PyJWT alone, the QR SVG."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hub.keys.service import SigningKey
from licences import statuslist
from licences.errors import (
    PresentationExpired,
    PresentationInvalid,
    PresentationKeyUnknown,
    PresentationMalformed,
    PresentationSignatureInvalid,
    PresentationTooLarge,
)
from licences.presentation import (
    LICENCE_FIELDS,
    MAX_TTL_SECONDS,
    TOKEN_TYPE,
    issue_presentation,
    presentation_url,
    qr_svg,
    verify_presentation,
)

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
HUB = "https://hub.example"
LIST_URL = f"{HUB}/v1/status-lists/0"
HOLDER_ID = "110101199003070079"
METADATA: dict[str, Any] = {  # DESIGN.md §3 metadata as licences.issuance.metadata returns it
    "certificate_identifier": "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F",
    "certificate_name": "营业执照",
    "certificate_number": "2430599",
    "certificate_type_code": "11100000000013338W032",
    "certificate_type_name": "营业执照",
    "certificate_issuing_authority_name": "临江市市场监督管理局",
    "certificate_issuing_authority_code": "11220000013544541J",
    "certificate_validity_start": date(2024, 1, 1),
    "certificate_validity_end": None,
    "certificate_holder_name": "张三",
    "certificate_holder_code": HOLDER_ID,
    "certificate_holder_type": "111",
    "status": "valid",
}
DISCLOSED = {
    "name": {"label": "名称", "value": "临江市示例科技有限公司"},
    "capital": {"label": "注册资本", "value": "100万元"},
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(kid: str = "pres-1", curve: ec.EllipticCurve | None = None) -> tuple[SigningKey, dict[str, Any]]:
    private = ec.generate_private_key(curve or ec.SECP256R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, "ES256", private), {**jwk, "kid": kid, "alg": "ES256", "use": "sig"}


@pytest.fixture
def hub_key() -> tuple[SigningKey, dict[str, Any]]:
    key, jwk = signing_key()
    return key, {"keys": [jwk]}


def present(key: SigningKey, *, now: datetime = NOW, **changes: Any) -> str:
    values: dict[str, Any] = {
        "issuer": HUB,
        "licence": METADATA,
        "disclosed": DISCLOSED,
        "status": statuslist.credential_status(LIST_URL, 7),
        "ttl_seconds": 120,
        "now": now,
    }
    return issue_presentation(key, **(values | changes)).token


def payload_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(unb64url(token.split(".")[1]))
    return claims


def resign(header: dict[str, Any], claims: dict[str, Any], key: SigningKey) -> str:
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers=header)


# --- round trip -------------------------------------------------------------------------------------


def test_round_trip(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, jwks = hub_key
    shown = issue_presentation(
        key,
        issuer=HUB,
        licence=METADATA,
        disclosed=DISCLOSED,
        status=statuslist.credential_status(LIST_URL, 7),
        ttl_seconds=120,
        now=NOW,
        jti="fixed-jti",
    )
    assert (shown.jti, shown.expires_at) == ("fixed-jti", NOW + timedelta(seconds=120))
    assert jwt.get_unverified_header(shown.token) == {
        "alg": "ES256",
        "kid": "pres-1",
        "typ": "licence-presentation+jwt",
    }
    claims = verify_presentation(shown.token, jwks, now=NOW + timedelta(seconds=60), issuer=HUB)
    assert (claims.issuer, claims.jti, claims.kid) == (HUB, "fixed-jti", "pres-1")
    assert (claims.issued_at, claims.expires_at) == (NOW, NOW + timedelta(seconds=120))
    assert claims.disclosed == DISCLOSED
    assert claims.status == statuslist.credential_status(LIST_URL, 7)
    assert claims.licence["certificate_validity_start"] == "2024-01-01"
    assert claims.licence["certificate_validity_end"] is None
    assert set(payload_of(shown.token)) == {"iss", "iat", "nbf", "exp", "jti", "lic", "disclosed", "status"}


def test_only_verifier_metadata_enters_the_token(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    """No holder name, code or type unless the holder discloses a face field carrying them."""
    key, _ = hub_key
    token = present(key)
    assert set(payload_of(token)["lic"]) == set(LICENCE_FIELDS)
    assert HOLDER_ID not in unb64url(token.split(".")[1]).decode()
    assert "张三" not in unb64url(token.split(".")[1]).decode()
    chosen = present(key, disclosed={"legal_rep_id": {"label": "法定代表人身份证号", "value": HOLDER_ID}})
    assert HOLDER_ID in unb64url(chosen.split(".")[1]).decode()


def test_the_payload_is_utf8_not_escaped(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, _ = hub_key
    assert "临江市示例科技有限公司".encode() in unb64url(present(key).split(".")[1])


def test_default_jti_is_random_128_bits(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, _ = hub_key
    jtis = {payload_of(present(key))["jti"] for _ in range(5)}
    assert len(jtis) == 5
    assert all(len(unb64url(jti)) == 16 for jti in jtis)


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
        st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=40) | st.integers() | st.none()),
        max_size=5,
    )
)
def test_any_disclosure_round_trips(fields: dict[str, tuple[str, Any]]) -> None:
    key, jwk = signing_key()
    disclosed = {name: {"label": label, "value": value} for name, (label, value) in fields.items()}
    claims = verify_presentation(present(key, disclosed=disclosed), {"keys": [jwk]}, now=NOW)
    assert claims.disclosed == disclosed


# --- refusals ---------------------------------------------------------------------------------------


def test_expired_code_is_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, jwks = hub_key
    token = present(key, ttl_seconds=60)
    verify_presentation(token, jwks, now=NOW + timedelta(seconds=65))  # within the 5 s leeway
    with pytest.raises(PresentationExpired):
        verify_presentation(token, jwks, now=NOW + timedelta(seconds=66))
    with pytest.raises(PresentationExpired):
        verify_presentation(token, jwks, now=NOW + timedelta(days=1), leeway_seconds=0)


def test_code_from_the_future_is_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, jwks = hub_key
    with pytest.raises(PresentationMalformed, match="not valid yet"):
        verify_presentation(present(key), jwks, now=NOW - timedelta(seconds=30))


def test_changed_field_breaks_the_signature(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, jwks = hub_key
    head, body, sig = present(key).split(".")
    claims = json.loads(unb64url(body))
    claims["disclosed"]["name"]["value"] = "冒名顶替有限公司"
    forged = f"{head}.{b64url(json.dumps(claims, ensure_ascii=False).encode())}.{sig}"
    with pytest.raises(PresentationSignatureInvalid):
        verify_presentation(forged, jwks, now=NOW)
    claims = json.loads(unb64url(body))
    claims["exp"] += 3600  # a forged code stays "forged", never "expired" or valid
    forged = f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"
    with pytest.raises(PresentationSignatureInvalid):
        verify_presentation(forged, jwks, now=NOW + timedelta(hours=2))


def test_flipped_signature_byte_is_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, jwks = hub_key
    head, body, sig = present(key).split(".")
    raw = bytearray(unb64url(sig))
    raw[5] ^= 0x01
    with pytest.raises(PresentationSignatureInvalid):
        verify_presentation(f"{head}.{body}.{b64url(bytes(raw))}", jwks, now=NOW)


def test_unknown_kid_is_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    _, jwks = hub_key
    stranger, _ = signing_key("stranger")
    with pytest.raises(PresentationKeyUnknown, match="stranger"):
        verify_presentation(present(stranger), jwks, now=NOW)


def test_foreign_key_reusing_our_kid_is_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    _, jwks = hub_key
    impostor, _ = signing_key("pres-1")
    with pytest.raises(PresentationSignatureInvalid):
        verify_presentation(present(impostor), jwks, now=NOW)


def test_a_published_key_of_another_type_is_never_used(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    """A JWKS entry under the token's kid that is not P-256 (here P-384) cannot verify an ES256 token."""
    key, _ = hub_key
    _, p384 = signing_key("pres-1", ec.SECP384R1())
    with pytest.raises(PresentationKeyUnknown):
        verify_presentation(present(key), {"keys": [p384]}, now=NOW)


def test_alg_none_is_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, jwks = hub_key
    header = {"alg": "none", "kid": "pres-1", "typ": "licence-presentation+jwt"}
    unsigned = f"{b64url(json.dumps(header).encode())}.{present(key).split('.')[1]}."
    with pytest.raises(PresentationMalformed, match="ES256"):
        verify_presentation(unsigned, jwks, now=NOW)


def test_hs256_keyed_with_the_public_key_is_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    """RFC 8725 §2.1: an HMAC over the token using the published public key's PEM as the secret."""
    key, jwks = hub_key
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": "pres-1", "typ": "licence-presentation+jwt"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{present(key).split('.')[1]}"
    forged = f"{signing_input}.{b64url(hmac.digest(pem, signing_input.encode(), hashlib.sha256))}"
    with pytest.raises(PresentationMalformed, match="ES256"):
        verify_presentation(forged, jwks, now=NOW)
    with pytest.raises(jwt.InvalidAlgorithmError):  # PyJWT alone, with ES256 fixed, refuses it as well
        jwt.decode(forged, jwt.PyJWK(jwks["keys"][0]).key, algorithms=["ES256"])


def test_other_token_types_are_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    """Same key, right claims, wrong ``typ`` (RFC 8725 §3.11): a status list or access token is no code."""
    key, jwks = hub_key
    claims = payload_of(present(key))
    for typ in ("vc+jwt", "at+jwt", "JWT", None):
        header = {"kid": "pres-1"} | ({"typ": typ} if typ else {})
        with pytest.raises(PresentationMalformed):
            verify_presentation(resign(header, claims, key), jwks, now=NOW)


def test_wrong_issuer_is_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, jwks = hub_key
    with pytest.raises(PresentationMalformed, match="another hub"):
        verify_presentation(present(key), jwks, now=NOW, issuer="https://elsewhere.example")


def test_signed_but_ill_formed_claims_are_refused(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, jwks = hub_key
    header = {"kid": "pres-1", "typ": "licence-presentation+jwt"}
    good = payload_of(present(key))
    bad_claims = [
        {k: v for k, v in good.items() if k != "status"},  # a required claim missing
        good | {"exp": good["iat"] + MAX_TTL_SECONDS + 1},  # longer than five minutes
        good | {"nbf": str(good["nbf"])},
        good | {"lic": {"certificate_type_name": "营业执照"}},
        good | {"disclosed": {"name": "临江市示例科技有限公司"}},  # value without its label
        good | {"status": {"type": "StatusList2021Entry"}},
        good | {"status": {**good["status"], "statusListIndex": "-1"}},
    ]
    for claims in bad_claims:
        with pytest.raises(PresentationMalformed):
            verify_presentation(resign(header, claims, key), jwks, now=NOW)
    with pytest.raises(PresentationMalformed, match="no signing key"):
        verify_presentation(resign({"typ": "licence-presentation+jwt"}, good, key), jwks, now=NOW)


@pytest.mark.parametrize("garbage", ["", "a.b", "not a token at all", "e30.e30.", "a" * 5000])
def test_garbage_is_malformed(hub_key: tuple[SigningKey, dict[str, Any]], garbage: str) -> None:
    _, jwks = hub_key
    with pytest.raises(PresentationMalformed):
        verify_presentation(garbage, jwks, now=NOW)


# --- anything a verifier may be handed --------------------------------------------------------------

_KEY, _JWK = signing_key("pres-any")
_JWKS = {"keys": [_JWK]}
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_header_values = st.sampled_from(["ES256", "none", "HS256", "EdDSA", TOKEN_TYPE, "JWT", "pres-any", False]) | _json
_headers = st.dictionaries(st.sampled_from(["alg", "typ", "kid", "crit", "b64", "cty", "jku"]), _header_values)
# About half of them name our algorithm, type and key, so the signature check is reached too.
_headers = _headers | _headers.map(lambda extra: {**extra, "alg": "ES256", "typ": TOKEN_TYPE, "kid": "pres-any"})


def _segment(value: Any) -> str:
    return b64url(json.dumps(value).encode())


_jws_shaped = st.builds(
    lambda header, payload, signature, cut: ".".join([_segment(header), _segment(payload), b64url(signature)])[cut:],
    _headers | _json,
    _json | st.dictionaries(st.sampled_from(["iss", "iat", "nbf", "exp", "jti", "lic", "disclosed", "status"]), _json),
    st.binary(max_size=72),
    st.sampled_from([0, 0, 0, 1, 5]),
)
_any_text = st.text(st.characters() | st.sampled_from([".", "-", "_", "="])) | st.tuples(
    st.text(max_size=20), st.characters(categories=["Cs"]), st.text(max_size=20)
).map("".join)  # a lone surrogate, as json.loads lets through from "\ud800"


@settings(max_examples=300, deadline=None)
@given(_any_text | _jws_shaped)
def test_anything_unsigned_is_refused_with_a_presentation_error(token: str) -> None:
    """Never a crash, never accepted."""
    with pytest.raises(PresentationInvalid):
        verify_presentation(token, _JWKS, now=NOW)


_times = st.integers(int(NOW.timestamp()) - 400, int(NOW.timestamp()) + 400) | _json
_GOOD_CLAIMS = payload_of(present(_KEY))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(_GOOD_CLAIMS)),
        st.none() | _times | _json | st.sampled_from([{}, {"certificate_identifier": "x"}, {"a": {"label": "l"}}]),
        max_size=4,
    ),
    st.sets(st.sampled_from(sorted(_GOOD_CLAIMS)), max_size=2),
)
def test_claims_the_hub_signed_are_accepted_whole_or_refused_cleanly(
    changed: dict[str, Any], dropped: set[str]
) -> None:
    """Signed by our key, yet any claim may be off (a verifier page must never crash on a shape)."""
    claims = {name: value for name, value in (_GOOD_CLAIMS | changed).items() if name not in dropped}
    token = jwt.api_jws.encode(json.dumps(claims).encode(), _KEY.private_key, algorithm="ES256",
                               headers={"typ": TOKEN_TYPE, "kid": "pres-any"})  # fmt: skip
    try:
        verified = verify_presentation(token, _JWKS, now=NOW)
    except PresentationInvalid:
        return
    assert (verified.jti, verified.licence, verified.disclosed) == (claims["jti"], claims["lic"], claims["disclosed"])


def test_every_refusal_is_a_presentation_invalid_with_a_stable_code() -> None:
    expected = {
        PresentationMalformed: ("presentation_malformed", 400),
        PresentationKeyUnknown: ("presentation_key_unknown", 401),
        PresentationSignatureInvalid: ("presentation_signature_invalid", 401),
        PresentationExpired: ("presentation_expired", 401),
    }
    for error, (code, status) in expected.items():
        assert issubclass(error, PresentationInvalid)
        assert (error.code, error.status) == (code, status)
        assert error().problem()["code"] == code


def test_issue_refuses_what_a_verifier_would_refuse(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    key, _ = hub_key
    for ttl in (0, MAX_TTL_SECONDS + 1, -5):
        with pytest.raises(ValueError, match="between 1 and 300"):
            present(key, ttl_seconds=ttl)
    present(key, ttl_seconds=MAX_TTL_SECONDS)
    with pytest.raises(ValueError, match="timezone-aware"):
        present(key, now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="certificate_identifier"):
        present(key, licence={"certificate_type_name": "营业执照"})
    with pytest.raises(ValueError, match="label"):
        present(key, disclosed={"name": "临江市示例科技有限公司"})
    with pytest.raises(ValueError, match="BitstringStatusListEntry"):
        present(key, status={"statusListIndex": "7"})
    with pytest.raises(ValueError, match="ES256"):
        present(SigningKey("k", "ES384", key.private_key))


# --- offline verification ---------------------------------------------------------------------------


def test_offline_verification_with_pyjwt_only() -> None:
    """docs/offline-verification.md: the JWKS and the status list JWT, PyJWT and the standard library."""
    presentation_key, presentation_jwk = signing_key("pres-1")
    list_key, list_jwk = signing_key("list-1")
    jwks = {"keys": [presentation_jwk, list_jwk]}  # GET /v1/presentations/jwks.json publishes both
    now = datetime.now(UTC)  # PyJWT checks exp and iat against the real clock here
    status_list = statuslist.sign_status_list(
        statuslist.status_list_credential(
            list_url=LIST_URL,
            issuer=HUB,
            entries={7: statuslist.STATUS_VALUES["revoked"], 8: statuslist.STATUS_VALUES["suspended"]},
            valid_from=now,
            valid_until=now + timedelta(hours=24),
        ),
        list_key,
    )
    token = present(presentation_key, now=now)

    def verify(jws: str) -> dict[str, Any]:
        kid = jwt.get_unverified_header(jws)["kid"]
        key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
        claims: dict[str, Any] = jwt.decode(jws, key, algorithms=["ES256"])
        return claims

    claims = verify(token)
    assert claims["lic"]["certificate_validity_end"] is None  # no end: never expires by date
    entry = claims["status"]
    assert entry["statusListCredential"] == LIST_URL
    listing = verify(status_list)  # what GET {statusListCredential} returned
    encoded = listing["credentialSubject"]["encodedList"]
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    index, size = int(entry["statusListIndex"]), entry["statusSize"]
    value = (bits[index * size // 8] >> (8 - size - (index * size) % 8)) & ((1 << size) - 1)
    messages = {int(m["status"], 16): m["message"] for m in listing["credentialSubject"]["statusMessage"]}
    assert messages[value] == "revoked"
    # and the hub's own reader agrees
    assert statuslist.read_entry(statuslist.verify_status_list(status_list, jwks), entry) == 2


# --- QR ---------------------------------------------------------------------------------------------


def test_presentation_url() -> None:
    assert presentation_url("https://hub.example/", "a.b.c") == "https://hub.example/v/a.b.c"
    assert presentation_url("https://hub.example", "a.b.c") == "https://hub.example/v/a.b.c"


def svg_modules(svg: str) -> list[list[int]]:
    """Dark modules of a segno SVG path (``M x y``, ``m dx dy`` moves, ``h n`` runs at y + 0.5)."""
    root = ET.fromstring(svg)  # noqa: S314 - our own segno output
    width = int(root.attrib["viewBox"].split()[2])
    grid = [[0] * width for _ in range(width)]
    x = y = 0.0
    path = root.find("path")
    assert path is not None
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path.attrib["d"]):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            for column in range(int(x), int(x + float(a))):
                grid[int(y)][column] = 1
            x += float(a)
    return grid


def test_qr_svg_is_inline_titled_240px_and_scans_back(hub_key: tuple[SigningKey, dict[str, Any]]) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    key, _ = hub_key
    url = presentation_url(HUB, present(key))
    svg = qr_svg(url)
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg
    root = ET.fromstring(svg)  # noqa: S314 - our own segno output
    assert (root.attrib["width"], root.attrib["height"], root.attrib["role"]) == ("240", "240", "img")
    title = root.find("title")
    assert title is not None
    assert title.text
    assert "扫码" in title.text
    grid = svg_modules(svg)
    assert not any(grid[0] + grid[3] + grid[-1]) and not any(any(row[:4] + row[-4:]) for row in grid)  # quiet zone
    image = Image.new("L", (len(grid) * 4, len(grid) * 4), 255)
    for row, cells in enumerate(grid):
        for column, dark in enumerate(cells):
            if dark:
                image.paste(0, (column * 4, row * 4, column * 4 + 4, row * 4 + 4))
    results = zxingcpp.read_barcodes(image)
    assert [r.text for r in results if r.format == zxingcpp.BarcodeFormat.QRCode] == [url]
    assert results[0].ec_level == "M"


def test_qr_svg_refuses_what_no_qr_code_holds() -> None:
    with pytest.raises(PresentationTooLarge):
        qr_svg(f"{HUB}/v/{'x' * 3000}")
