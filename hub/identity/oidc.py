"""Holder and staff sign-in: OpenID Connect ID token checks, the remote JWKS cache, and the development IdP."""

from __future__ import annotations

import re
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
from hub.identity.tokens import decode_with_jwk, unverified_claims, unverified_header
from hub.keys.service import SigningKey

DEV_ID_TOKEN_TTL_SECONDS = 600
STAFF_ID = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


@dataclass(frozen=True)
class HolderIdentity:
    holder_type: str
    holder_code: str
    name: str
    issuer: str
    subject: str


@dataclass(frozen=True)
class StaffIdentity:
    """A department's officer, as the identity provider vouches: who, of which department, in which roles."""

    officer_id: str
    name: str
    department_code: str
    roles: frozenset[str]
    expires_at: int


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


def _verified_claims(
    token: str, *, issuer: str, audience: str, jwk_for_kid: Callable[[str], dict[str, Any] | None], nonce: str | None
) -> dict[str, Any]:
    """OIDC Core §3.1.3.7 checks: issuer, signature, audience, expiry, nonce."""
    try:
        header, unverified = unverified_header(token), unverified_claims(token)
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("the ID token is not a JWT") from exc
    if unverified.get("iss") != issuer:
        raise IdTokenIssuerUnknown(f"sign in through {issuer} only")
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
    return claims


def verify_id_token(
    token: str,
    *,
    issuer: str,
    audience: str,
    jwk_for_kid: Callable[[str], dict[str, Any] | None],
    nonce: str | None = None,
) -> HolderIdentity:
    """A holder's ID token: the OIDC checks, then the holder code (a staff token names no holder: refused)."""
    claims = _verified_claims(token, issuer=issuer, audience=audience, jwk_for_kid=jwk_for_kid, nonce=nonce)
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


def verify_staff_id_token(
    token: str, *, issuer: str, audience: str, jwk_for_kid: Callable[[str], dict[str, Any] | None]
) -> StaffIdentity:
    """An officer's ID token: the OIDC checks, then ``dept`` and ``roles`` (a holder's token has neither)."""
    claims = _verified_claims(token, issuer=issuer, audience=audience, jwk_for_kid=jwk_for_kid, nonce=None)
    department, roles = claims.get("dept"), claims.get("roles")
    if "holder_code" in claims or not isinstance(department, str) or not isinstance(roles, list):
        raise IdTokenInvalid("the ID token does not name a department officer (claims 'dept' and 'roles')")
    officer = str(claims["sub"])
    if not STAFF_ID.match(officer):
        raise IdTokenInvalid("the officer id must be 1-40 letters, digits, '.', '_' or '-'")
    return StaffIdentity(
        officer_id=officer,
        name=str(claims.get("name", "")),
        department_code=department,
        roles=frozenset(str(role) for role in roles),
        expires_at=int(claims["exp"]),
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


def issue_dev_staff_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    officer_id: str,
    name: str,
    department_code: str,
    roles: list[str],
    now: int | None = None,
) -> str:
    """An officer's ID token from the development IdP: any department, any roles, for demos and tests only."""
    iat = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer, "sub": officer_id, "aud": audience, "iat": iat, "exp": iat + DEV_ID_TOKEN_TTL_SECONDS,
        "name": name, "dept": department_code, "roles": sorted(roles),
    }  # fmt: skip
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})
