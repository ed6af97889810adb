"""Seal lifecycle use cases: create, list, suspend, reinstate, revoke and rotate departments' seals.

A seal (电子印章) is a name and kind, an image, a key in the key store and a certificate from the
hub's issuing CA. The state machine is small and every transition is checked after locking the row:

    active ⇄ suspended      (certificateHold on the CRL while suspended, RFC 5280 §5.3.1)
    active | suspended → revoked     (CRL entry with the reason; the key is disabled for good)
    active → superseded (rotate)     (the key is disabled; the certificate stays valid, so documents
                                      sealed before the rotation keep verifying)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.keys.masterkey import MasterKeyRing
from hub.storage import BlobStore
from seals import image as seal_image
from seals import service as pki
from seals.keystore import SealKeyStore
from seals.models import IssuedCertificate, Seal

ACTIVE, SUSPENDED, REVOKED, SUPERSEDED = "active", "suspended", "revoked", "superseded"
# Kinds of seal and the text under the star (GA 241-2000 style official seals).
KINDS = {
    "official": None,  # 公章: the department name and star only
    "licence": "电子证照专用章",
    "business": "业务专用章",
    "platform": "电子证照平台专用章",  # the hub's own seal for purpose-stamped copies (加注件)
}
REVOCATION_REASONS = {
    "key_compromise": x509.ReasonFlags.key_compromise,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
    "affiliation_changed": x509.ReasonFlags.affiliation_changed,
    "unspecified": x509.ReasonFlags.unspecified,
}


class SealNotFound(NotFound):
    code = "seal_not_found"
    title = "No such seal"


class SealStateConflict(Conflict):
    code = "seal_state_conflict"
    title = "The seal's current state does not allow this"


class SealNotAvailable(Conflict):
    code = "seal_not_available"
    title = "The department has no active seal of this kind"


@dataclass(frozen=True)
class SealOwner:
    """The department a seal belongs to, as the hub layer knows it (seals imports no identity tables)."""

    code: str
    name: str
    area_code: str


@dataclass(frozen=True)
class SealContext:
    """What the lifecycle needs from the process: key custody, the master key ring, blob storage."""

    keystore: SealKeyStore
    ring: MasterKeyRing
    storage: BlobStore
    public_url: str


def _seal_code(session: Session, owner: SealOwner) -> str:
    """印章编码: the 6-digit area code then a 7-digit serial (GA 241-2000 §5), never reused."""
    area = (owner.area_code or "000000")[:6].ljust(6, "0")
    taken = session.scalar(select(func.count()).select_from(Seal).where(Seal.code.startswith(area))) or 0
    return f"{area}{taken + 1:07d}"


def create_seal(
    session: Session,
    context: SealContext,
    *,
    owner: SealOwner,
    name: str,
    kind: str,
    image: bytes | None = None,
    valid_for: timedelta = pki.SEAL_VALIDITY,
    replaces: Seal | None = None,
) -> Seal:
    """A new key in the key store, its seal certificate, the image (uploaded and sanitised, or drawn)."""
    if kind not in KINDS:
        raise InvalidInput(f"a seal kind is one of {', '.join(KINDS)}")
    name = name.strip()
    code = _seal_code(session, owner)
    if image is not None:
        png, generated = seal_image.sanitise_seal_image(image), False
    else:
        png, generated = seal_image.generate_seal_image(owner.name, seal_name=KINDS[kind], seal_code=code), True
    signer = context.keystore.create_key(session, label=f"{owner.code}/{code}")
    issued, _cert = pki.issue_seal_certificate(
        session,
        context.ring,
        department_code=owner.code,
        department_name=owner.name,
        seal_name=name,
        public_key=signer.public_key,
        public_url=context.public_url,
        valid_for=valid_for,
    )
    now = utcnow()
    seal = Seal(
        id=secrets.token_hex(16),
        department_code=owner.code,
        code=code,
        name=name,
        kind=kind,
        status=ACTIVE,
        key_id=signer.key_id,
        certificate_serial=issued.serial,
        image_sha256=context.storage.put(png),
        image_generated=generated,
        replaces=replaces.id if replaces is not None else None,
        created_at=now,
        updated_at=now,
    )
    session.add(seal)
    session.flush()
    return seal


def list_seals(session: Session, *, department_code: str | None = None) -> list[Seal]:
    query = select(Seal).order_by(Seal.department_code, Seal.created_at)
    if department_code is not None:
        query = query.where(Seal.department_code == department_code)
    return list(session.scalars(query))


def get_seal_or_raise(session: Session, seal_id: str, *, lock: bool = False) -> Seal:
    query = select(Seal).where(Seal.id == seal_id)
    seal = session.scalar(query.with_for_update() if lock else query)
    if seal is None:
        raise SealNotFound(f"no seal with id {seal_id}")
    return seal


def active_seal_for(session: Session, department_code: str, kind: str = "licence") -> Seal:
    """The seal a department issues with: its newest active seal of ``kind``."""
    seal = session.scalar(
        select(Seal)
        .where(Seal.department_code == department_code, Seal.kind == kind, Seal.status == ACTIVE)
        .order_by(Seal.created_at.desc())
        .limit(1)
    )
    if seal is None:
        raise SealNotAvailable(f"department {department_code} has no active {kind} seal; create one under /v1/seals")
    return seal


def certificate_of(session: Session, seal: Seal) -> IssuedCertificate:
    issued = session.get(IssuedCertificate, seal.certificate_serial)
    if issued is None:  # the foreign key makes this unreachable; say so rather than return None
        raise SealNotFound(f"seal {seal.id} has no certificate record")
    return issued


def _transition(seal: Seal, allowed: tuple[str, ...], target: str) -> None:
    if seal.status not in allowed:
        raise SealStateConflict(f"a {seal.status} seal cannot become {target}; allowed from: {', '.join(allowed)}")
    seal.status = target
    seal.updated_at = utcnow()


def suspend_seal(session: Session, context: SealContext, seal_id: str) -> Seal:
    """Temporarily stop a seal: certificateHold on the CRL (RFC 5280 §5.3.1), reversible."""
    seal = get_seal_or_raise(session, seal_id, lock=True)
    _transition(seal, (ACTIVE,), SUSPENDED)
    pki.revoke(session, context.ring, seal.certificate_serial, reason=x509.ReasonFlags.certificate_hold)
    return seal


def reinstate_seal(session: Session, context: SealContext, seal_id: str) -> Seal:
    """End a suspension: the hold leaves the CRL (RFC 5280 §5.3.1 removeFromCRL semantics)."""
    seal = get_seal_or_raise(session, seal_id, lock=True)
    _transition(seal, (SUSPENDED,), ACTIVE)
    pki.release_hold(session, context.ring, seal.certificate_serial)
    return seal


def revoke_seal(session: Session, context: SealContext, seal_id: str, *, reason: str) -> Seal:
    """For good: the certificate is revoked with ``reason`` and the key is disabled."""
    if reason not in REVOCATION_REASONS:
        raise InvalidInput(f"a revocation reason is one of {', '.join(REVOCATION_REASONS)}")
    seal = get_seal_or_raise(session, seal_id, lock=True)
    _transition(seal, (ACTIVE, SUSPENDED), REVOKED)
    pki.revoke(session, context.ring, seal.certificate_serial, reason=REVOCATION_REASONS[reason])
    context.keystore.disable_key(session, seal.key_id)
    return seal


def rotate_seal(session: Session, context: SealContext, seal_id: str, *, owner: SealOwner) -> Seal:
    """A new key and certificate replace the seal's; the old key signs no more, its certificate stays valid."""
    old = get_seal_or_raise(session, seal_id, lock=True)
    if old.department_code != owner.code:
        raise SealNotFound(f"no seal with id {seal_id}")
    _transition(old, (ACTIVE,), SUPERSEDED)
    image = None if old.image_generated else context.storage.get(old.image_sha256)
    new = create_seal(session, context, owner=owner, name=old.name, kind=old.kind, image=image, replaces=old)
    context.keystore.disable_key(session, old.key_id)
    return new
