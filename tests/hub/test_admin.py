"""Admin API: departments and clients, with validation of every code that enters."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from factories import ec_key, random_uscc, secret_client
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.identity.models import Department
from hub.runtime import Runtime


@pytest.fixture
def admin(client: TestClient, runtime: Runtime) -> dict[str, str]:
    api_client, secret = secret_client(runtime, "admin")
    auth = base64.b64encode(f"{api_client.client_id}:{secret}".encode()).decode()
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {auth}"}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def new_department(client: TestClient, admin: dict[str, str], **overrides: Any) -> Any:
    body = {"code": random_uscc(), "name": "临江市卫生健康委员会", "level": "municipal", "area_code": "330100"}
    body.update(overrides)
    return client.post("/v1/admin/departments", json=body, headers=admin)


def test_create_and_list_department(client: TestClient, admin: dict[str, str]) -> None:
    response = new_department(client, admin)
    assert response.status_code == 201, response.text
    code = response.json()["code"]
    listed = client.get("/v1/admin/departments", headers=admin).json()
    assert code in {d["code"] for d in listed}


def test_lowercase_uscc_is_normalised(client: TestClient, admin: dict[str, str]) -> None:
    code = random_uscc()
    response = new_department(client, admin, code=f" {code.lower()} ")
    assert response.status_code == 201
    assert response.json()["code"] == code


@pytest.mark.parametrize("bad", ["11330100MA2H7K3AX0", "12345", "1133010000201001I0", "1133010000201001２Y"])
def test_malformed_uscc_is_a_clear_422(client: TestClient, admin: dict[str, str], runtime: Runtime, bad: str) -> None:
    response = new_department(client, admin, code=bad)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_uscc"
    with runtime.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Department).where(Department.code == bad)) == 0


def test_department_name_is_stored_trimmed(client: TestClient, admin: dict[str, str]) -> None:
    response = new_department(client, admin, name="  临江市民政局 ")
    assert response.status_code == 201
    assert response.json()["name"] == "临江市民政局"


def test_duplicate_department_is_a_conflict(client: TestClient, admin: dict[str, str]) -> None:
    code = random_uscc()
    assert new_department(client, admin, code=code).status_code == 201
    response = new_department(client, admin, code=code)
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


# A blank name: a name is the publisher on pages, seals and the DCAT export, and whitespace alone is none.
@pytest.mark.parametrize(
    "overrides",
    [{"colour": "red"}, {"name": ""}, {"name": "   "}, {"name": "\u3000\n"}, {"name": "\x1c\x1d"}, {"name": "局\x07"}],
)
def test_unknown_fields_and_blank_names_are_refused(
    client: TestClient, admin: dict[str, str], overrides: dict[str, str]
) -> None:
    response = new_department(client, admin, **overrides)
    assert response.status_code == 422
    assert response.json()["code"] == "request_invalid"


def test_create_secret_client_shows_secret_once(client: TestClient, admin: dict[str, str]) -> None:
    code = new_department(client, admin).json()["code"]
    response = client.post(
        "/v1/admin/clients", json={"department_code": code, "scopes": "licence:issue"}, headers=admin
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert len(body["client_secret"]) >= 40


def test_create_jwt_client(client: TestClient, admin: dict[str, str]) -> None:
    code = new_department(client, admin).json()["code"]
    _, public = ec_key()
    response = client.post(
        "/v1/admin/clients",
        json={"department_code": code, "scopes": "exchange:fetch", "jwks": {"keys": [public]}},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["client_secret"] is None
    assert response.json()["token_endpoint_auth_method"] == "private_key_jwt"


@pytest.mark.parametrize(
    ("jwks", "needle"),
    [
        ({"keys": []}, "non-empty"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "private or symmetric"),
        ({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}, "does not parse"),
    ],
)
def test_bad_jwks_is_refused(client: TestClient, admin: dict[str, str], jwks: dict[str, Any], needle: str) -> None:
    code = new_department(client, admin).json()["code"]
    response = client.post(
        "/v1/admin/clients", json={"department_code": code, "scopes": "exchange:fetch", "jwks": jwks}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["code"] == "jwks_invalid"
    assert needle in response.json()["detail"]


def test_private_key_in_jwks_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    import jwt

    private, _ = ec_key()
    leaked = jwt.algorithms.ECAlgorithm.to_jwk(private, as_dict=True)
    code = new_department(client, admin).json()["code"]
    response = client.post(
        "/v1/admin/clients",
        json={"department_code": code, "scopes": "exchange:fetch", "jwks": {"keys": [leaked]}},
        headers=admin,
    )
    assert response.json()["code"] == "jwks_invalid"
    assert leaked["d"] not in response.text


def test_unknown_scope_and_department(client: TestClient, admin: dict[str, str]) -> None:
    code = new_department(client, admin).json()["code"]
    bad_scope = client.post("/v1/admin/clients", json={"department_code": code, "scopes": "root"}, headers=admin)
    assert bad_scope.status_code == 422
    assert "unknown scopes: root" in bad_scope.json()["detail"]
    ghost = client.post(
        "/v1/admin/clients", json={"department_code": random_uscc(), "scopes": "licence:read"}, headers=admin
    )
    assert ghost.status_code == 404


def test_disable_client(client: TestClient, admin: dict[str, str], runtime: Runtime) -> None:
    api_client, _ = secret_client(runtime, "licence:read")
    response = client.post(f"/v1/admin/clients/{api_client.client_id}/disable", headers=admin)
    assert response.json()["active"] is False
    assert client.post("/v1/admin/clients/nobody/disable", headers=admin).status_code == 404
