"""Pure JWT work: issue and check hub access tokens, check client assertions and ID token signatures."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from hub.identity.errors import (
    ClientAssertionExpired,
    ClientAssertionInvalid,
    TokenAudienceMismatch,
    TokenExpired,
    TokenInvalid,
)
from hub.keys.service import SigningKey

ACCESS_TOKEN_ALGORITHMS = ["ES256"]  # the hub signs with P-256 only; nothing else is accepted
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - RFC 9068 §2.1 media type, not a secret
CLOCK_SKEW_SECONDS = 5


_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
MAX_SEGMENT = 16_384  # a header is ~100 bytes and our largest claims ~2 kB; anything far larger is not ours


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS (RFC 7515 §7.1), to choose the key; raises ``jwt.DecodeError``.

    Written here rather than ``jwt.get_unverified_header`` because PyJWT checks every character of every
    segment in a Python generator before reading the header: for a 2 kB presentation token that was a tenth
    of a scan's CPU time, spent twice since ``jwt.decode`` repeats it. Only the header segment is read here,
    as strictly (base64url alphabet, no padding, canonical length); ``jwt.decode`` then checks the whole
    token and its signature exactly as before.
    """
    return _json_segment(token, 0, "header")


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a compact JWS before its signature is checked (to route it, e.g. by issuer)."""
    return _json_segment(token, 1, "payload")


def _json_segment(token: str, index: int, name: str) -> dict[str, Any]:
    parts = token.split(".")
    segment = parts[index] if len(parts) == 3 else ""  # header.payload.signature, nothing else
    if len(segment) > MAX_SEGMENT or len(segment) % 4 == 1 or not _SEGMENT.fullmatch(segment):
        raise jwt.DecodeError(f"Invalid {name} padding")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError as exc:  # binascii.Error among them
        raise jwt.DecodeError(f"Invalid {name} string") from exc
    return _json_bytes(data, name)


def _json_bytes(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise jwt.DecodeError(f"Invalid {name} string: {exc}") from exc
    if not isinstance(value, dict):
        raise jwt.DecodeError(f"Invalid {name} string: must be a json object")
    return value


_ALPHABET_BYTES = re.compile(rb"[A-Za-z0-9_-]*")


def decode_segment(segment: bytes, name: str) -> bytes:
    """A base64url JWS segment, read by PyJWT's rules (see ``_JWS``); raises ``jwt.DecodeError``."""
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4 != 0):
        raise jwt.DecodeError(f"Invalid {name} padding")
    if len(stripped) % 4 == 1 or not _ALPHABET_BYTES.fullmatch(stripped):
        raise jwt.DecodeError(f"Invalid {name} padding")
    try:
        decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    except (TypeError, binascii.Error) as err:
        raise jwt.DecodeError(f"Invalid {name} padding") from err
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
        raise jwt.DecodeError(f"Invalid {name} padding")
    return decoded


class _JWS(jwt.PyJWS):
    """PyJWS with its base64url segment check done by a regular expression instead of a Python loop.

    PyJWT checks every character of every segment against the base64url alphabet in a generator
    (GHSA-hxm8-2xgr-2p9m): for a 2 kB presentation token that was 75 µs of a scan's time on the event
    loop. The rules are PyJWT's own, in the same order (at most two ``=`` and only on a whole quantum,
    the alphabet, no length of 4n+1, canonical encoding); ``tests/hub/test_bearer.py`` checks both
    agree on arbitrary input.
    """

    _decode_base64url_segment = staticmethod(decode_segment)


class _JWT(jwt.PyJWT):
    def __init__(self) -> None:
        super().__init__()
        self._jws = _JWS(options=self._get_sig_options())


_decoder = _JWT()
decode_jwt = _decoder.decode
"""``jwt.decode`` with the same checks and the faster segment reader: every JWT the hub verifies goes through it."""


def decode_es256(
    token: str, key: ec.EllipticCurvePublicKey, *, issuer: str | None, require: Iterable[str]
) -> dict[str, Any]:
    """The claims of a compact ES256 JWS that ``key`` verifies; ``decode_jwt`` with the lifetime checks off.

    For the token the hub checks in bulk, a scanned presentation code. Same checks, same order, same
    exceptions as PyJWT: every segment read as strictly as ``_JWS`` reads it, the header's ``kid``, ``crit``
    refused (PyJWT supports only ``b64``, which we never set), ``alg``, the signature over the segments as
    sent, a JSON-object payload, required claims, ``iss``, ``aud`` absent or empty (no audience is
    expected), and ``sub``/``jti`` strings when present. Written here because PyJWT's layers around the one
    ECDSA call (options merging, a second header parse, algorithm lookup, generic claim checks) cost nearly
    as much as the call: ``jwt.decode`` was 32 % of the audit process's time per scan, the ECDSA check
    inside it 18 % (py-spy, 64 clients). ``tests/hub/test_bearer.py`` checks that both agree on valid,
    mutated and forged tokens.
    """
    claims = _json_bytes(_es256_payload(token, key), "payload")
    for claim in require:
        if claims.get(claim) is None:
            raise jwt.MissingRequiredClaimError(claim)
    if issuer is not None and claims.get("iss") != issuer:
        raise jwt.InvalidIssuerError("Invalid issuer")
    if claims.get("aud"):
        raise jwt.InvalidAudienceError("Invalid audience")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise jwt.exceptions.InvalidSubjectError("Subject must be a string")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise jwt.exceptions.InvalidJTIError("JWT ID must be a string")
    return claims


def _es256_payload(token: str, key: ec.EllipticCurvePublicKey) -> bytes:
    """The payload bytes of a compact JWS whose header and ES256 signature check out."""
    parts = token.encode("ascii").split(b".")
    if len(parts) != 3:
        raise jwt.DecodeError("Not enough segments")
    header_segment, payload_segment, signature_segment = parts
    header = _json_bytes(decode_segment(header_segment, "header"), "header")
    payload = decode_segment(payload_segment, "payload")
    signature = decode_segment(signature_segment, "crypto")
    if "kid" in header and not isinstance(header["kid"], str):
        raise jwt.InvalidTokenError("Key ID header parameter must be a string")
    if "crit" in header or header.get("b64", True) is False:  # RFC 7797 detached payloads: never ours
        raise jwt.InvalidTokenError("Unsupported critical extension")
    if header.get("alg") != "ES256":
        raise jwt.InvalidAlgorithmError("The specified alg value is not allowed")
    if len(signature) != 64:
        raise jwt.InvalidSignatureError("Signature verification failed")
    der = encode_dss_signature(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
    try:
        key.verify(der, header_segment + b"." + payload_segment, _ECDSA_SHA256)
    except InvalidSignature:
        raise jwt.InvalidSignatureError("Signature verification failed") from None
    return payload


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def public_key(jwk: dict[str, Any]) -> Any:
    """The verification key of a public JWK, parsed once per distinct key (PyJWK parsing costs a scan ~4 %)."""
    return _parsed_key(tuple(sorted((name, value) for name, value in jwk.items() if isinstance(value, str))))


@functools.lru_cache(maxsize=256)
def _parsed_key(members: tuple[tuple[str, str], ...]) -> Any:
    return jwt.PyJWK(dict(members)).key


@dataclass(frozen=True)
class AccessClaims:
    client_id: str
    department_code: str
    scopes: frozenset[str]
    jti: str
    expires_at: int


def issue_access_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    department_code: str,
    scopes: Iterable[str],
    ttl_seconds: int,
    now: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """ES256 JWT with DESIGN.md §4 claims (iss, sub, aud, exp, iat, jti, scope, dept)."""
    iat = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": client_id,
        "client_id": client_id,  # RFC 9068 §2.2
        "aud": audience,
        "iat": iat,
        "exp": iat + ttl_seconds,
        "jti": secrets.token_urlsafe(16),
        "scope": " ".join(sorted(scopes)),
        "dept": department_code,
    }
    headers = {"kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers=headers), claims


def decode_access_token(
    token: str, *, resolve_key: Callable[[str], Any | None], issuer: str, audience: str
) -> AccessClaims:
    """Verify signature, ``typ``, issuer, audience and expiry; raise a typed error otherwise."""
    if not token.isascii():  # RFC 7515 §7.1: base64url and dots; PyJWT would fail to encode a lone surrogate
        raise TokenInvalid("the access token is not a JWT")
    try:
        header = unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenInvalid("the access token is not a JWT") from exc
    # RFC 8725 §3.1: the algorithm is fixed by us, never taken from the token.
    if header.get("alg") not in ACCESS_TOKEN_ALGORITHMS or header.get("typ") != ACCESS_TOKEN_TYPE:
        raise TokenInvalid("the access token was not issued by this hub")
    public_key = resolve_key(str(header.get("kid", "")))
    if public_key is None:
        raise TokenInvalid("the access token's signing key is unknown or retired")
    try:
        claims = decode_jwt(
            token,
            public_key,
            algorithms=ACCESS_TOKEN_ALGORITHMS,
            audience=audience,
            issuer=issuer,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "scope", "dept"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenAudienceMismatch(f"this API accepts tokens for '{audience}' only") from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"the access token failed verification: {type(exc).__name__}") from exc
    return AccessClaims(
        client_id=str(claims["sub"]),
        department_code=str(claims["dept"]),
        scopes=frozenset(str(claims["scope"]).split()),
        jti=str(claims["jti"]),
        expires_at=int(claims["exp"]),
    )


def algorithms_for_jwk(jwk: dict[str, Any]) -> list[str]:
    """Asymmetric algorithms a registered JWK may sign with (RFC 7518 §3.1); never HS* or none."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "EC":
        return {"P-256": ["ES256"], "P-384": ["ES384"], "P-521": ["ES512"]}.get(str(crv), [])
    if kty == "RSA":
        return ["RS256", "PS256"]
    if kty == "OKP" and crv == "Ed25519":
        return ["EdDSA"]
    return []


def select_jwk(jwks: dict[str, Any], kid: str | None) -> dict[str, Any] | None:
    keys: list[dict[str, Any]] = list(jwks.get("keys", []))
    if kid is not None:
        return next((k for k in keys if k.get("kid") == kid), None)
    return keys[0] if len(keys) == 1 else None


def decode_with_jwk(
    token: str,
    header: dict[str, Any],
    jwk: dict[str, Any],
    *,
    audience: str | list[str],
    issuer: str,
    require: list[str],
) -> dict[str, Any]:
    """Verify a JWT against a registered or published JWK; raises ``jwt.PyJWTError``.

    The algorithm comes from the key type, never from the token (RFC 8725 §3.1), so ``none`` and
    HS256-keyed-with-the-public-key never verify.
    """
    allowed = algorithms_for_jwk(jwk)
    if header.get("alg") not in allowed:
        msg = f"must be signed with one of {allowed}"
        raise jwt.InvalidAlgorithmError(msg)
    claims: dict[str, Any] = decode_jwt(
        token,
        public_key(jwk),
        algorithms=allowed,
        audience=audience,
        issuer=issuer,
        leeway=CLOCK_SKEW_SECONDS,
        options={"require": require},
    )
    return claims


def verify_client_assertion(
    assertion: str,
    *,
    client_id: str,
    jwks: dict[str, Any],
    audiences: list[str],
    max_lifetime_seconds: int,
    now: int | None = None,
) -> dict[str, Any]:
    """RFC 7523 §3 checks of a private_key_jwt assertion, except jti reuse (the caller stores it)."""
    if not assertion.isascii():  # RFC 7515 §7.1, as in decode_access_token
        raise ClientAssertionInvalid("the client assertion is not a JWT")
    try:
        header = unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise ClientAssertionInvalid("the client assertion is not a JWT") from exc
    jwk = select_jwk(jwks, header.get("kid"))
    if jwk is None:
        raise ClientAssertionInvalid("no registered key matches the assertion's kid")
    try:
        claims = decode_with_jwk(
            assertion, header, jwk, audience=audiences, issuer=client_id, require=["iss", "sub", "aud", "exp", "jti"]
        )
    except jwt.ExpiredSignatureError as exc:
        raise ClientAssertionExpired from exc
    except jwt.PyJWTError as exc:
        raise ClientAssertionInvalid(f"the client assertion failed verification: {exc}") from exc
    if claims["sub"] != client_id:
        raise ClientAssertionInvalid("the assertion's sub must equal its iss (the client id)")
    current = int(time.time()) if now is None else now
    issued = int(claims.get("iat", current))
    if int(claims["exp"]) - min(issued, current) > max_lifetime_seconds:
        raise ClientAssertionExpired(f"client assertions may live at most {max_lifetime_seconds} s")
    return claims
