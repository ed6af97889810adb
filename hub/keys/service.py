"""Create, rotate, load and publish the hub's signing keys (JWT access tokens, dev IdP)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.keys.masterkey import MasterKeyRing
from hub.keys.models import HubKey

ACCESS_TOKEN = "access-token"  # noqa: S105 - a key purpose name
DEV_IDP = "dev-idp"
PURPOSES = (ACCESS_TOKEN, DEV_IDP)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: ec.EllipticCurvePrivateKey


_private_cache: dict[str, SigningKey] = {}
_cache_lock = threading.Lock()


def _aad(kid: str, purpose: str) -> bytes:
    return f"licence-hub/{purpose}/{kid}".encode()


def _public_jwk(private_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
    return {k: jwk[k] for k in ("kty", "crv", "x", "y")}


def create_key(session: Session, ring: MasterKeyRing, purpose: str) -> HubKey:
    """A fresh ES256 (P-256, RFC 7518 §3.4) key, stored encrypted; becomes the active one."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    public = _public_jwk(private_key)
    kid = jwt.PyJWK(public).key_id or _thumbprint(public)
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    master_id, blob = ring.encrypt(der, _aad(kid, purpose))
    key = HubKey(
        kid=kid,
        purpose=purpose,
        algorithm="ES256",
        public_jwk={**public, "kid": kid, "alg": "ES256", "use": "sig"},
        master_key_id=master_id,
        private_ciphertext=blob,
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    return key


def _thumbprint(public: dict[str, Any]) -> str:
    # RFC 7638 §3.2: lexicographic members, no whitespace.
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    canonical = json.dumps({k: public[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def active_key_row(session: Session, purpose: str) -> HubKey | None:
    stmt = (
        select(HubKey)
        .where(HubKey.purpose == purpose, HubKey.retired_at.is_(None))
        .order_by(HubKey.created_at.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def ensure_keys(session: Session, ring: MasterKeyRing) -> list[str]:
    """Create a key for every purpose lacking one; returns the purposes created (idempotent)."""
    created = []
    for purpose in PURPOSES:
        if active_key_row(session, purpose) is None:
            create_key(session, ring, purpose)
            created.append(purpose)
    return created


def rotate_key(session: Session, ring: MasterKeyRing, purpose: str) -> HubKey:
    """Retire the active key (it stays published for the overlap window) and create a new one."""
    for row in session.scalars(select(HubKey).where(HubKey.purpose == purpose, HubKey.retired_at.is_(None))):
        row.retired_at = utcnow()
    return create_key(session, ring, purpose)


def signing_key(session: Session, ring: MasterKeyRing, purpose: str) -> SigningKey:
    """The active key for ``purpose``, decrypted once per process and kept by kid."""
    row = active_key_row(session, purpose)
    if row is None:
        msg = f"no active {purpose} key: run `licence-hub init`"
        raise LookupError(msg)
    cached = _private_cache.get(row.kid)
    if cached is not None:
        return cached
    der = ring.decrypt(row.master_key_id, row.private_ciphertext, _aad(row.kid, purpose))
    private_key = serialization.load_der_private_key(der, password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        msg = f"stored key {row.kid} is not an EC key"
        raise TypeError(msg)
    key = SigningKey(row.kid, row.algorithm, private_key)
    with _cache_lock:
        _private_cache[row.kid] = key
    return key


def published_keys(session: Session, purpose: str, overlap: timedelta, now: datetime | None = None) -> list[HubKey]:
    """Active keys plus retired ones whose tokens may still be unexpired."""
    cutoff = (now or utcnow()) - overlap
    stmt = (
        select(HubKey)
        .where(HubKey.purpose == purpose)
        .where((HubKey.retired_at.is_(None)) | (HubKey.retired_at > cutoff))
        .order_by(HubKey.created_at.desc())
    )
    return list(session.scalars(stmt))


def jwks(session: Session, purpose: str, overlap: timedelta) -> dict[str, Any]:
    """RFC 7517 §5 JWK Set of the verification keys for ``purpose``."""
    return {"keys": [row.public_jwk for row in published_keys(session, purpose, overlap)]}
