"""Holder sign-in: the development IdP, an external OIDC issuer over HTTP, and every bad ID token."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from conftest import free_port
from cryptography.hazmat.primitives.asymmetric import ec
from factories import ec_key, random_id_number, random_uscc
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.api.app import create_app
from hub.identity.errors import IdTokenNonceMismatch
from hub.identity.models import Holder
from hub.identity.oidc import verify_id_token
from hub.runtime import Runtime


def dev_token(client: TestClient, holder_type: str, code: str, name: str = "张伟", **extra: str) -> str:
    response = client.post(
        "/dev/idp/token", json={"holder_type": holder_type, "holder_code": code, "name": name, **extra}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["id_token"]
    return token


def me(client: TestClient, token: str) -> Any:
    return client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_citizen_signs_in_through_dev_idp(client: TestClient) -> None:
    code = random_id_number()
    response = me(client, dev_token(client, "111", code))
    assert response.status_code == 200, response.text
    assert response.json() == {"holder_type": "111", "holder_code": code, "name": "张伟"}


def test_company_signs_in_through_dev_idp(client: TestClient) -> None:
    code = random_uscc("9", "1")
    assert me(client, dev_token(client, "001", code, "临江智造科技有限公司")).json()["holder_code"] == code


def test_one_account_per_person(client: TestClient, runtime: Runtime) -> None:
    code = random_id_number()
    for _ in range(3):
        assert me(client, dev_token(client, "111", code)).status_code == 200
    with runtime.session_scope() as session:
        count = session.scalar(select(func.count()).select_from(Holder).where(Holder.holder_code == code))
    assert count == 1


@pytest.mark.parametrize(
    ("holder_type", "code", "error"),
    [
        ("111", "110105194912310021", "invalid_id_number"),  # check character wrong
        ("111", "11010519491331002X", "invalid_id_number"),  # month 13
        ("001", "91350100M000100Y44", "invalid_uscc"),
        ("001", "91350100M00010OY43", "invalid_uscc"),  # letter O is not in the alphabet
    ],
)
def test_dev_idp_rejects_malformed_codes(client: TestClient, holder_type: str, code: str, error: str) -> None:
    response = client.post("/dev/idp/token", json={"holder_type": holder_type, "holder_code": code, "name": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == error


def test_dev_idp_rejects_unknown_holder_type(client: TestClient) -> None:
    response = client.post("/dev/idp/token", json={"holder_type": "999", "holder_code": "x", "name": "x"})
    assert response.status_code == 422
    assert response.json()["code"] == "request_invalid"


def test_missing_id_token(client: TestClient) -> None:
    assert client.get("/v1/me").json()["code"] == "token_missing"


def test_access_token_is_not_an_id_token(client: TestClient) -> None:
    # An ID token signed by some other key under the dev issuer's name.
    private, public = ec_key()
    now = int(time.time())
    claims = {
        "iss": "http://testserver/dev/idp",
        "sub": "x",
        "aud": "licence-hub",
        "iat": now,
        "exp": now + 60,
        "holder_type": "111",
        "holder_code": random_id_number(),
    }
    forged = jwt.encode(claims, private, algorithm="ES256", headers={"kid": public["kid"]})
    assert me(client, forged).json()["code"] == "id_token_invalid"


def test_dev_idp_token_discovery_and_jwks(client: TestClient) -> None:
    config = client.get("/dev/idp/.well-known/openid-configuration").json()
    assert config["issuer"] == "http://testserver/dev/idp"
    keys = client.get("/dev/idp/jwks.json").json()["keys"]
    assert keys
    assert all("d" not in k for k in keys)


def test_production_has_no_dev_idp_and_rejects_its_tokens(
    client: TestClient, runtime: Runtime, make_settings: Any, make_runtime: Any
) -> None:
    token = dev_token(client, "111", random_id_number())
    prod = make_runtime(
        make_settings(
            env="production",
            oidc_issuer="https://idp.gov.example",
            oidc_jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json",
        )
    )
    with TestClient(create_app(prod), raise_server_exceptions=False) as prod_client:
        response = prod_client.post(
            "/dev/idp/token", json={"holder_type": "111", "holder_code": random_id_number(), "name": "x"}
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert me(prod_client, token).json()["code"] == "id_token_issuer_unknown"


def test_production_refuses_the_dev_idp_as_holder_issuer(make_settings: Any) -> None:
    with pytest.raises(ValueError, match="development identity provider"):
        make_settings(env="production", oidc_issuer="http://testserver/dev/idp")


# --------------------------------------------------------------------------- an external issuer over HTTP


class _Jwks(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def external_idp() -> Iterator[tuple[str, ec.EllipticCurvePrivateKey, str]]:
    """A real OIDC key server on loopback: (issuer, signing key, kid)."""
    private, public = ec_key()
    handler = type("Handler", (_Jwks,), {"body": json.dumps({"keys": [public]}).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", private, public["kid"]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def idp_client(external_idp: tuple[str, Any, str], make_settings: Any, make_runtime: Any) -> Iterator[TestClient]:
    issuer = external_idp[0]
    rt = make_runtime(
        make_settings(
            env="production", oidc_issuer=issuer, oidc_audience="hub-portal", oidc_jwks_url=f"{issuer}/jwks.json"
        )
    )
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c


def id_token(private: Any, kid: str, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "u-1",
        "aud": "hub-portal",
        "iat": now,
        "exp": now + 300,
        "holder_type": "111",
        "holder_code": random_id_number(),
        "name": "李娜",
    }
    claims.update(overrides)
    return jwt.encode(claims, private, algorithm="ES256", headers={"kid": kid})


def test_external_issuer_token_signs_in(idp_client: TestClient, external_idp: tuple[str, Any, str]) -> None:
    issuer, private, kid = external_idp
    response = me(idp_client, id_token(private, kid, iss=issuer))
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "李娜"


def test_unknown_issuer(idp_client: TestClient, external_idp: tuple[str, Any, str]) -> None:
    _, private, kid = external_idp
    response = me(idp_client, id_token(private, kid, iss="https://rogue-idp.example"))
    assert response.status_code == 401
    assert response.json()["code"] == "id_token_issuer_unknown"


def test_wrong_audience(idp_client: TestClient, external_idp: tuple[str, Any, str]) -> None:
    issuer, private, kid = external_idp
    response = me(idp_client, id_token(private, kid, iss=issuer, aud="another-app"))
    assert response.json()["code"] == "id_token_audience_mismatch"


def test_expired_id_token(idp_client: TestClient, external_idp: tuple[str, Any, str]) -> None:
    issuer, private, kid = external_idp
    past = int(time.time()) - 3600
    response = me(idp_client, id_token(private, kid, iss=issuer, iat=past, exp=past + 300))
    assert response.json()["code"] == "id_token_expired"


def test_id_token_signed_by_unknown_key(idp_client: TestClient, external_idp: tuple[str, Any, str]) -> None:
    issuer, _, kid = external_idp
    other, _ = ec_key()
    assert me(idp_client, id_token(other, kid, iss=issuer)).json()["code"] == "id_token_invalid"


def test_id_token_with_invalid_holder_code(idp_client: TestClient, external_idp: tuple[str, Any, str]) -> None:
    issuer, private, kid = external_idp
    response = me(idp_client, id_token(private, kid, iss=issuer, holder_code="110105194912310021"))
    assert response.json()["code"] == "id_token_invalid"
    assert "110105194912310021" not in response.text  # ID numbers are never echoed


def test_nonce_is_checked_when_expected(external_idp: tuple[str, Any, str]) -> None:
    issuer, private, kid = external_idp
    public = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True) | {"kid": kid}
    token = id_token(private, kid, iss=issuer, nonce="n-123")
    identity = verify_id_token(
        token, issuer=issuer, audience="hub-portal", jwk_for_kid={kid: public}.get, nonce="n-123"
    )
    assert identity.holder_type == "111"
    with pytest.raises(IdTokenNonceMismatch):
        verify_id_token(token, issuer=issuer, audience="hub-portal", jwk_for_kid={kid: public}.get, nonce="other")
    without = id_token(private, kid, iss=issuer)
    with pytest.raises(IdTokenNonceMismatch):
        verify_id_token(without, issuer=issuer, audience="hub-portal", jwk_for_kid={kid: public}.get, nonce="n-123")
