"""Hub PKI records: the certificate authorities, their CRLs, and every certificate they issued."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
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
