"""Hub PKI records: the certificate authorities, their CRLs, and every certificate they issued."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, UTCDateTime


class CertificateAuthority(Base):
    """``root`` or ``issuing``; the private key lives in ``hub_keys`` (encrypted), never here."""

    __tablename__ = "certificate_authorities"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_kid: Mapped[str] = mapped_column(ForeignKey("hub_keys.kid"))
    certificate: Mapped[bytes] = mapped_column(LargeBinary)  # DER
    crl: Mapped[bytes | None] = mapped_column(LargeBinary)  # DER, latest
    crl_number: Mapped[int] = mapped_column(Integer, default=0)
    crl_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IssuedCertificate(Base):
    """Every certificate a hub CA signed, so it can be revoked and listed on the CRL."""

    __tablename__ = "issued_certificates"

    serial: Mapped[str] = mapped_column(String(48), primary_key=True)  # hex
    ca_name: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.name"), index=True)
    subject: Mapped[str] = mapped_column(String(500))
    certificate: Mapped[bytes] = mapped_column(LargeBinary)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(String(32))


class SealKey(Base):
    """A department seal key held by a key store (seals.keystore).

    The public half always; for the software store only, the private key encrypted under the
    master key (AES-256-GCM).
    """

    __tablename__ = "seal_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    backend: Mapped[str] = mapped_column(String(16))  # software | pkcs11
    label: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # SubjectPublicKeyInfo, DER
    master_kid: Mapped[str | None] = mapped_column(String(32))  # software: which master key wrapped it
    encrypted_private: Mapped[bytes | None] = mapped_column(LargeBinary)  # software: nonce ‖ ct ‖ tag
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # no further signatures


class Seal(Base):
    """A department's electronic seal (电子印章): name, kind, image, key and certificate."""

    __tablename__ = "seals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex, not guessable
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    code: Mapped[str] = mapped_column(String(13), unique=True)  # 印章编码: area code (6) + serial (7)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # official | licence | business | platform
    status: Mapped[str] = mapped_column(String(16))  # active | suspended | revoked | superseded
    key_id: Mapped[str] = mapped_column(ForeignKey("seal_keys.key_id"))
    certificate_serial: Mapped[str] = mapped_column(ForeignKey("issued_certificates.serial"))
    image_sha256: Mapped[str] = mapped_column(String(64))  # content-addressed blob (PNG)
    image_generated: Mapped[bool] = mapped_column(Boolean)
    replaces: Mapped[str | None] = mapped_column(String(32))  # the seal this one rotated out
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TimestampUnit(Base):
    """The hub's RFC 3161 timestamping unit: its certificate (issued by the issuing CA) and key."""

    __tablename__ = "timestamp_units"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)  # "hub"
    key_kid: Mapped[str] = mapped_column(ForeignKey("hub_keys.kid"))
    certificate_serial: Mapped[str] = mapped_column(ForeignKey("issued_certificates.serial"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
