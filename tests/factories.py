"""Test data builders for the identity domain: valid codes, departments and clients."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from audit.entries import AuditEvent
from hub.clock import utcnow
from hub.codes import make_id_number, make_uscc
from hub.identity import service as identity
from hub.identity.models import ApiClient, Department
from hub.runtime import Runtime


def audit_event(**overrides: Any) -> AuditEvent:
    """A realistic exchange event: a department fetched a licence for a matter and case."""
    fields: dict[str, Any] = {
        "action": "exchange.licence.fetched",
        "outcome": "ok",
        "actor_type": "department",
        "actor": "11330100002010066Q",
        "request_id": secrets.token_hex(8),
        "time": utcnow(),
        "matter_code": "330100-000-XK-001",
        "case_number": "LJ2026112300001",
        "officer_id": "officer-0042",
        "fields": ("name", "valid_until"),
    }
    fields.update(overrides)
    return AuditEvent(**fields)


def random_uscc(registration: str = "1", category: str = "1") -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return make_uscc(registration, category, "330100", "".join(secrets.choice(alphabet) for _ in range(8)))


def random_id_number() -> str:
    birth = dt.date(1960, 1, 1) + dt.timedelta(days=secrets.randbelow(20000))
    return make_id_number("330102", birth, f"{secrets.randbelow(1000):03d}")


def department(session: Session, name: str = "临江市市场监督管理局") -> Department:
    return identity.create_department(session, code=random_uscc(), name=name, level="municipal", area_code="330100")


def secret_client(runtime: Runtime, scopes: str) -> tuple[ApiClient, str]:
    """A committed department + client_secret_basic client; returns the client and its secret."""
    with runtime.session_scope() as session:
        dept = department(session)
        client, secret = identity.create_client(session, department_code=dept.code, scopes=scopes)
    assert secret is not None
    return client, secret


def ec_key() -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
    """A P-256 key pair and its public JWK with a kid."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    public["kid"] = secrets.token_hex(4)
    return private, public


def jwt_client(runtime: Runtime, scopes: str) -> tuple[ApiClient, ec.EllipticCurvePrivateKey, str]:
    """A committed private_key_jwt client; returns the client, its private key and kid."""
    private, public = ec_key()
    with runtime.session_scope() as session:
        dept = department(session)
        client, _ = identity.create_client(session, department_code=dept.code, scopes=scopes, jwks={"keys": [public]})
    return client, private, public["kid"]


def bearer(client: Any, runtime: Runtime, scopes: str) -> tuple[dict[str, str], ApiClient]:
    """Authorization headers of a fresh department client with ``scopes`` (client_secret_basic)."""
    api_client, secret = secret_client(runtime, scopes)
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(api_client.client_id, secret)
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}, api_client
