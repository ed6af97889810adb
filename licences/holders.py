"""The holder's side: my licences, showing one by QR (扫码亮证), what a scan shows, my inbox."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.clock import china_today, utcnow
from hub.errors import Conflict, DomainError, InvalidInput
from hub.keys import service as keys
from hub.keys.masterkey import MasterKeyRing
from licences.face import fields_with_share
from licences.issuance import VALID, metadata
from licences.lifecycle import LicenceNotFound
from licences.models import HolderNotification, Licence
from licences.presentation import (
    Presentation,
    PresentationClaims,
    PresentationKeyUnknown,
    issue_presentation,
    presentation_url,
    qr_svg,
    verify_presentation,
)
from licences.status_lists import list_url
from licences.statuslist import credential_status, position
from licences.types import get_type_or_raise

STATIC_ID_LENGTH = 32  # licences.id: the static QR target printed on the PDF


class PresentationFieldUnknown(InvalidInput):
    code = "presentation_field_unknown"
    title = "The licence has no such face field"


class LicenceNotPresentable(Conflict):
    code = "licence_not_presentable"
    title = "Only a valid licence can be shown by QR code"


def holder_licences(session: Session, holder_type: str, holder_code: str) -> list[Licence]:
    stmt = (
        select(Licence)
        .where(Licence.holder_type == holder_type, Licence.holder_code == holder_code)
        .order_by(Licence.created_at.desc(), Licence.pk.desc())
    )
    return list(session.scalars(stmt))


def holder_licence_or_raise(session: Session, holder_type: str, holder_code: str, identifier: str) -> Licence:
    """The holder's own licence; anyone else's is the same 404 as a missing one (no IDOR)."""
    licence = session.scalar(select(Licence).where(Licence.identifier == identifier))
    if licence is None or (licence.holder_type, licence.holder_code) != (holder_type, holder_code):
        raise LicenceNotFound(f"you hold no licence {identifier}")
    return licence


@dataclass(frozen=True)
class Shown:
    presentation: Presentation
    url: str
    qr_svg: str
    fields: list[str]


def present(
    session: Session,
    ring: MasterKeyRing,
    licence: Licence,
    *,
    fields: list[str] | None,
    public_url: str,
    ttl_seconds: int,
) -> Shown:
    """A short-lived signed token disclosing only ``fields`` (default: the unconditionally shareable ones)."""
    if licence.status != VALID:
        raise LicenceNotPresentable(f"the licence is {licence.status}")
    schema = get_type_or_raise(session, licence.type_code).face_schema
    properties: dict[str, Any] = schema.get("properties", {})
    chosen = default_fields(schema) if fields is None else list(dict.fromkeys(fields))
    unknown = [name for name in chosen if name not in properties]
    if unknown:
        raise PresentationFieldUnknown(f"unknown face fields: {', '.join(unknown)}", fields=unknown)
    disclosed = {
        name: {"label": properties[name].get("title", name), "value": licence.face[name]}
        for name in chosen
        if name in licence.face
    }
    list_id, index = position(licence.pk)
    shown = issue_presentation(
        keys.signing_key(session, ring, keys.PRESENTATION),
        issuer=public_url.rstrip("/"),
        licence=_public_metadata(licence),
        disclosed=disclosed,
        status=credential_status(list_url(public_url, list_id), index),
        ttl_seconds=ttl_seconds,
        now=utcnow(),
    )
    url = presentation_url(public_url, shown.token)
    return Shown(shown, url, qr_svg(url), list(disclosed))


DEFAULT_FIELD_MAX_LENGTH = 100  # long texts (经营范围) only when chosen: a QR code holds about 2 kB


def default_fields(schema: dict[str, Any]) -> list[str]:
    """The unconditionally shareable short fields: what a counter clerk needs to see by default."""
    properties = schema.get("properties", {})
    return [
        name
        for name in fields_with_share(schema, "unconditional")
        if int(properties[name].get("maxLength", 0)) <= DEFAULT_FIELD_MAX_LENGTH
    ]


def _public_metadata(licence: Licence) -> dict[str, Any]:
    meta = metadata(licence)
    return {
        name: meta[name]
        for name in (
            "certificate_identifier",
            "certificate_type_code",
            "certificate_type_name",
            "certificate_issuing_authority_name",
            "certificate_issuing_authority_code",
            "certificate_validity_start",
        )
    } | {"certificate_validity_end": licence.validity_end.isoformat() if licence.validity_end else None}


@dataclass
class ScanResult:
    """What a scan shows (DESIGN.md §4 GET /v/{token} JSON) and what the audit entry needs."""

    token_valid: bool
    checked_at: datetime
    status: str | None = None
    licence: Licence | None = None
    disclosed: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    reason: str | None = None
    jti: str | None = None
    expires_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        lic = self.licence
        return {
            "token_valid": self.token_valid,
            "status": self.status,
            "verdict": self.verdict,
            "reason": self.reason,
            "error_code": self.error_code,
            "certificate_identifier": lic.identifier if lic else None,
            "certificate_type_code": lic.type_code if lic else None,
            "certificate_type_name": lic.type_name if lic else None,
            "certificate_issuing_authority_name": lic.issuer_name if lic else None,
            "valid_from": lic.validity_start.isoformat() if lic else None,
            "valid_until": (lic.validity_end.isoformat() if lic.validity_end else None) if lic else None,
            "disclosed": self.disclosed,
            "status_reason": lic.status_reason if lic and lic.status != VALID else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "checked_at": self.checked_at.isoformat(),
        }

    @property
    def verdict(self) -> str:
        """One word for the page: valid, suspended, revoked, expired, superseded, not_genuine, code_expired."""
        if self.error_code == "presentation_expired":
            return "code_expired"
        if not self.token_valid or self.status is None:
            return "not_genuine"
        return self.status


class PublishedKeys:
    """Presentation and status-list verification keys, re-read at most every ``ttl`` seconds.

    Two key queries per scan were a third of its cost. A token with an unknown ``kid`` forces one
    re-read, so a freshly rotated key is accepted at once; a retired key may be accepted up to
    ``ttl`` seconds after it left the JWKS.
    """

    def __init__(self, overlap_seconds: int, ttl: float = 30.0) -> None:
        self.overlap_seconds, self.ttl = overlap_seconds, ttl
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def fresh(self) -> dict[str, Any] | None:
        """The cached keys if they are recent enough; None when they must be read again."""
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return None

    def get(self, session: Session, *, refresh: bool = False) -> dict[str, Any]:
        cached = None if refresh else self.fresh()
        if cached is not None:
            return cached
        jwks = presentation_jwks(session, self.overlap_seconds)
        with self._lock:
            self._cached = (time.monotonic(), jwks)
        return jwks


@dataclass(frozen=True, slots=True)
class ScanCheck:
    """A scanned code after the checks that need no database: what is left is to read its licence."""

    checked_at: datetime
    licence_id: str | None = None  # a static QR code names the licence row
    claims: PresentationClaims | None = None  # a presentation token, signature and claims checked
    refusal: DomainError | None = None  # the token failed those checks: no licence is read


def check_code(
    token: str, jwks: Mapping[str, Any], *, issuer: str, keys_fresh: bool = False, now: datetime | None = None
) -> ScanCheck:
    """The offline half of a scan: recognise a static QR id, or verify a presentation token.

    Raises :class:`PresentationKeyUnknown` when the token's key is not in ``jwks`` from a cache: the
    caller re-reads the published keys and checks again with ``keys_fresh`` (a key may have been
    rotated meanwhile). With keys just read, an unknown key is a refusal like any other.
    """
    now = now or utcnow()
    if len(token) == STATIC_ID_LENGTH and all(c in "0123456789abcdef" for c in token):
        return ScanCheck(now, licence_id=token)
    try:
        claims = verify_presentation(token, jwks, now=now, issuer=issuer)
    except PresentationKeyUnknown as exc:
        if not keys_fresh:
            raise
        return ScanCheck(now, refusal=exc)
    except DomainError as exc:
        return ScanCheck(now, refusal=exc)
    return ScanCheck(now, claims=claims)


def resolve_scans(session: Session, checks: Sequence[ScanCheck]) -> list[ScanResult]:
    """The live half: read every named licence in one query and say what each scan shows."""
    ids = {c.licence_id for c in checks if c.licence_id}
    identifiers = {c.claims.licence["certificate_identifier"] for c in checks if c.claims}
    by_id: dict[str, Licence] = {}
    by_identifier: dict[str, Licence] = {}
    # One query per kind of code, not one with OR (see hub.exchange.verify.resolve: SQLite's planner may scan).
    if ids:
        by_id = {licence.id: licence for licence in session.scalars(select(Licence).where(Licence.id.in_(ids)))}
    if identifiers:
        stmt = select(Licence).where(Licence.identifier.in_(identifiers))
        by_identifier = {licence.identifier: licence for licence in session.scalars(stmt)}
    return [_scan_result(check, by_id, by_identifier) for check in checks]


def _scan_result(check: ScanCheck, by_id: dict[str, Licence], by_identifier: dict[str, Licence]) -> ScanResult:
    now = check.checked_at
    if check.refusal is not None:
        return ScanResult(token_valid=False, checked_at=now, error_code=check.refusal.code, reason=check.refusal.detail)
    if check.licence_id is not None:
        licence = by_id.get(check.licence_id)
        if licence is None:
            return ScanResult(
                token_valid=False, checked_at=now, error_code="licence_not_found", reason="no licence has this code"
            )
        return ScanResult(token_valid=True, checked_at=now, status=live_status(licence), licence=licence)
    claims = check.claims
    assert claims is not None  # noqa: S101 - a check is a static id, a refusal or verified claims
    licence = by_identifier.get(claims.licence["certificate_identifier"])
    if licence is None:  # signed by us, but the licence is gone: never show its data
        return ScanResult(
            token_valid=False, checked_at=now, error_code="licence_not_found", reason="the licence no longer exists"
        )
    return ScanResult(
        token_valid=True, checked_at=now, status=live_status(licence), licence=licence,
        disclosed=dict(claims.disclosed), jti=claims.jti, expires_at=claims.expires_at,
    )  # fmt: skip


def check_scanned(
    session: Session, token: str, keys: PublishedKeys, *, issuer: str, now: datetime | None = None
) -> ScanCheck:
    """:func:`check_code` with the process's cached keys, read again once if the token names an unknown key."""
    try:
        return check_code(token, keys.get(session), issuer=issuer, now=now)
    except PresentationKeyUnknown:  # rotated since we last looked? one fresh read, then decide
        return check_code(token, keys.get(session, refresh=True), issuer=issuer, keys_fresh=True, now=now)


def live_status(licence: Licence) -> str:
    """The status now: a valid licence past its end reads expired even before the job marks it."""
    if licence.status == VALID and licence.validity_end is not None and licence.validity_end < china_today():
        return "expired"
    return licence.status


def presentation_jwks(session: Session, overlap_seconds: int) -> dict[str, Any]:
    """Verification keys for presentation tokens and status lists (offline verifiers cache this)."""
    overlap = timedelta(seconds=overlap_seconds)
    found = [
        *keys.jwks(session, keys.PRESENTATION, overlap)["keys"],
        *keys.jwks(session, keys.STATUS_LIST, overlap)["keys"],
    ]
    return {"keys": [{**jwk, "use": "sig", "alg": "ES256"} for jwk in found]}


def notifications(
    session: Session, holder_type: str, holder_code: str, *, before: int | None, limit: int
) -> list[HolderNotification]:
    stmt = select(HolderNotification).where(
        HolderNotification.holder_type == holder_type, HolderNotification.holder_code == holder_code
    )
    if before is not None:
        stmt = stmt.where(HolderNotification.id < before)
    return list(session.scalars(stmt.order_by(HolderNotification.id.desc()).limit(limit)))
