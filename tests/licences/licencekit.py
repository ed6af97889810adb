"""Test builders for licences: an issuing department with a seal and a client, demo types, holders."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from factories import ec_key, random_id_number, random_uscc
from fastapi.testclient import TestClient

from hub.identity import service as identity
from hub.identity.service import CLIENT_ASSERTION_TYPE
from hub.runtime import Runtime
from licences.demo_types import DEMO_TYPES, DemoType
from licences.types import ensure_demo_types
from tests.seals.sealkit import SealKit, make_kit

BUSINESS = "11100000000013338W032"  # 营业执照, DESIGN.md §3 test-vector type


def demo_type(name: str) -> DemoType:
    return next(t for t in DEMO_TYPES if t.name == name)


@dataclass
class Department:
    code: str
    name: str
    headers: dict[str, str]
    client_id: str


def department_client(client: TestClient, runtime: Runtime, code: str, scopes: str) -> Department:
    """A private_key_jwt client of department ``code`` and its access token.

    private_key_jwt (RFC 7523) rather than a secret: a test kit creates several clients per test, and each
    client secret costs two Argon2id runs by design (hub/identity); tests/hub/test_oauth.py covers secrets.
    """
    private, public = ec_key()
    with runtime.session_scope() as session:
        dept = identity.get_department_or_raise(session, code)
        api_client, _ = identity.create_client(session, department_code=code, scopes=scopes, jwks={"keys": [public]})
        name = dept.name
    now = int(time.time())
    claims = {
        "iss": api_client.client_id, "sub": api_client.client_id, "aud": f"{runtime.settings.public_url}/oauth/token",
        "iat": now, "exp": now + 60, "jti": secrets.token_urlsafe(12),
    }  # fmt: skip
    signed = jwt.encode(claims, private, algorithm="ES256", headers={"kid": public["kid"]})
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
              "client_assertion": signed},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return Department(code, name, {"Authorization": f"Bearer {token}"}, api_client.client_id)


@dataclass
class LicenceKit:
    client: TestClient
    runtime: Runtime
    seals: SealKit
    issuer: Department

    def holder(self, type_name: str = "营业执照", serial: int = 1) -> dict[str, str]:
        """A holder of the right kind for ``type_name`` with a valid code."""
        kind = demo_type(type_name).holder_type
        if kind == "001":
            return {"type": "001", "code": random_uscc("9", "1"), "name": f"临江市测试第{serial}科技有限公司"}
        return {"type": "111", "code": random_id_number(), "name": "李娜"}

    def request(
        self, type_name: str = "营业执照", holder: dict[str, str] | None = None, serial: int = 1, **extra: Any
    ) -> dict[str, Any]:
        kind = demo_type(type_name)
        holder = holder or self.holder(type_name, serial)
        body: dict[str, Any] = {
            "certificate_type_code": kind.type_code,
            "certificate_holder_type": holder["type"],
            "certificate_holder_code": holder["code"],
            "certificate_holder_name": holder["name"],
            "face": kind.sample_face(holder["name"], holder["code"], serial),
        }
        body.update(extra)
        return body

    def issue(self, body: dict[str, Any] | None = None, *, key: str | None = None, expect: int = 201) -> Any:
        response = self.client.post(
            "/v1/licences",
            json=body or self.request(),
            headers={**self.issuer.headers, "Idempotency-Key": key or str(uuid.uuid4())},
        )
        assert response.status_code == expect, response.text
        return response.json()

    def holder_headers(self, holder: dict[str, str]) -> dict[str, str]:
        response = self.client.post(
            "/dev/idp/token",
            json={"holder_type": holder["type"], "holder_code": holder["code"], "name": holder["name"]},
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['id_token']}"}


def make_licence_kit(client: TestClient, runtime: Runtime) -> LicenceKit:
    seals = make_kit(runtime, name="临江市市场监督管理局")
    with runtime.session_scope() as session:
        ensure_demo_types(session, [seals.owner.code])
    issuer = department_client(client, runtime, seals.owner.code, "licence:issue licence:read")
    return LicenceKit(client, runtime, seals, issuer)
