"""Issuing e-licences: validate, identify, render, seal, store, then record; one path for API, batches and CLI."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from audit import service as audit
from audit.append import AuditSigner
from audit.entries import AuditEvent, Receipt, holder_ref
from hub.clock import china_today, utcnow
from hub.codes import validate_holder_code
from hub.errors import InvalidInput
from hub.keys.masterkey import MasterKeyRing
from hub.observability import request_id_var
from hub.storage import BlobStore
from licences.face import face_rows, validate_face
from licences.identifiers import make_identifier, parse_identifier
from licences.models import Licence, LicenceSerial, LicenceType
from licences.render import TEMPLATES, LicenceDocument, render_licence
from licences.schemas import LicenceRequest
from licences.types import authorise_issuer, get_type_or_raise
from seals import lifecycle as seal_lifecycle
from seals import service as pki
from seals.lifecycle import SealContext
from seals.sealing import Placement, PreparedSeals, seal_document

VALID, SUSPENDED, REVOKED, EXPIRED, SUPERSEDED = "valid", "suspended", "revoked", "expired", "superseded"
STATUSES = (VALID, SUSPENDED, REVOKED, EXPIRED, SUPERSEDED)
NO_END = "9999-12-31"  # how GB/T 36903 metadata writes a validity without end (长期) in date form


class LicenceHolderTypeMismatch(InvalidInput):
    code = "licence_holder_type_mismatch"
    title = "This licence type is issued to another kind of holder"


class LicenceValidityInvalid(InvalidInput):
    code = "licence_validity_invalid"
    title = "The validity period is not acceptable for this licence type"


@dataclass(frozen=True)
class Actor:
    """Who asked, for the audit entry: a department (and its client), an admin, or the system."""

    actor_type: str
    actor: str
    client_id: str | None = None


SYSTEM = Actor("system", "system")


@dataclass(frozen=True)
class Issuer:
    code: str
    name: str
    area_code: str


@dataclass
class LicenceContext:
    """What issuance needs from the process: storage, seals, the TSA and the audit key."""

    public_url: str
    storage: BlobStore
    master_keys: MasterKeyRing
    seal_context: SealContext
    prepared_seals: PreparedSeals
    audit_signer: Callable[[], AuditSigner]
    timestamped: bool = True  # PAdES B-T (DESIGN.md §5 default); B-B only for benchmarks of the seal step

    def qr_url(self, licence_id: str) -> str:
        """The static QR target printed on the PDF: live status, no face data (DESIGN.md §5)."""
        return f"{self.public_url.rstrip('/')}/v/{licence_id}"

    def holder_ref(self, holder_type: str, holder_code: str) -> str:
        return holder_ref(self.audit_signer().holder_secret, holder_type, holder_code)

    def record(self, session: Session, event: AuditEvent) -> Receipt:
        return audit.record(session, self.audit_signer(), event)


@dataclass(frozen=True)
class Issued:
    licence: Licence
    receipt: Receipt | None  # None when the caller collects the audit events itself (batches)


def licence_event(ctx: LicenceContext, actor: Actor, action: str, licence: Licence, **extra: str) -> AuditEvent:
    return AuditEvent(
        action=action, outcome="ok", actor_type=actor.actor_type, actor=actor.actor, client_id=actor.client_id,
        request_id=request_id_var.get() or "-", time=utcnow(),
        holder_ref=ctx.holder_ref(licence.holder_type, licence.holder_code),
        certificate_identifier=licence.identifier, extra={"certificate_type_code": licence.type_code, **extra},
    )  # fmt: skip


def validity_for(licence_type: LicenceType, start: date | None, end: date | None) -> tuple[date, date | None]:
    """The validity window from the request and the type's rule (years from start, none, or the issuer's)."""
    start = start or china_today()
    rule = licence_type.validity
    if end is None and rule["kind"] == "years":
        years = int(rule["years"])
        try:
            end = start.replace(year=start.year + years) - timedelta(days=1)
        except ValueError:  # 29 February + N years
            end = start.replace(year=start.year + years, day=28)
    if end is None and rule["kind"] == "explicit":
        raise LicenceValidityInvalid(f"licence type {licence_type.type_code} needs certificate_validity_end")
    if end is not None and end < start:
        raise LicenceValidityInvalid("certificate_validity_end is before certificate_validity_start")
    return start, end


def check_request(session: Session, issuer_code: str, request: LicenceRequest) -> tuple[LicenceType, dict[str, Any]]:
    """Everything that can refuse a request before any side effect: type, authorisation, holder, face."""
    licence_type = get_type_or_raise(session, request.certificate_type_code)
    authorise_issuer(licence_type, issuer_code)
    if request.certificate_holder_type != licence_type.holder_type:
        kind = "citizen (111)" if licence_type.holder_type == "111" else "company (001)"
        raise LicenceHolderTypeMismatch(f"{licence_type.name} is issued to a {kind} holder")
    validate_holder_code(request.certificate_holder_type, request.certificate_holder_code)
    face = validate_face(
        licence_type.face_schema,
        request.face,
        holder_name=request.certificate_holder_name,
        holder_code=request.certificate_holder_code,
    )
    return licence_type, face


def allocate_serials(session: Session, issuer_code: str, count: int = 1) -> list[int]:
    """``count`` fresh serials: sequence values on PostgreSQL (never block), the rowid on SQLite."""
    rows = session.execute(
        insert(LicenceSerial).returning(LicenceSerial.serial), [{"issuer_code": issuer_code}] * count
    ).scalars()
    return sorted(rows)


def issue(
    session: Session,
    ctx: LicenceContext,
    issuer: Issuer,
    request: LicenceRequest,
    actor: Actor,
    *,
    batch_id: str | None = None,
    serial: int | None = None,
    audit_events: list[AuditEvent] | None = None,
) -> Issued:
    """Issue one licence; its row is added only after its sealed file is stored (no row without a file).

    With ``audit_events`` the entry is handed back instead of appended: the caller appends a whole
    transaction's entries just before its commit, so the audit sequencer's row lock is held for the
    insert and commit only, not while the next licences render and seal (batches).
    """
    licence_type, face = check_request(session, issuer.code, request)
    start, end = validity_for(licence_type, request.certificate_validity_start, request.certificate_validity_end)
    if serial is None:
        (serial,) = allocate_serials(session, issuer.code)
    serial_text = f"{serial:07d}"
    identifier = str(make_identifier(licence_type.type_code, issuer.code, serial_text))
    now = utcnow()
    licence = Licence(
        id=secrets.token_hex(16), identifier=identifier, serial=serial_text, version="001",
        type_code=licence_type.type_code, issuer_code=issuer.code, certificate_name=licence_type.name,
        type_name=licence_type.name, issuer_name=issuer.name,
        certificate_number=request.certificate_number or f"{issuer.area_code}{now:%Y}{serial_text}",
        holder_type=request.certificate_holder_type, holder_code=request.certificate_holder_code,
        holder_name=request.certificate_holder_name, area_code=request.certificate_area_code or issuer.area_code,
        issue_date=china_today(), validity_start=start, validity_end=end, face=face, status=VALID,
        batch_id=batch_id, created_at=now, updated_at=now,
    )  # fmt: skip
    seal_and_store(session, ctx, licence, licence_type)
    session.add(licence)
    session.flush()
    event = licence_event(ctx, actor, "licence.licence.issued", licence, **_batch(batch_id))
    if audit_events is not None:
        audit_events.append(event)
        return Issued(licence, None)
    return Issued(licence, ctx.record(session, event))


def _batch(batch_id: str | None) -> dict[str, str]:
    return {"batch_id": batch_id} if batch_id else {}


def next_version(
    session: Session,
    ctx: LicenceContext,
    previous: Licence,
    *,
    face: dict[str, Any] | None = None,
    holder_name: str | None = None,
    validity: tuple[date, date | None] | None = None,
) -> Licence:
    """The next version of ``previous`` (renewal or amendment): same serial, version + 1, sealed anew."""
    licence_type = get_type_or_raise(session, previous.type_code)
    new_face = previous.face if face is None else face
    name = holder_name or previous.holder_name
    if face is not None or holder_name is not None:
        new_face = validate_face(licence_type.face_schema, new_face, holder_name=name, holder_code=previous.holder_code)
    start, end = validity or (previous.validity_start, previous.validity_end)
    following = parse_identifier(previous.identifier).next_version()
    now = utcnow()
    licence = Licence(
        id=secrets.token_hex(16), identifier=str(following), serial=previous.serial, version=following.version,
        type_code=previous.type_code, issuer_code=previous.issuer_code, certificate_name=previous.certificate_name,
        type_name=previous.type_name, issuer_name=previous.issuer_name,
        certificate_number=previous.certificate_number, holder_type=previous.holder_type,
        holder_code=previous.holder_code, holder_name=name, area_code=previous.area_code, issue_date=china_today(),
        validity_start=start, validity_end=end, face=new_face, status=VALID, supersedes=previous.identifier,
        created_at=now, updated_at=now,
    )  # fmt: skip
    seal_and_store(session, ctx, licence, licence_type)
    session.add(licence)
    session.flush()
    return licence


def seal_and_store(session: Session, ctx: LicenceContext, licence: Licence, licence_type: LicenceType) -> None:
    """Render the face, seal it with the issuer's active licence seal (B-T), store it; sets file and seal."""
    seal = seal_lifecycle.active_seal_for(session, licence.issuer_code, "licence")
    document = LicenceDocument(
        metadata=_printed_metadata(licence),
        face=face_rows(licence_type.face_schema, licence.face),
        qr_url=ctx.qr_url(licence.id),
    )
    rendered = render_licence(document, template=TEMPLATES[licence_type.template])
    timestamp = pki.get_timestamper(session, ctx.master_keys).stamp_digest if ctx.timestamped else None
    sealed = seal_document(
        session, ctx.seal_context, ctx.prepared_seals, seal, rendered.pdf,
        placement=Placement(rect=rendered.seal_rect, page_index=rendered.page_index), timestamp=timestamp,
    )  # fmt: skip
    licence.file_sha256 = ctx.storage.put(sealed)
    licence.seal_id = seal.id


def _printed_metadata(licence: Licence) -> dict[str, str]:
    return {k: v for k, v in metadata(licence).items() if isinstance(v, str)}


def metadata(licence: Licence) -> dict[str, Any]:
    """DESIGN.md §3 licence metadata (GB/T 36903 names), without the face."""
    return {
        "certificate_identifier": licence.identifier,
        "certificate_name": licence.certificate_name,
        "certificate_number": licence.certificate_number,
        "certificate_type_code": licence.type_code,
        "certificate_type_name": licence.type_name,
        "certificate_version": licence.version,
        "certificate_issuing_authority_name": licence.issuer_name,
        "certificate_issuing_authority_code": licence.issuer_code,
        "certificate_issue_date": licence.issue_date.isoformat(),
        "certificate_validity_start": licence.validity_start.isoformat(),
        "certificate_validity_end": licence.validity_end.isoformat() if licence.validity_end else NO_END,
        "certificate_area_code": licence.area_code,
        "certificate_holder_name": licence.holder_name,
        "certificate_holder_code": licence.holder_code,
        "certificate_holder_type": licence.holder_type,
        "status": licence.status,
    }
