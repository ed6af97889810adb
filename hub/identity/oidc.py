"""Holder sign-in: OpenID Connect ID token checks, the remote JWKS cache, and the development IdP."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from hub.codes import validate_holder_code
from hub.errors import DomainError, ServiceUnavailable
from hub.identity.errors import (
    IdTokenAudienceMismatch,
    IdTokenExpired,
    IdTokenInvalid,
    IdTokenIssuerUnknown,
    IdTokenNonceMismatch,
)
from hub.identity.tokens import decode_with_jwk
from hub.keys.service import SigningKey

DEV_ID_TOKEN_TTL_SECONDS = 600


@dataclass(frozen=True)
class HolderIdentity:
    holder_type: str
    holder_code: str
    name: str
    issuer: str
    subject: str


class RemoteJwks:
    """JWKS of an external issuer, cached; refetched when a new kid shows up (key rotation)."""

    def __init__(self, url: str, *, ttl_seconds: float = 300.0, min_refetch_seconds: float = 10.0) -> None:
        self._url = url
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._fetched_at = float("-inf")
        self._keys: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        try:
            response = httpx.get(self._url, timeout=5.0)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailable("the identity provider's key set cannot be fetched") from exc
        self._keys = {str(k.get("kid", "")): k for k in body.get("keys", []) if isinstance(k, dict)}
        self._fetched_at = time.monotonic()

    def jwk(self, kid: str) -> dict[str, Any] | None:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > self._ttl or (kid not in self._keys and age > self._min_refetch):
                self._fetch()
            return self._keys.get(kid)


def verify_id_token(
    token: str,
    *,
    issuer: str,
    audience: str,
    jwk_for_kid: Callable[[str], dict[str, Any] | None],
    nonce: str | None = None,
) -> HolderIdentity:
    """OIDC Core §3.1.3.7 checks: issuer, signature, audience, expiry, nonce; then the holder code."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("the ID token is not a JWT") from exc
    if unverified.get("iss") != issuer:
        raise IdTokenIssuerUnknown(f"holders sign in through {issuer} only")
    jwk = jwk_for_kid(str(header.get("kid", "")))
    if jwk is None:
        raise IdTokenInvalid("the ID token's signing key is not in the issuer's key set")
    try:
        claims = decode_with_jwk(
            token, header, jwk, audience=audience, issuer=issuer, require=["iss", "sub", "aud", "exp", "iat"]
        )
    except jwt.ExpiredSignatureError as exc:
        raise IdTokenExpired from exc
    except jwt.InvalidAudienceError as exc:
        raise IdTokenAudienceMismatch(f"this hub accepts ID tokens for '{audience}' only") from exc
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid(f"the ID token failed verification: {exc}") from exc
    if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise IdTokenNonceMismatch
    holder_type = str(claims.get("holder_type", ""))
    try:
        code = validate_holder_code(holder_type, str(claims.get("holder_code", "")))
    except DomainError as exc:
        raise IdTokenInvalid(f"the ID token does not name a valid holder: {exc.detail}") from exc
    return HolderIdentity(
        holder_type=holder_type,
        holder_code=code,
        name=str(claims.get("name", "")),
        issuer=issuer,
        subject=str(claims["sub"]),
    )


def issue_dev_id_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    holder_type: str,
    holder_code: str,
    name: str,
    nonce: str | None = None,
    now: int | None = None,
) -> str:
    """An ID token from the development IdP: any holder, for demos and tests only."""
    code = validate_holder_code(holder_type, holder_code)
    iat = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": f"{holder_type}:{code}",
        "aud": audience,
        "iat": iat,
        "exp": iat + DEV_ID_TOKEN_TTL_SECONDS,
        "holder_type": holder_type,
        "holder_code": code,
        "name": name,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})
