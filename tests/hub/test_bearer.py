"""Access tokens at the API: the one scope dependency, expiry, audience, forgery and key rotation."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from factories import secret_client
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.clock import utcnow
from hub.identity import tokens
from hub.identity.errors import ClientAssertionInvalid, TokenInvalid
from hub.identity.models import ApiClient, Department
from hub.keys import service as keys
from hub.keys.models import HubKey
from hub.keys.service import SigningKey
from hub.runtime import Runtime


def get_token(client: TestClient, runtime: Runtime, scopes: str) -> tuple[str, ApiClient]:
    api_client, secret = secret_client(runtime, scopes)
    auth = base64.b64encode(f"{api_client.client_id}:{secret}".encode()).decode()
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {auth}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"], api_client


def departments(client: TestClient, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/v1/admin/departments", headers=headers)


def hub_signed(runtime: Runtime, api_client: ApiClient, **overrides: Any) -> str:
    with runtime.session_scope() as session:
        key = keys.signing_key(session, runtime.master_keys, keys.ACCESS_TOKEN)
    args: dict[str, Any] = {
        "issuer": runtime.settings.issuer,
        "audience": runtime.settings.api_audience,
        "client_id": api_client.client_id,
        "department_code": api_client.department_code,
        "scopes": ["admin"],
        "ttl_seconds": 600,
    }
    args.update(overrides)
    return tokens.issue_access_token(key, **args)[0]


def test_valid_token_with_scope_passes(client: TestClient, runtime: Runtime) -> None:
    token, _ = get_token(client, runtime, "admin")
    response = departments(client, token)
    assert response.status_code == 200, response.text


def test_whoami_needs_only_a_valid_token(client: TestClient, runtime: Runtime) -> None:
    token, api_client = get_token(client, runtime, "licence:read")
    body = client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    assert body["client_id"] == api_client.client_id
    assert body["department_code"] == api_client.department_code
    assert body["scopes"] == ["licence:read"]
    assert client.get("/v1/whoami").json()["code"] == "token_missing"


def test_missing_token(client: TestClient) -> None:
    response = departments(client, None)
    assert response.status_code == 401
    assert response.json()["code"] == "token_missing"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_missing_scope(client: TestClient, runtime: Runtime) -> None:
    token, _ = get_token(client, runtime, "licence:read")
    response = departments(client, token)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "scope_missing"
    assert body["required_scope"] == "admin"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_expired_token(client: TestClient, runtime: Runtime) -> None:
    _, api_client = get_token(client, runtime, "admin")
    token = hub_signed(runtime, api_client, now=int(time.time()) - 3600)
    response = departments(client, token)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_token_for_another_audience(client: TestClient, runtime: Runtime) -> None:
    _, api_client = get_token(client, runtime, "admin")
    token = hub_signed(runtime, api_client, audience="https://other-hub.example/v1")
    response = departments(client, token)
    assert response.status_code == 401
    assert response.json()["code"] == "token_audience_mismatch"


def test_token_from_another_issuer(client: TestClient, runtime: Runtime) -> None:
    _, api_client = get_token(client, runtime, "admin")
    token = hub_signed(runtime, api_client, issuer="https://other-hub.example")
    assert departments(client, token).json()["code"] == "token_invalid"


def test_forged_token_with_the_hubs_kid(client: TestClient, runtime: Runtime) -> None:
    real, api_client = get_token(client, runtime, "licence:read")
    kid = jwt.get_unverified_header(real)["kid"]
    forger = SigningKey(kid=kid, algorithm="ES256", private_key=ec.generate_private_key(ec.SECP256R1()))
    genuine = hub_signed(runtime, api_client)  # the same claims, signed by the hub
    forged = tokens.issue_access_token(
        forger,
        issuer=runtime.settings.issuer,
        audience=runtime.settings.api_audience,
        client_id=api_client.client_id,
        department_code=api_client.department_code,
        scopes=["admin"],
        ttl_seconds=600,
    )[0]
    assert departments(client, genuine).status_code == 200
    response = departments(client, forged)
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_tampered_payload_is_rejected(client: TestClient, runtime: Runtime) -> None:
    token, _ = get_token(client, runtime, "licence:read")
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["scope"] = "admin"
    import json

    new_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = departments(client, f"{header}.{new_payload}.{signature}")
    assert response.json()["code"] == "token_invalid"


def test_hs256_token_with_hub_public_key_is_rejected(client: TestClient, runtime: Runtime) -> None:
    token, _ = get_token(client, runtime, "licence:read")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "public-key-as-secret-" * 3, algorithm="HS256", headers={"typ": "at+jwt"})
    assert departments(client, forged).json()["code"] == "token_invalid"


def test_garbage_token(client: TestClient) -> None:
    assert departments(client, "not.a.jwt").json()["code"] == "token_invalid"


def test_disabled_client_and_department_lose_access_immediately(client: TestClient, runtime: Runtime) -> None:
    token, api_client = get_token(client, runtime, "admin")
    assert departments(client, token).status_code == 200
    with runtime.session_scope() as session:
        dept = session.get(Department, api_client.department_code)
        assert dept is not None
        dept.active = False
    response = departments(client, token)
    assert response.status_code == 401
    assert response.json()["code"] == "client_disabled"


def test_key_rotation_keeps_unexpired_tokens_valid(client: TestClient, runtime: Runtime) -> None:
    old_token, _ = get_token(client, runtime, "admin")
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    with runtime.session_scope() as session:
        new_kid = keys.rotate_key(session, runtime.master_keys, keys.ACCESS_TOKEN).kid
    new_token, _ = get_token(client, runtime, "admin")
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid != old_kid
    published = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= published
    assert departments(client, old_token).status_code == 200
    assert departments(client, new_token).status_code == 200


def test_retired_key_past_overlap_is_no_longer_trusted(client: TestClient, runtime: Runtime) -> None:
    old_token, _ = get_token(client, runtime, "admin")
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    with runtime.session_scope() as session:
        keys.rotate_key(session, runtime.master_keys, keys.ACCESS_TOKEN)
        row = session.get(HubKey, old_kid)
        assert row is not None
        row.retired_at = utcnow() - timedelta(seconds=runtime.settings.key_overlap_seconds + 1)
    runtime.key_cache = type(runtime.key_cache)()  # another process, with nothing cached
    assert old_kid not in {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert departments(client, old_token).json()["code"] == "token_invalid"


def test_a_remembered_token_is_only_that_exact_token_and_still_expires(client: TestClient, runtime: Runtime) -> None:
    token, api_client = get_token(client, runtime, "licence:read")
    assert departments(client, token).json()["code"] == "scope_missing"  # verified once, now remembered
    assert runtime.key_cache.verified(token) is not None
    header, payload, _ = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False}) | {"scope": "admin"}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert departments(client, f"{header}.{forged}.{token.split('.')[2]}").json()["code"] == "token_invalid"
    assert departments(client, f"{header}.{payload}.{'A' * 86}").json()["code"] == "token_invalid"

    # exp sits 3 s into the leeway: whole seconds, so it holds for 2-3 s on a slow machine, then lapses.
    issued = int(time.time()) - tokens.CLOCK_SKEW_SECONDS
    short = hub_signed(runtime, api_client, ttl_seconds=3, now=issued)
    assert departments(client, short).status_code == 200  # admin scope, still inside the leeway
    time.sleep(max(0.0, issued + 3 + tokens.CLOCK_SKEW_SECONDS - time.time()) + 0.05)
    assert departments(client, short).json()["code"] == "token_expired"  # the remembered verdict is not reused


def test_the_verdict_is_forgotten_after_the_key_cache_ttl(runtime: Runtime) -> None:
    claims = tokens.AccessClaims(
        client_id="c", department_code="d", scopes=frozenset({"admin"}), jti="j", expires_at=int(time.time()) + 600
    )
    cache = type(runtime.key_cache)(ttl_seconds=0.05)
    cache.remember("token", claims)
    assert cache.verified("token") == claims
    assert cache.verified("other") is None
    time.sleep(0.06)
    assert cache.verified("token") is None  # re-verified, so a retired key stops working within the ttl


# ---- anything the token parsers may be handed ------------------------------------------------------------------------

_P256 = ec.generate_private_key(ec.SECP256R1())
_P256_JWK = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(_P256.public_key())) | {"kid": "k1"}
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_headers = st.dictionaries(
    st.sampled_from(["alg", "typ", "kid", "crit", "b64", "jwk"]),
    st.sampled_from(["ES256", "none", "HS256", "RS256", tokens.ACCESS_TOKEN_TYPE, "JWT", "k1"]) | _json,
)
# About half name the hub's algorithm, type and a known key, so the signature check is reached too.
_headers = _headers | _headers.map(
    lambda extra: {**extra, "alg": "ES256", "typ": tokens.ACCESS_TOKEN_TYPE, "kid": "k1"}
)


def _segment(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


_jwt_shaped = st.builds(
    lambda header, payload, signature: f"{_segment(header)}.{_segment(payload)}.{_segment(signature)[:86]}",
    _headers | _json,
    _json | st.dictionaries(st.sampled_from(["iss", "sub", "aud", "exp", "iat", "jti", "scope", "dept"]), _json),
    st.text(max_size=70),
)
_any_text = st.text() | st.tuples(st.text(max_size=20), st.characters(categories=["Cs"]), st.text(max_size=20)).map(
    "".join
)  # a lone surrogate: only a JSON body could carry one, but the parser must not care where text came from


@settings(max_examples=300, deadline=None)
@given(_any_text | _jwt_shaped)
def test_anything_unsigned_is_refused_as_an_invalid_token(token: str) -> None:
    with pytest.raises(TokenInvalid):
        tokens.decode_access_token(
            token,
            resolve_key={"k1": _P256.public_key()}.get,
            issuer="http://testserver",
            audience="http://testserver/v1",
        )
    with pytest.raises(ClientAssertionInvalid):
        tokens.verify_client_assertion(
            token, client_id="c", jwks={"keys": [_P256_JWK]}, audiences=["x"], max_lifetime_seconds=300
        )


@settings(max_examples=300, deadline=None)
@given(_any_text | _jwt_shaped)
def test_the_header_is_read_as_pyjwt_reads_it(token: str) -> None:
    """hub.identity.tokens reads the header segment alone; whatever PyJWT can read, it reads the same."""
    try:
        theirs: dict[str, Any] | None = jwt.get_unverified_header(token)
    except Exception:  # noqa: BLE001 - PyJWT refuses it one way or another
        theirs = None
    try:
        mine: dict[str, Any] | None = tokens.unverified_header(token)
    except jwt.DecodeError:
        mine = None
    if theirs is not None:
        assert mine == theirs


_json_object = st.dictionaries(st.text(max_size=8), _json, max_size=4)


@settings(max_examples=100, deadline=None)
@given(_json_object, _json_object)
def test_header_and_claims_of_signed_tokens_read_back(extra: dict[str, Any], claims: dict[str, Any]) -> None:
    token = jwt.encode(claims, _P256, algorithm="ES256", headers={**extra, "kid": "k1"})
    assert tokens.unverified_header(token) == jwt.get_unverified_header(token)
    assert tokens.unverified_claims(token) == jwt.decode(token, options={"verify_signature": False})


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dots",
        "eyJhbGciOiJFUzI1NiJ9",  # a header alone
        "eyJhbGciOiJFUzI1NiJ9.e30",  # two segments
        "eyJhbGciOiJFUzI1NiJ9=.e30.c2ln",  # padding
        "eyJhbGci+iJFUzI1NiJ9.e30.c2ln",  # base64, not base64url
        "a.e30.c2ln",  # a length no base64 has
        "WzFd.e30.c2ln",  # [1]: JSON, not an object
        "bm90IGpzb24.e30.c2ln",  # not JSON
        "ｅｙＪ.e30.c2ln",  # full-width letters
        "e" * 20_000 + ".e30.c2ln",  # far longer than any header
    ],
)
def test_malformed_headers_are_decode_errors(token: str) -> None:
    with pytest.raises(jwt.DecodeError):
        tokens.unverified_header(token)


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_segment_like = st.text(alphabet=_B64URL + "=+/!. \x00é", max_size=40).map(str.encode) | st.binary(max_size=24).map(
    lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=") + b"=" * (len(raw) % 3 and 3 - len(raw) % 3)
)


def _segment_outcome(read: Any, segment: bytes) -> bytes | str:
    try:
        return bytes(read(segment, "payload"))
    except jwt.DecodeError as exc:
        return f"refused: {exc}"


@given(_segment_like | st.binary(max_size=40))
def test_segments_are_read_exactly_as_pyjwt_reads_them(segment: bytes) -> None:
    """The faster segment reader behind every JWT check answers as PyJWT's own does, refusals included."""
    assert _segment_outcome(tokens._JWS._decode_base64url_segment, segment) == _segment_outcome(
        jwt.PyJWS._decode_base64url_segment,
        segment,
    )


@pytest.mark.parametrize(
    "segment", [b"!!!!", b"e30=", b"e30", b"e3=", b"e30==", b"e===", b"a", b"ab==", b"abc=", b"e31"]
)
def test_known_segment_edge_cases_match_pyjwt(segment: bytes) -> None:
    """GHSA-hxm8-2xgr-2p9m junk, padding on a whole quantum only, non-canonical trailing bits."""
    assert _segment_outcome(tokens._JWS._decode_base64url_segment, segment) == _segment_outcome(
        jwt.PyJWS._decode_base64url_segment,
        segment,
    )


def test_a_tampered_token_fails_through_the_faster_reader() -> None:
    """decode_jwt still verifies the signature: a payload changed by one character is refused."""
    token = jwt.encode({"sub": "x"}, _P256, algorithm="ES256")
    head, payload, signature = token.split(".")
    forged = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    with pytest.raises(jwt.PyJWTError):
        tokens.decode_jwt(f"{head}.{forged}.{signature}", _P256.public_key(), algorithms=["ES256"])
    assert tokens.decode_jwt(token, _P256.public_key(), algorithms=["ES256"]) == {"sub": "x"}


_ES256_REQUIRED = ["iss", "exp", "jti"]
_ISSUER = "http://testserver"
_OTHER_P256 = ec.generate_private_key(ec.SECP256R1())
_claim_value = st.one_of(
    st.none(), st.integers(), st.text(max_size=6), st.sampled_from([_ISSUER, ""]), st.lists(st.text(max_size=3))
)
_es256_claims = st.dictionaries(st.sampled_from(["iss", "exp", "jti", "sub", "aud", "x"]), _claim_value, max_size=6)
_es256_header = st.fixed_dictionaries({}, optional={"kid": st.text(max_size=4), "typ": st.text(max_size=8)})


def _outcome(decode: Any, token: str) -> Any:
    try:
        return decode(token)
    except jwt.PyJWTError as exc:
        return type(exc)


def _decoders(key: Any) -> tuple[Any, Any]:
    def pyjwt(token: str) -> Any:
        options = {"require": _ES256_REQUIRED, "verify_exp": False, "verify_nbf": False, "verify_iat": False}
        return tokens.decode_jwt(token, key, algorithms=["ES256"], issuer=_ISSUER, options=options)  # type: ignore[arg-type]

    def ours(token: str) -> Any:
        return tokens.decode_es256(token, key, issuer=_ISSUER, require=_ES256_REQUIRED)

    return pyjwt, ours


@settings(max_examples=300, deadline=None)
@given(
    claims=_es256_claims,
    header=_es256_header,
    signer=st.sampled_from(["ours", "other", "hs256"]),
    mutation=st.one_of(st.none(), st.tuples(st.integers(0, 10_000), st.sampled_from("AB-_.=+x"))),
)
def test_the_es256_decoder_agrees_with_pyjwt(
    claims: dict[str, Any], header: dict[str, Any], signer: str, mutation: tuple[int, str] | None
) -> None:
    """decode_es256 (the scan's hot path) accepts exactly what decode_jwt accepts, and refuses with the same error."""
    payload = json.dumps(claims).encode()  # PyJWT's encode refuses some of these claims (a non-string iss)
    if signer == "hs256":
        token = jwt.api_jws.encode(payload, "a shared secret of 32 bytes or more", algorithm="HS256", headers=header)
    else:
        key = _P256 if signer == "ours" else _OTHER_P256
        token = jwt.api_jws.encode(payload, key, algorithm="ES256", headers=header)
    if mutation is not None:  # one character replaced: a forged signature, a broken segment, a changed claim
        at, char = mutation[0] % len(token), mutation[1]
        token = token[:at] + char + token[at + 1 :]
    pyjwt, ours = _decoders(_P256.public_key())
    assert _outcome(ours, token) == _outcome(pyjwt, token)


def test_the_es256_decoder_accepts_a_good_token_and_refuses_a_forged_one() -> None:
    """The property above holds on both sides of the line: a real acceptance and a real refusal."""
    claims = {"iss": _ISSUER, "exp": 1, "jti": "j"}
    token = jwt.encode(claims, _P256, algorithm="ES256", headers={"kid": "k1"})
    pyjwt, ours = _decoders(_P256.public_key())
    assert ours(token) == pyjwt(token) == claims
    forged = jwt.encode(claims, _OTHER_P256, algorithm="ES256", headers={"kid": "k1"})
    with pytest.raises(jwt.InvalidSignatureError):
        ours(forged)
    head, _, signature = token.split(".")
    changed = jwt.utils.base64url_encode(json.dumps(claims | {"jti": "k"}).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):  # the claims changed after signing
        ours(f"{head}.{changed}.{signature}")
