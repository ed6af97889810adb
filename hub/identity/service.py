"""Identity use cases: departments and clients, the token endpoint, bearer checks, holder sign-in."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.codes import validate_holder_code, validate_uscc
from hub.errors import Conflict, InvalidInput, NotFound
from hub.identity import tokens
from hub.identity.errors import (
    ClientAssertionInvalid,
    ClientAssertionReplayed,
    ClientAuthenticationFailed,
    ClientDisabled,
    GrantTypeUnsupported,
    JwksInvalid,
    ScopeNotAllowed,
    TokenRequestInvalid,
)
from hub.identity.models import DEPARTMENT_LEVELS, ApiClient, Department, Holder, UsedAssertion
from hub.identity.scopes import parse_scopes, unknown_scopes
from hub.keys import service as keys
from hub.keys.masterkey import MasterKeyRing
from hub.keys.models import HubKey
from hub.settings import Settings

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
# Argon2id, RFC 9106 §4 second recommended option (64 MiB, t=3, p=4) is argon2-cffi's default.
_hasher = PasswordHasher()
# Verified against when the client id is unknown, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(32))


# ----------------------------------------------------------------------------- departments


def create_department(session: Session, *, code: str, name: str, level: str, area_code: str) -> Department:
    code = validate_uscc(code)
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("a department name is 1–200 characters")
    if level not in DEPARTMENT_LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(DEPARTMENT_LEVELS)}")
    if not (area_code.isascii() and area_code.isdigit() and len(area_code) in {6, 9, 12}):
        raise InvalidInput("area code is a GB/T 2260 division code of 6 digits (or 9/12 for lower levels)")
    if session.get(Department, code) is not None:
        raise Conflict(f"department {code} already exists", code_conflict=code)
    department = Department(code=code, name=name, level=level, area_code=area_code, active=True, created_at=utcnow())
    session.add(department)
    session.flush()
    return department


def get_department_or_raise(session: Session, code: str) -> Department:
    department = session.get(Department, code)
    if department is None:
        raise NotFound(f"no department with code {code}")
    return department


def _validate_client_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    keys_ = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys_, list) or not keys_:
        raise JwksInvalid("a JWK set is an object with a non-empty 'keys' array (RFC 7517 §5)")
    cleaned = []
    for jwk in keys_:
        if not isinstance(jwk, dict):
            raise JwksInvalid("every key is a JSON object")
        if "d" in jwk or "k" in jwk:
            raise JwksInvalid("register public keys only; private or symmetric key material was sent")
        if not tokens.algorithms_for_jwk(jwk):
            raise JwksInvalid("keys must be EC (P-256/384/521), RSA or Ed25519")
        try:
            jwt.PyJWK(jwk)
        except jwt.PyJWTError as exc:
            raise JwksInvalid(f"a key does not parse: {exc}") from exc
        cleaned.append(jwk)
    if len(cleaned) > 1 and any("kid" not in k for k in cleaned):
        raise JwksInvalid("with several keys, each needs a 'kid'")
    return {"keys": cleaned}


def create_client(
    session: Session,
    *,
    department_code: str,
    scopes: str,
    name: str | None = None,
    jwks: dict[str, Any] | None = None,
) -> tuple[ApiClient, str | None]:
    """Register a client; returns it and the secret (shown once) for client_secret_basic clients."""
    department = get_department_or_raise(session, validate_uscc(department_code))
    scope_set = parse_scopes(scopes)
    if not scope_set:
        raise InvalidInput("a client needs at least one scope")
    if bad := unknown_scopes(scope_set):
        raise InvalidInput(f"unknown scopes: {' '.join(bad)}")
    secret: str | None = None
    client = ApiClient(
        client_id=f"{department.code[-8:].lower()}-{secrets.token_hex(6)}",
        department_code=department.code,
        name=(name or f"{department.name} system").strip()[:200],
        scopes=" ".join(sorted(scope_set)),
        active=True,
        created_at=utcnow(),
    )
    if jwks is not None:
        client.auth_method = "private_key_jwt"
        client.jwks = _validate_client_jwks(jwks)
    else:
        client.auth_method = "client_secret_basic"
        secret = secrets.token_urlsafe(32)
        client.secret_hash = _hasher.hash(secret)
    session.add(client)
    session.flush()
    return client, secret


def disable_client(session: Session, client_id: str) -> ApiClient:
    """Stop a client at once: its next token request and its live tokens are refused (authenticate_bearer)."""
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"no client {client_id}")
    client.active = False
    session.flush()
    return client


# ----------------------------------------------------------------------------- token endpoint


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str | None
    scope: str | None
    client_id: str | None
    client_assertion_type: str | None
    client_assertion: str | None
    authorization: str | None


def _parse_basic(header: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: Basic auth of form-urlencoded id and secret."""
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode()
        client_id, secret = raw.split(":", 1)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientAuthenticationFailed("malformed Basic credentials") from exc
    return unquote(client_id), unquote(secret)


def _authenticate_secret(session: Session, client_id: str, secret: str) -> ApiClient:
    client = session.get(ApiClient, client_id)
    stored = client.secret_hash if client is not None and client.secret_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, secret)
    except (VerifyMismatchError, VerificationError):
        client = None
    if client is None or client.auth_method != "client_secret_basic" or stored is _DUMMY_HASH:
        # Same answer for unknown client and wrong secret: do not confirm which ids exist.
        raise ClientAuthenticationFailed("unknown client or wrong secret")
    return client


def _authenticate_assertion(session: Session, settings: Settings, request: TokenRequest) -> ApiClient:
    assertion = request.client_assertion or ""
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ClientAssertionInvalid("the client assertion is not a JWT") from exc
    client_id = str(unverified.get("iss", ""))
    if request.client_id and request.client_id != client_id:
        raise ClientAssertionInvalid("client_id does not match the assertion's issuer")
    client = session.get(ApiClient, client_id)
    if client is None or client.auth_method != "private_key_jwt" or not client.jwks:
        raise ClientAuthenticationFailed("unknown client or wrong key")
    claims = tokens.verify_client_assertion(
        assertion,
        client_id=client_id,
        jwks=client.jwks,
        # RFC 7523 §3 item 3: the token endpoint URL; RFC 7523bis also allows the issuer.
        audiences=[settings.token_endpoint, settings.issuer],
        max_lifetime_seconds=settings.client_assertion_max_lifetime_seconds,
    )
    _spend_jti(session, client_id, str(claims["jti"]), int(claims["exp"]))
    return client


def _spend_jti(session: Session, client_id: str, jti: str, exp: int) -> None:
    """RFC 7523 §3 item 7: a jti is used once; the unique key decides races between processes."""
    if not jti or len(jti) > 200:
        raise ClientAssertionInvalid("jti must be 1–200 characters")
    try:
        with session.begin_nested():
            session.add(UsedAssertion(client_id=client_id, jti=jti, expires_at=datetime.fromtimestamp(exp, UTC)))
    except IntegrityError as exc:
        raise ClientAssertionReplayed("this assertion's jti was already used; sign a new one") from exc


@dataclass(frozen=True)
class IssuedToken:
    client_id: str
    department_code: str
    body: dict[str, Any]


def claimed_client_id(request: TokenRequest) -> str | None:
    """Who the failed request said it was (for the audit entry), without trusting it."""
    if request.authorization and request.authorization[:6].lower() == "basic ":
        try:
            return _parse_basic(request.authorization)[0]
        except ClientAuthenticationFailed:
            return None
    if request.client_assertion:
        try:
            return str(jwt.decode(request.client_assertion, options={"verify_signature": False}).get("iss", ""))
        except jwt.PyJWTError:
            return None
    return request.client_id


def issue_token(session: Session, settings: Settings, ring: MasterKeyRing, request: TokenRequest) -> IssuedToken:
    """The client_credentials grant (RFC 6749 §4.4) with client_secret_basic or private_key_jwt."""
    if request.grant_type != "client_credentials":
        raise GrantTypeUnsupported
    has_basic = bool(request.authorization and request.authorization[:6].lower() == "basic ")
    has_assertion = request.client_assertion is not None or request.client_assertion_type is not None
    if has_basic == has_assertion:
        raise ClientAuthenticationFailed("authenticate with exactly one of client_secret_basic or private_key_jwt")
    if has_assertion:
        if request.client_assertion_type != CLIENT_ASSERTION_TYPE or not request.client_assertion:
            raise TokenRequestInvalid(f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}")
        client = _authenticate_assertion(session, settings, request)
    else:
        client = _authenticate_secret(session, *_parse_basic(request.authorization or ""))
    department = session.get(Department, client.department_code)
    if not client.active or department is None or not department.active:
        raise ClientAuthenticationFailed("this client or its department is disabled")
    requested = parse_scopes(request.scope) or client.scope_set
    if not requested <= client.scope_set:
        extra = " ".join(sorted(requested - client.scope_set))
        raise ScopeNotAllowed(f"not granted to this client: {extra}")
    token, claims = tokens.issue_access_token(
        keys.signing_key(session, ring, keys.ACCESS_TOKEN),
        issuer=settings.issuer,
        audience=settings.api_audience,
        client_id=client.client_id,
        department_code=client.department_code,
        scopes=requested,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl_seconds,
        "scope": claims["scope"],
    }
    return IssuedToken(client.client_id, client.department_code, body)


def purge_spent_assertions(session: Session, now: datetime | None = None) -> int:
    """Expired assertions can no longer be replayed (their exp is past), so their jti can go."""
    result = session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < (now or utcnow())))
    return int(getattr(result, "rowcount", 0) or 0)


# ----------------------------------------------------------------------------- bearer tokens


class PublicKeyCache:
    """Verification keys by (purpose, kid); rows are re-read after ``ttl`` so retirement is seen."""

    MAX_TOKENS = 10_000  # verified access tokens remembered; a full table is emptied (clients re-verify once)

    def __init__(self, ttl_seconds: float = 30.0) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[tuple[str, str], tuple[float, Any | None]] = {}
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, tokens.AccessClaims]] = {}

    def verified(self, token: str) -> tokens.AccessClaims | None:
        """Claims of ``token`` if its signature was checked here within ``ttl`` and it has not expired.

        A client sends the same access token on every call until it expires; checking its ES256
        signature each time was the largest single cost of an authenticated call. Remembering the
        verdict for at most ``ttl`` keeps the guarantee the key cache already gives: a retired key
        stops being accepted within ``ttl``. Expiry is checked on every call.
        """
        hit = self._tokens.get(token)
        if hit is None:
            return None
        checked_at, claims = hit
        if time.monotonic() - checked_at >= self._ttl or claims.expires_at + tokens.CLOCK_SKEW_SECONDS <= time.time():
            self._tokens.pop(token, None)
            return None
        return claims

    def remember(self, token: str, claims: tokens.AccessClaims) -> None:
        with self._lock:
            if len(self._tokens) >= self.MAX_TOKENS:
                self._tokens.clear()
            self._tokens[token] = (time.monotonic(), claims)

    def resolve(self, session: Session, purpose: str, kid: str, overlap: timedelta) -> Any | None:
        now = time.monotonic()
        hit = self._entries.get((purpose, kid))
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        row = session.get(HubKey, kid)
        key = None
        if row is not None and row.purpose == purpose:
            retired_ok = row.retired_at is None or row.retired_at > utcnow() - overlap
            key = jwt.PyJWK(row.public_jwk).key if retired_ok else None
        with self._lock:
            self._entries[(purpose, kid)] = (now, key)
        return key


def authenticate_bearer(session: Session, settings: Settings, cache: PublicKeyCache, token: str) -> tokens.AccessClaims:
    """Check an access token and that its client and department are still enabled."""
    claims = cache.verified(token) or decode_bearer(session, settings, cache, token)
    if disabled_clients(session, {claims.client_id}):
        raise ClientDisabled
    return claims


def decode_bearer(session: Session, settings: Settings, cache: PublicKeyCache, token: str) -> tokens.AccessClaims:
    """The signature and claims of an access token (its key read through ``cache``); remembered for next time."""
    overlap = timedelta(seconds=settings.key_overlap_seconds)
    claims = tokens.decode_access_token(
        token,
        resolve_key=lambda kid: cache.resolve(session, keys.ACCESS_TOKEN, kid, overlap),
        issuer=settings.issuer,
        audience=settings.api_audience,
    )
    cache.remember(token, claims)
    return claims


def disabled_clients(session: Session, client_ids: Collection[str]) -> set[str]:
    """Which of ``client_ids`` may not call any more: unknown, disabled, or of a disabled department (one query)."""
    rows = session.execute(
        select(ApiClient.client_id, ApiClient.active, Department.active)
        .join(Department, Department.code == ApiClient.department_code)
        .where(ApiClient.client_id.in_(client_ids))
    ).all()
    enabled = {client_id for client_id, client_active, department_active in rows if client_active and department_active}
    return set(client_ids) - enabled


# ----------------------------------------------------------------------------- holders


def resolve_holder(session: Session, *, holder_type: str, holder_code: str, name: str) -> Holder:
    """One account per person: find the holder keyed by (type, code), creating it on first sign-in."""
    code = validate_holder_code(holder_type, holder_code)
    query = select(Holder).where(Holder.holder_type == holder_type, Holder.holder_code == code)
    holder = session.scalars(query).first()
    if holder is not None:
        return holder
    now = utcnow()
    holder = Holder(
        holder_type=holder_type, holder_code=code, name=name.strip()[:200], created_at=now, last_sign_in_at=now
    )
    try:
        with session.begin_nested():
            session.add(holder)
    except IntegrityError:
        # Another request signed the same person in first; the unique key kept one account.
        return session.scalars(query).one()
    return holder
