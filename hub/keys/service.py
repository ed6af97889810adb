"""Create, rotate, load and publish the hub's own keys: token, IdP, audit, CA and TSA signing, HMAC secrets."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.keys.masterkey import MasterKeyRing
from hub.keys.models import HubKey

ACCESS_TOKEN = "access-token"  # noqa: S105 - a key purpose name
DEV_IDP = "dev-idp"
AUDIT = "audit"  # Ed25519: checkpoints (C2SP signed notes) and receipts
HOLDER_REF = "holder-ref"  # HMAC-SHA256 secret: holder_ref in audit entries (DESIGN.md §6)
CA_ROOT = "ca-root"  # ECDSA P-256 keys of the hub PKI (seals.pki)
CA_ISSUING = "ca-issuing"
TSA = "tsa"  # ECDSA P-256: the hub's RFC 3161 time-stamping unit (seals.tsa), certified by the issuing CA
PRESENTATION = "presentation"  # ES256: QR presentation tokens (扫码亮证), verifiable offline with the JWKS
STATUS_LIST = "status-list"  # ES256: W3C Bitstring Status List credentials (JWT)
PURPOSE_ALGORITHMS = {
    ACCESS_TOKEN: "ES256",
    DEV_IDP: "ES256",
    AUDIT: "EdDSA",
    HOLDER_REF: "HS256",
    CA_ROOT: "ES256",
    CA_ISSUING: "ES256",
    TSA: "ES256",
    PRESENTATION: "ES256",
    STATUS_LIST: "ES256",
}
PURPOSES = tuple(PURPOSE_ALGORITHMS)
# The audit key and holder-ref secret are long-lived by design; the CA and TSA keys are bound to
# certificates, so replacing one is a PKI operation (re-certification), never a token-key rotation.
ROTATABLE = (ACCESS_TOKEN, DEV_IDP, PRESENTATION, STATUS_LIST)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class EdKey:
    kid: str
    private_key: ed25519.Ed25519PrivateKey


_material_cache: dict[str, bytes] = {}
_cache_lock = threading.Lock()


def _aad(kid: str, purpose: str) -> bytes:
    return f"licence-hub/{purpose}/{kid}".encode()


def _thumbprint(public: dict[str, Any], members: tuple[str, ...]) -> str:
    # RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
    canonical = json.dumps({k: public[k] for k in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _new_material(algorithm: str) -> tuple[bytes, dict[str, Any], str]:
    """(private material to encrypt, public JWK, kid) for a fresh key."""
    if algorithm == "ES256":  # P-256, RFC 7518 §3.4
        ec_key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
        public = {k: jwk[k] for k in ("kty", "crv", "x", "y")}
        der = ec_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return der, public, _thumbprint(public, ("crv", "kty", "x", "y"))
    if algorithm == "EdDSA":  # Ed25519, RFC 8037
        ed_key = ed25519.Ed25519PrivateKey.generate()
        raw_public = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        public = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw_public).rstrip(b"=").decode()}
        raw = ed_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return raw, public, _thumbprint(public, ("crv", "kty", "x"))
    # A symmetric secret has no public half; its kid is random, never derived from the secret.
    return secrets.token_bytes(32), {"kty": "oct"}, secrets.token_urlsafe(16)


def create_key(session: Session, ring: MasterKeyRing, purpose: str) -> HubKey:
    """A fresh key for ``purpose``, stored encrypted under the master key; becomes the active one."""
    algorithm = PURPOSE_ALGORITHMS[purpose]
    material, public, kid = _new_material(algorithm)
    master_id, blob = ring.encrypt(material, _aad(kid, purpose))
    jwk = {**public, "kid": kid, "alg": algorithm, "use": "sig"} if algorithm != "HS256" else {}
    key = HubKey(
        kid=kid,
        purpose=purpose,
        algorithm=algorithm,
        public_jwk=jwk,
        master_key_id=master_id,
        private_ciphertext=blob,
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    return key


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


def _material(session: Session, ring: MasterKeyRing, purpose: str) -> tuple[HubKey, bytes]:
    """The active key's decrypted material, decrypted once per process and kept by kid."""
    row = active_key_row(session, purpose)
    if row is None:
        msg = f"no active {purpose} key: run `licence-hub init`"
        raise LookupError(msg)
    cached = _material_cache.get(row.kid)
    if cached is None:
        cached = ring.decrypt(row.master_key_id, row.private_ciphertext, _aad(row.kid, purpose))
        with _cache_lock:
            _material_cache[row.kid] = cached
    return row, cached


def signing_key(session: Session, ring: MasterKeyRing, purpose: str) -> SigningKey:
    """The active ES256 key for ``purpose`` (access tokens, dev IdP)."""
    row, der = _material(session, ring, purpose)
    private_key = serialization.load_der_private_key(der, password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        msg = f"stored key {row.kid} is not an EC key"
        raise TypeError(msg)
    return SigningKey(row.kid, row.algorithm, private_key)


def ed25519_key(session: Session, ring: MasterKeyRing, purpose: str = AUDIT) -> EdKey:
    row, raw = _material(session, ring, purpose)
    return EdKey(row.kid, ed25519.Ed25519PrivateKey.from_private_bytes(raw))


def secret(session: Session, ring: MasterKeyRing, purpose: str = HOLDER_REF) -> bytes:
    return _material(session, ring, purpose)[1]


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


def rewrap_keys(session: Session, ring: MasterKeyRing) -> int:
    """Re-encrypt every hub key (retired ones too) not under ``ring.current_id`` (master key rotation)."""
    rows = session.scalars(select(HubKey).where(HubKey.master_key_id != ring.current_id).with_for_update()).all()
    for row in rows:
        aad = _aad(row.kid, row.purpose)
        row.master_key_id, row.private_ciphertext = ring.encrypt(
            ring.decrypt(row.master_key_id, row.private_ciphertext, aad), aad
        )
    session.flush()
    return len(rows)
