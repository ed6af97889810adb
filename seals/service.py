"""Hub PKI use cases: create the CAs and the TSA at init, publish roots and CRLs, record revocations."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.codes import validate_uscc
from hub.errors import Conflict, InvalidInput, NotFound
from hub.keys import service as keys
from hub.keys.masterkey import MasterKeyRing
from seals import pki, tsa
from seals.errors import TimestampUnitUnavailable
from seals.models import CertificateAuthority, IssuedCertificate, TimestampUnit

ROOT, ISSUING = "root", "issuing"
CA_KEY_PURPOSE = {ROOT: keys.CA_ROOT, ISSUING: keys.CA_ISSUING}
CRL_REFRESH = timedelta(days=1)  # re-sign long before nextUpdate (pki.CRL_VALIDITY)
SEAL_VALIDITY = timedelta(days=3 * 365)
MAX_SEAL_NAME = 64
TSA_UNIT = "hub"
TSA_VALIDITY = timedelta(days=3 * 365)
TSA_RENEW_BEFORE = timedelta(days=30)


class CertificateAuthorityNotFound(NotFound):
    code = "ca_not_found"
    title = "No such certificate authority; use root or issuing"


def ensure_cas(session: Session, ring: MasterKeyRing, *, organization: str, public_url: str) -> list[str]:
    """Create the root and issuing CA certificates if missing (idempotent); returns what was created."""
    created: list[str] = []
    now = utcnow()
    root = session.get(CertificateAuthority, ROOT)
    root_key = keys.signing_key(session, ring, keys.CA_ROOT)
    if root is None:
        cert = pki.make_root(root_key.private_key, organization=organization, now=now)
        root = _add_ca(session, ROOT, root_key.kid, cert, now)
        created.append(ROOT)
    if session.get(CertificateAuthority, ISSUING) is None:
        issuing_key = keys.signing_key(session, ring, keys.CA_ISSUING)
        cert = pki.make_issuing(
            issuing_key.private_key,
            root_key=root_key.private_key,
            root=x509.load_der_x509_certificate(root.certificate),
            organization=organization,
            crl_url=f"{public_url.rstrip('/')}/v1/pki/crl/{ROOT}.crl",
            now=now,
        )
        _add_ca(session, ISSUING, issuing_key.kid, cert, now)
        # The root issued the issuing CA: record it so it can be revoked like any other certificate.
        session.add(_issued(ROOT, cert))
        created.append(ISSUING)
    session.flush()
    return created


def _add_ca(session: Session, name: str, kid: str, cert: x509.Certificate, now: datetime) -> CertificateAuthority:
    ca = CertificateAuthority(
        name=name,
        key_kid=kid,
        certificate=cert.public_bytes(serialization.Encoding.DER),
        crl=None,
        crl_number=0,
        crl_updated_at=None,
        created_at=now,
    )
    session.add(ca)
    session.flush()
    return ca


def _issued(ca_name: str, cert: x509.Certificate) -> IssuedCertificate:
    return IssuedCertificate(
        serial=f"{cert.serial_number:x}",
        ca_name=ca_name,
        subject=cert.subject.rfc4514_string(),
        certificate=cert.public_bytes(serialization.Encoding.DER),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        revoked_at=None,
        revocation_reason=None,
    )


def get_ca_or_raise(session: Session, name: str) -> CertificateAuthority:
    ca = session.get(CertificateAuthority, name) if name in CA_KEY_PURPOSE else None
    if ca is None:
        raise CertificateAuthorityNotFound(f"no certificate authority named {name!r}")
    return ca


def roots_pem(session: Session) -> str:
    """The trust anchors relying parties install (pdfsig's NSS store, openssl -CAfile)."""
    root = get_ca_or_raise(session, ROOT)
    return x509.load_der_x509_certificate(root.certificate).public_bytes(serialization.Encoding.PEM).decode()


def refresh_crl(session: Session, ring: MasterKeyRing, name: str, *, force: bool = False) -> CertificateAuthority:
    """Re-sign ``name``'s CRL if it is missing, older than a day, or ``force`` (after a revocation)."""
    ca = get_ca_or_raise(session, name)
    now = utcnow()
    if not force and ca.crl is not None and ca.crl_updated_at and now - ca.crl_updated_at < CRL_REFRESH:
        return ca
    revoked = session.scalars(
        select(IssuedCertificate).where(IssuedCertificate.ca_name == name, IssuedCertificate.revoked_at.is_not(None))
    )
    entries = [
        pki.Revoked(int(r.serial, 16), r.revoked_at, x509.ReasonFlags(r.revocation_reason or "unspecified"))
        for r in revoked
        if r.revoked_at is not None
    ]
    key = keys.signing_key(session, ring, CA_KEY_PURPOSE[name])
    ca.crl_number += 1  # RFC 5280 §5.2.3: monotonically increasing
    crl = pki.make_crl(
        key.private_key, x509.load_der_x509_certificate(ca.certificate), entries, number=ca.crl_number, now=now
    )
    ca.crl = crl.public_bytes(serialization.Encoding.DER)
    ca.crl_updated_at = now
    session.flush()
    return ca


def issue_seal_certificate(
    session: Session,
    ring: MasterKeyRing,
    *,
    department_code: str,
    department_name: str,
    seal_name: str,
    public_key: ec.EllipticCurvePublicKey,
    public_url: str,
    valid_for: timedelta = SEAL_VALIDITY,
) -> tuple[IssuedCertificate, x509.Certificate]:
    """Certify a department seal key (kept in the key store; only its public half comes here).

    The caller (hub layer) has checked that the department exists and is active; this domain does
    not import the identity tables (DESIGN.md §2 import direction).
    """
    department_code = validate_uscc(department_code)
    seal_name = seal_name.strip()
    if not seal_name or len(seal_name) > MAX_SEAL_NAME:
        raise InvalidInput(f"a seal name is 1–{MAX_SEAL_NAME} characters")
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise InvalidInput("seal keys are ECDSA P-256 (DESIGN.md §5)")
    issuing = get_ca_or_raise(session, ISSUING)
    key = keys.signing_key(session, ring, keys.CA_ISSUING)
    now = utcnow()
    cert = pki.make_seal_certificate(
        public_key,
        issuing_key=key.private_key,
        issuing=x509.load_der_x509_certificate(issuing.certificate),
        department_name=department_name,
        department_code=department_code,
        seal_name=seal_name,
        crl_url=f"{public_url.rstrip('/')}/v1/pki/crl/{ISSUING}.crl",
        not_before=now - timedelta(minutes=5),
        not_after=now + valid_for,
    )
    issued = _issued(ISSUING, cert)
    session.add(issued)
    session.flush()
    return issued, cert


def revoke(
    session: Session, ring: MasterKeyRing, serial: str, *, reason: x509.ReasonFlags, at: datetime | None = None
) -> IssuedCertificate:
    """Mark a certificate revoked and re-sign its CA's CRL in the same transaction.

    A certificate on hold (RFC 5280 §5.3.1 certificateHold) may be revoked for good: the entry
    then takes the final reason and time. A revoked certificate stays revoked (idempotent).
    """
    issued = _issued_or_raise(session, serial)
    on_hold = issued.revocation_reason == x509.ReasonFlags.certificate_hold.value
    if issued.revoked_at is None or (on_hold and reason != x509.ReasonFlags.certificate_hold):
        issued.revoked_at = at or utcnow()
        issued.revocation_reason = reason.value
        refresh_crl(session, ring, issued.ca_name, force=True)
    return issued


def release_hold(session: Session, ring: MasterKeyRing, serial: str) -> IssuedCertificate:
    """End a certificateHold: the entry leaves the next CRL (RFC 5280 §5.3.1, removeFromCRL)."""
    issued = _issued_or_raise(session, serial)
    if issued.revocation_reason != x509.ReasonFlags.certificate_hold.value:
        raise Conflict(f"certificate {serial} is not on hold")
    issued.revoked_at = None
    issued.revocation_reason = None
    refresh_crl(session, ring, issued.ca_name, force=True)
    return issued


def _issued_or_raise(session: Session, serial: str) -> IssuedCertificate:
    issued = session.get(IssuedCertificate, serial.lower())
    if issued is None:
        raise NotFound(f"no certificate with serial {serial}")
    return issued


def ensure_tsa(session: Session, ring: MasterKeyRing, *, organization: str, public_url: str) -> bool:
    """Certify the hub TSA key if it has no certificate or it expires within 30 days (idempotent).

    The new certificate is recorded under the issuing CA (so it can be revoked) and the
    ``hub`` time-stamping unit points at it; returns whether one was issued. A revoked TSA
    certificate is not silently replaced for the same key: that needs a deliberate decision.
    """
    now = utcnow()
    unit = session.get(TimestampUnit, TSA_UNIT)
    current = session.get(IssuedCertificate, unit.certificate_serial) if unit is not None else None
    issuing = x509.load_der_x509_certificate(get_ca_or_raise(session, ISSUING).certificate)
    if current is not None and (
        current.revoked_at is not None
        or current.not_after - now > TSA_RENEW_BEFORE
        # The issuing CA ends first: a new certificate could not outlive this one, so do not churn.
        or issuing.not_valid_after_utc <= current.not_after
    ):
        return False
    tsa_key = keys.signing_key(session, ring, keys.TSA)
    issuing_key = keys.signing_key(session, ring, keys.CA_ISSUING)
    cert = pki.make_tsa_certificate(
        tsa_key.private_key.public_key(),
        issuing_key=issuing_key.private_key,
        issuing=issuing,
        organization=organization,
        crl_url=f"{public_url.rstrip('/')}/v1/pki/crl/{ISSUING}.crl",
        not_before=now - timedelta(minutes=5),
        not_after=now + TSA_VALIDITY,
    )
    issued = _issued(ISSUING, cert)
    session.add(issued)
    session.flush()  # the unit's foreign key needs the certificate row first
    if unit is None:
        session.add(TimestampUnit(name=TSA_UNIT, key_kid=tsa_key.kid, certificate_serial=issued.serial, created_at=now))
    else:
        unit.key_kid, unit.certificate_serial = tsa_key.kid, issued.serial
    session.flush()
    return True


def get_tsa_certificate_or_raise(session: Session) -> IssuedCertificate:
    """The hub TSA's current certificate, whatever its state (relying parties may still need it)."""
    unit = session.get(TimestampUnit, TSA_UNIT)
    issued = session.get(IssuedCertificate, unit.certificate_serial) if unit is not None else None
    if issued is None:
        raise TimestampUnitUnavailable("the hub TSA has no certificate yet; run `licence-hub init`")
    return issued


# One TimeStamper per TSA certificate and process: the key is decrypted and loaded once, the DER
# templates built once. Keyed by serial, so a renewed certificate is picked up at the next call.
_timestampers: dict[str, tsa.TimeStamper] = {}
_timestampers_lock = threading.Lock()


def get_timestamper(session: Session, ring: MasterKeyRing) -> tsa.TimeStamper:
    """The hub's RFC 3161 time-stamping unit, for ``POST /v1/tsa`` and the PAdES sealer (B-T).

    Per call only the unit's row and certificate row are looked up (primary keys, served from the
    session's identity map after the first call in a session), so revocation, expiry and renewal
    are seen at once; refuses when the certificate is revoked or expired, because every token it
    signed would then fail validation.
    """
    issued = get_tsa_certificate_or_raise(session)
    if issued.revoked_at is not None:
        raise TimestampUnitUnavailable("the hub TSA certificate is revoked; a new TSA key must be certified")
    if issued.not_after <= utcnow():
        raise TimestampUnitUnavailable("the hub TSA certificate has expired; run `licence-hub init` to renew it")
    cached = _timestampers.get(issued.serial)
    if cached is not None:
        return cached
    with _timestampers_lock:
        cached = _timestampers.get(issued.serial)
        if cached is None:
            unit = session.get(TimestampUnit, TSA_UNIT)
            key = keys.signing_key(session, ring, keys.TSA)
            if unit is None or key.kid != unit.key_kid:
                raise TimestampUnitUnavailable("the active TSA key is not the one the TSA certificate certifies")
            certificate = x509.load_der_x509_certificate(issued.certificate)
            issuing = x509.load_der_x509_certificate(get_ca_or_raise(session, ISSUING).certificate)
            # The constructor checks the key against the certificate with one signature.
            cached = tsa.TimeStamper(certificate, [certificate, issuing], tsa.software_signer(key.private_key))
            _timestampers[issued.serial] = cached
    return cached
