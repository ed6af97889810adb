"""QR presentation tokens (扫码亮证): a compact JWS (ES256, ``kid``) that lives at most five minutes.

The holder chooses the disclosed fields; the token carries them with their Chinese labels, the licence
metadata a verifier shows and the licence's status list entry, so it verifies offline with the JWKS
and a cached status list (docs/offline-verification.md). A screenshot goes stale within minutes: the
portal rotates the code before ``exp``. Only the metadata named in ``LICENCE_FIELDS`` ever enters a
token, so the holder's ID number travels only inside a face field the holder chose to disclose.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import jwt
import segno

from hub.identity.tokens import algorithms_for_jwk, decode_es256, public_key, select_jwk, unverified_header
from hub.keys.service import SigningKey
from licences.errors import (
    PresentationExpired,
    PresentationInvalid,
    PresentationKeyUnknown,
    PresentationMalformed,
    PresentationSignatureInvalid,
    PresentationTooLarge,
)

__all__ = [
    "ALGORITHMS",
    "LICENCE_FIELDS",
    "MAX_TTL_SECONDS",
    "TOKEN_TYPE",
    "Presentation",
    "PresentationClaims",
    "PresentationExpired",
    "PresentationInvalid",
    "PresentationKeyUnknown",
    "PresentationMalformed",
    "PresentationSignatureInvalid",
    "PresentationTooLarge",
    "issue_presentation",
    "presentation_url",
    "qr_svg",
    "verify_presentation",
]

TOKEN_TYPE = "licence-presentation+jwt"  # noqa: S105 - RFC 8725 §3.11 explicit type, not a secret
ALGORITHMS = ["ES256"]  # fixed by the verifier, never taken from the token (RFC 8725 §3.1)
MAX_TTL_SECONDS = 300  # a photographed code is useless after five minutes
LEEWAY_SECONDS = 5
REQUIRED = ["iss", "iat", "nbf", "exp", "jti", "lic", "disclosed", "status"]
# DESIGN.md §3 metadata a verifier is shown. Holder name, code and type are absent on purpose.
LICENCE_FIELDS = (
    "certificate_identifier",
    "certificate_type_code",
    "certificate_type_name",
    "certificate_issuing_authority_name",
    "certificate_issuing_authority_code",
    "certificate_validity_start",
    "certificate_validity_end",  # None: the licence has no end
)
QR_PIXELS = 240
QR_BORDER = 4  # ISO/IEC 18004 §9.1: the quiet zone is four modules wide
QR_TITLE = "扫码核验电子证照 — scan to verify this licence"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class _Utf8Encoder(json.JSONEncoder):
    r"""UTF-8 JSON, not ``\uXXXX`` escapes: a Chinese character costs 3 bytes instead of 6 in the QR code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ensure_ascii"] = False
        super().__init__(*args, **kwargs)


@dataclass(frozen=True)
class Presentation:
    token: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True)
class PresentationClaims:
    issuer: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    licence: Mapping[str, Any]  # the LICENCE_FIELDS present in the token
    disclosed: Mapping[str, Mapping[str, Any]]  # field name -> {"label": 中文标签, "value": ...}
    status: Mapping[str, Any]  # BitstringStatusListEntry (licences.statuslist.credential_status)
    kid: str


def _metadata(licence: Mapping[str, Any]) -> dict[str, Any]:
    """The verifier-facing subset of the licence metadata, dates as ISO 8601 strings."""
    if not isinstance(licence.get("certificate_identifier"), str) or not licence["certificate_identifier"]:
        raise ValueError("the licence needs a certificate_identifier")
    chosen: dict[str, Any] = {}
    for name in LICENCE_FIELDS:
        if name in licence:
            value = licence[name]
            chosen[name] = value.isoformat() if isinstance(value, date) else value
    return chosen


def _disclosure(disclosed: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    shown: dict[str, dict[str, Any]] = {}
    for name, item in disclosed.items():
        if not isinstance(item, Mapping) or not isinstance(item.get("label"), str) or "value" not in item:
            raise ValueError(f"disclosed field {name!r} must be {{'label': str, 'value': ...}}")
        shown[name] = {"label": item["label"], "value": item["value"]}
    return shown


def issue_presentation(
    key: SigningKey,
    *,
    issuer: str,
    licence: Mapping[str, Any],
    disclosed: Mapping[str, Mapping[str, Any]],
    status: Mapping[str, Any],
    ttl_seconds: int,
    now: datetime,
    jti: str | None = None,
) -> Presentation:
    """Sign a presentation of ``licence`` showing ``disclosed`` (field name -> label and value).

    ``licence`` may be the full metadata: only ``LICENCE_FIELDS`` are copied. ``jti`` defaults to 128
    random bits so each code shown can be told apart in the audit log.
    """
    if key.algorithm not in ALGORITHMS:
        raise ValueError(f"presentations are signed with ES256, not {key.algorithm}")
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"presentation tokens live between 1 and {MAX_TTL_SECONDS} seconds")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if status.get("type") != "BitstringStatusListEntry":
        raise ValueError("status must be a BitstringStatusListEntry (licences.statuslist.credential_status)")
    jti = secrets.token_urlsafe(16) if jti is None else jti
    if not jti:
        raise ValueError("jti must not be empty")
    iat = int(now.timestamp())
    claims = {
        "iss": issuer,
        "iat": iat,
        "nbf": iat,
        "exp": iat + ttl_seconds,
        "jti": jti,
        "lic": _metadata(licence),
        "disclosed": _disclosure(disclosed),
        "status": dict(status),
    }
    token = jwt.encode(
        claims,
        key.private_key,
        algorithm="ES256",
        headers={"kid": key.kid, "typ": TOKEN_TYPE},
        json_encoder=_Utf8Encoder,
    )
    return Presentation(token, jti, datetime.fromtimestamp(iat + ttl_seconds, UTC))


def verify_presentation(
    token: str,
    jwks: Mapping[str, Any],
    *,
    now: datetime,
    issuer: str | None = None,
    leeway_seconds: int = LEEWAY_SECONDS,
) -> PresentationClaims:
    """The claims of a genuine, current presentation token; raises a ``PresentationInvalid`` otherwise.

    Order matters: the signature is checked before the lifetime, so "expired" is only ever said of a
    code the hub really signed; a forged code reads as forged whatever its ``exp``.
    """
    if not token.isascii():  # RFC 7515 §7.1: base64url and dots; PyJWT would fail to encode a lone surrogate
        raise PresentationMalformed("the code is not a compact JWS")
    try:
        header = unverified_header(token)
    except jwt.PyJWTError as exc:
        raise PresentationMalformed("the code is not a compact JWS") from exc
    # RFC 8725 §3.1 and §3.11: our algorithm and our type only, so "none", HS256 keyed with the public
    # key, and other hub tokens (access tokens, status lists) are refused before any key is used.
    if header.get("typ") != TOKEN_TYPE or header.get("alg") not in ALGORITHMS:
        raise PresentationMalformed("the code is not an ES256 licence presentation")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise PresentationMalformed("the code names no signing key (kid)")
    jwk = select_jwk(dict(jwks), kid)
    if jwk is None or algorithms_for_jwk(jwk) != ALGORITHMS:
        raise PresentationKeyUnknown(f"no published ES256 key {kid!r}")
    try:
        # The lifetime is checked below, after the signature, against the caller's ``now``.
        claims: dict[str, Any] = decode_es256(token, public_key(jwk), issuer=issuer, require=REQUIRED)
    except jwt.InvalidSignatureError as exc:
        raise PresentationSignatureInvalid from exc
    except jwt.InvalidIssuerError as exc:
        raise PresentationMalformed(f"the code was issued by another hub, not {issuer}") from exc
    except jwt.PyJWTError as exc:
        raise PresentationMalformed(f"the code's claims are not acceptable ({type(exc).__name__})") from exc
    _check_lifetime(claims, now, leeway_seconds)
    _check_shape(claims)
    return PresentationClaims(
        issuer=claims["iss"],
        jti=claims["jti"],
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        licence=claims["lic"],
        disclosed=claims["disclosed"],
        status=claims["status"],
        kid=kid,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_lifetime(claims: Mapping[str, Any], now: datetime, leeway_seconds: int) -> None:
    if not all(_is_int(claims[name]) for name in ("exp", "nbf", "iat")):
        raise PresentationMalformed("exp, nbf and iat must be integers (RFC 7519 §2 NumericDate)")
    if claims["exp"] - claims["iat"] > MAX_TTL_SECONDS:
        raise PresentationMalformed("the code claims a lifetime longer than five minutes")
    stamp = now.timestamp()
    if stamp > claims["exp"] + leeway_seconds:
        raise PresentationExpired
    if stamp + leeway_seconds < max(claims["nbf"], claims["iat"]):
        raise PresentationMalformed("the code is not valid yet; check the verifier's clock")


def _check_shape(claims: Mapping[str, Any]) -> None:
    """Signed by us, yet checked: a verifier page must never crash on, or print, an unexpected shape."""
    if not isinstance(claims["iss"], str) or not isinstance(claims["jti"], str):
        raise PresentationMalformed("iss and jti must be strings")
    licence, disclosed, status = claims["lic"], claims["disclosed"], claims["status"]
    if not isinstance(licence, dict) or not isinstance(licence.get("certificate_identifier"), str):
        raise PresentationMalformed("the code names no licence")
    if not isinstance(disclosed, dict) or not all(
        isinstance(item, dict) and isinstance(item.get("label"), str) and "value" in item for item in disclosed.values()
    ):
        raise PresentationMalformed("disclosed must map field names to {label, value}")
    if (
        not isinstance(status, dict)
        or status.get("type") != "BitstringStatusListEntry"
        or not isinstance(status.get("statusListCredential"), str)
        or not isinstance(status.get("statusListIndex"), str)
        or not _DECIMAL.fullmatch(status["statusListIndex"])
    ):
        raise PresentationMalformed("status must be a BitstringStatusListEntry")


def presentation_url(public_url: str, token: str) -> str:
    """What the QR code encodes: the hub's scan page for this token (DESIGN.md §4 ``GET /v/{token}``)."""
    return f"{public_url.rstrip('/')}/v/{token}"


def qr_svg(url: str, *, title: str = QR_TITLE) -> str:
    """An inline SVG QR code, about 240 px, error correction M, quiet zone 4, titled for screen readers.

    Level M (ISO/IEC 18004 §6.5.1, ~15 % recovery) keeps a 1-2 kB URL within a code a phone reads
    from a screen; no XML declaration, so it can be placed straight into HTML.
    """
    try:
        code = segno.make(url, error="m", micro=False, boost_error=False)
    except segno.DataOverflowError as exc:
        raise PresentationTooLarge("choose fewer or shorter fields to show in the QR code") from exc
    # A viewBox in modules and a fixed display size: whole-module coordinates at any screen density.
    svg = str(code.svg_inline(scale=1, border=QR_BORDER, omitsize=True, title=title))
    size = f'width="{QR_PIXELS}" height="{QR_PIXELS}" role="img" shape-rendering="crispEdges"'
    return svg.replace("<svg ", f"<svg {size} ", 1)  # role="img": the <title> names the image (WAI-ARIA)
