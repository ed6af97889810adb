"""The token endpoint: client_secret_basic and private_key_jwt, with every way a request can be wrong."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from factories import ec_key, jwt_client, secret_client
from fastapi.testclient import TestClient

from hub.identity.service import CLIENT_ASSERTION_TYPE
from hub.runtime import Runtime

TOKEN_URL = "http://testserver/oauth/token"


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def assertion(private: Any, kid: str | None, client_id: str, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(12),
    }
    claims.update(overrides)
    headers = {"kid": kid} if kid else {}
    algorithm = "EdDSA" if isinstance(private, ed25519.Ed25519PrivateKey) else "ES256"
    return jwt.encode(claims, private, algorithm=algorithm, headers=headers)


def post_assertion(client: TestClient, token: str, **extra: str) -> Any:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": token,
    }
    data.update(extra)
    return client.post("/oauth/token", data=data)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


# --------------------------------------------------------------------------- client_secret_basic


def test_secret_basic_issues_es256_token_with_design_claims(client: TestClient, runtime: Runtime) -> None:
    api_client, secret = secret_client(runtime, "licence:issue licence:read")
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(api_client.client_id, secret)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "licence:issue licence:read"
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "ES256"
    assert header["typ"] == "at+jwt"
    jwks = client.get("/.well-known/jwks.json").json()
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"])).key
    claims = jwt.decode(body["access_token"], key, algorithms=["ES256"], audience="http://testserver/v1")
    assert {"iss", "sub", "aud", "exp", "iat", "jti", "scope", "dept"} <= claims.keys()
    assert claims["sub"] == api_client.client_id
    assert claims["dept"] == api_client.department_code
    assert claims["exp"] - claims["iat"] == runtime.settings.access_token_ttl_seconds


def test_requested_scope_is_narrowed(client: TestClient, runtime: Runtime) -> None:
    api_client, secret = secret_client(runtime, "licence:issue licence:read")
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "licence:read"},
        headers=basic(api_client.client_id, secret),
    )
    assert response.json()["scope"] == "licence:read"


def test_scope_beyond_client_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, secret = secret_client(runtime, "licence:read")
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "licence:read admin"},
        headers=basic(api_client.client_id, secret),
    )
    body = assert_problem(response, 400, "scope_not_allowed")
    assert body["error"] == "invalid_scope"


def test_wrong_secret_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, _ = secret_client(runtime, "licence:read")
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(api_client.client_id, "nope")
    )
    body = assert_problem(response, 401, "client_authentication_failed")
    assert body["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_unknown_client_gets_the_same_answer_as_a_wrong_secret(client: TestClient) -> None:
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("ghost", "x"))
    body = assert_problem(response, 401, "client_authentication_failed")
    assert body["detail"] == "unknown client or wrong secret"


def test_secret_is_stored_hashed_with_argon2id(runtime: Runtime) -> None:
    api_client, secret = secret_client(runtime, "licence:read")
    assert api_client.secret_hash is not None
    assert api_client.secret_hash.startswith("$argon2id$")
    assert secret not in api_client.secret_hash


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"grant_type": "password"}, "grant_type_unsupported"),
        ({}, "grant_type_unsupported"),
    ],
)
def test_unsupported_grants(client: TestClient, runtime: Runtime, data: dict[str, str], code: str) -> None:
    api_client, secret = secret_client(runtime, "licence:read")
    assert_problem(client.post("/oauth/token", data=data, headers=basic(api_client.client_id, secret)), 400, code)


def test_no_client_authentication_is_refused(client: TestClient) -> None:
    assert_problem(
        client.post("/oauth/token", data={"grant_type": "client_credentials"}), 401, "client_authentication_failed"
    )


def test_malformed_basic_header_is_refused(client: TestClient) -> None:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic %%%not-base64"}
    )
    assert_problem(response, 401, "client_authentication_failed")


def test_disabled_client_cannot_get_tokens(client: TestClient, runtime: Runtime) -> None:
    from hub.identity.models import ApiClient

    api_client, secret = secret_client(runtime, "licence:read")
    with runtime.session_scope() as session:
        row = session.get(ApiClient, api_client.client_id)
        assert row is not None
        row.active = False
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(api_client.client_id, secret)
    )
    assert_problem(response, 401, "client_authentication_failed")


# --------------------------------------------------------------------------- private_key_jwt


def test_private_key_jwt_issues_token(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    response = post_assertion(client, assertion(private, kid, api_client.client_id))
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "exchange:fetch"


def test_issuer_identifier_is_an_accepted_audience(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    response = post_assertion(client, assertion(private, kid, api_client.client_id, aud="http://testserver"))
    assert response.status_code == 200, response.text


def test_replayed_jti_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    token = assertion(private, kid, api_client.client_id)
    assert post_assertion(client, token).status_code == 200
    body = assert_problem(post_assertion(client, token), 401, "client_assertion_replayed")
    assert body["error"] == "invalid_client"


def test_expired_assertion_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    past = int(time.time()) - 600
    token = assertion(private, kid, api_client.client_id, iat=past, exp=past + 60)
    assert_problem(post_assertion(client, token), 401, "client_assertion_expired")


def test_long_lived_assertion_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    token = assertion(private, kid, api_client.client_id, exp=int(time.time()) + 86400)
    assert_problem(post_assertion(client, token), 401, "client_assertion_expired")


def test_assertion_signed_by_another_key_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, _, kid = jwt_client(runtime, "exchange:fetch")
    other, _ = ec_key()
    assert_problem(post_assertion(client, assertion(other, kid, api_client.client_id)), 401, "client_assertion_invalid")


def test_assertion_with_wrong_audience_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    token = assertion(private, kid, api_client.client_id, aud="https://elsewhere.example/token")
    assert_problem(post_assertion(client, token), 401, "client_assertion_invalid")


def test_assertion_sub_must_equal_iss(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    token = assertion(private, kid, api_client.client_id, sub="someone-else")
    assert_problem(post_assertion(client, token), 401, "client_assertion_invalid")


def test_assertion_without_jti_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    now = int(time.time())
    claims = {"iss": api_client.client_id, "sub": api_client.client_id, "aud": TOKEN_URL, "exp": now + 60}
    token = jwt.encode(claims, private, algorithm="ES256", headers={"kid": kid})
    assert_problem(post_assertion(client, token), 401, "client_assertion_invalid")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_alg_none_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, _, kid = jwt_client(runtime, "exchange:fetch")
    now = int(time.time())
    header = _b64url(json.dumps({"alg": "none", "kid": kid}).encode())
    claims = {"iss": api_client.client_id, "sub": api_client.client_id, "aud": TOKEN_URL, "exp": now + 60, "jti": "n1"}
    token = f"{header}.{_b64url(json.dumps(claims).encode())}."
    assert_problem(post_assertion(client, token), 401, "client_assertion_invalid")


def test_hs256_with_the_public_key_as_secret_is_refused(client: TestClient, runtime: Runtime) -> None:
    """The classic algorithm-confusion attack (RFC 8725 §2.1): HMAC keyed with the public key."""
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"iss": api_client.client_id, "sub": api_client.client_id, "aud": TOKEN_URL, "exp": now + 60, "jti": "h1"}
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = _b64url(json.dumps(claims).encode())
    import hashlib
    import hmac

    signature = _b64url(hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert_problem(post_assertion(client, f"{header}.{payload}.{signature}"), 401, "client_assertion_invalid")


def test_secret_client_cannot_use_assertions(client: TestClient, runtime: Runtime) -> None:
    api_client, _ = secret_client(runtime, "licence:read")
    private, _ = ec_key()
    assert_problem(
        post_assertion(client, assertion(private, None, api_client.client_id)), 401, "client_authentication_failed"
    )


def test_both_authentication_methods_at_once_are_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion(private, kid, api_client.client_id),
    }
    response = client.post("/oauth/token", data=data, headers=basic(api_client.client_id, "x"))
    assert_problem(response, 401, "client_authentication_failed")


def test_wrong_assertion_type_is_refused(client: TestClient, runtime: Runtime) -> None:
    api_client, private, kid = jwt_client(runtime, "exchange:fetch")
    response = post_assertion(
        client, assertion(private, kid, api_client.client_id), client_assertion_type="urn:example:saml"
    )
    assert_problem(response, 400, "token_request_invalid")


def test_ed25519_client_keys_work(client: TestClient, runtime: Runtime) -> None:
    from hub.identity import service as identity

    private = ed25519.Ed25519PrivateKey.generate()
    public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    with runtime.session_scope() as session:
        from factories import department

        dept = department(session)
        api_client, _ = identity.create_client(
            session, department_code=dept.code, scopes="exchange:verify", jwks={"keys": [public]}
        )
    response = post_assertion(client, assertion(private, None, api_client.client_id))
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- metadata


def test_rfc8414_metadata(client: TestClient) -> None:
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert body["issuer"] == "http://testserver"
    assert body["token_endpoint"] == TOKEN_URL
    assert body["jwks_uri"] == "http://testserver/.well-known/jwks.json"
    assert set(body["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "private_key_jwt"}
    assert "exchange:fetch" in body["scopes_supported"]


def test_jwks_publishes_public_keys_only(client: TestClient) -> None:
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert "d" not in key
        assert key["kty"] == "EC"
        assert key["alg"] == "ES256"
        assert isinstance(jwt.PyJWK(key).key, ec.EllipticCurvePublicKey)
