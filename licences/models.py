"""Licence records: types, issued licences and their versions, idempotency keys, batches, reminders, status lists."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, UTCDateTime

# BigInteger primary keys must stay INTEGER on SQLite to be its rowid alias (autoincrement).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class LicenceType(Base):
    """A licence type (证照类型) as its defining authority (定义机构) defines it."""

    __tablename__ = "licence_types"

    type_code: Mapped[str] = mapped_column(String(21), primary_key=True)  # USCC + 3 digits (GB/T 36904)
    name: Mapped[str] = mapped_column(String(100))
    holder_type: Mapped[str] = mapped_column(String(3))  # 111 citizen, 001 company (DESIGN.md §3)
    defining_authority_code: Mapped[str] = mapped_column(String(18))
    defining_authority_name: Mapped[str] = mapped_column(String(200))
    # {"kind": "permanent"} | {"kind": "years", "years": N} | {"kind": "explicit"} (the issuer says)
    validity: Mapped[dict[str, Any]] = mapped_column(JSON)
    issuer_codes: Mapped[list[str]] = mapped_column(JSON)  # departments allowed to issue it
    face_schema: Mapped[dict[str, Any]] = mapped_column(JSON)  # JSON Schema 2020-12, property order = face order
    template: Mapped[str] = mapped_column(String(64))  # licences.render.TEMPLATES key
    # Link point to the catalogue (issue 6): the 电子证照 base catalogue resource this type is published as.
    catalogue_resource_code: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LicenceSerial(Base):
    """The serial allocator: one row per licence serial.

    A database sequence (PostgreSQL) never blocks concurrent issuers, and a rolled-back issuance
    only leaves a gap (serials are unique per issuer, not gap-free).
    """

    __tablename__ = "licence_serials"

    serial: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    issuer_code: Mapped[str] = mapped_column(String(18))


class Licence(Base):
    """One version of an issued e-licence (电子证照); amendments and renewals are new rows."""

    __tablename__ = "licences"
    __table_args__ = (
        Index("ix_licences_holder", "holder_type", "holder_code"),
        Index("ix_licences_status_validity", "status", "validity_end"),
    )

    # Status list position: list = pk // LIST_SIZE, index = pk % LIST_SIZE (licences.statuslist).
    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)  # random: the static QR target /v/{id}
    identifier: Mapped[str] = mapped_column(String(120), unique=True)  # certificate_identifier
    serial: Mapped[str] = mapped_column(String(20))
    version: Mapped[str] = mapped_column(String(3))
    type_code: Mapped[str] = mapped_column(ForeignKey("licence_types.type_code"), index=True)
    issuer_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    certificate_name: Mapped[str] = mapped_column(String(100))
    type_name: Mapped[str] = mapped_column(String(100))  # as printed at issuance
    issuer_name: Mapped[str] = mapped_column(String(200))  # as printed at issuance
    certificate_number: Mapped[str] = mapped_column(String(64))
    holder_type: Mapped[str] = mapped_column(String(3))
    holder_code: Mapped[str] = mapped_column(String(18))
    holder_name: Mapped[str] = mapped_column(String(200))
    area_code: Mapped[str] = mapped_column(String(12))
    issue_date: Mapped[date] = mapped_column(Date)
    validity_start: Mapped[date] = mapped_column(Date)
    validity_end: Mapped[date | None] = mapped_column(Date)  # None: 长期 (no end)
    face: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # valid | suspended | revoked | expired | superseded
    status_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)  # the sealed PDF, content-addressed
    seal_id: Mapped[str] = mapped_column(String(32))
    supersedes: Mapped[str | None] = mapped_column(String(120), default=None)  # previous version's identifier
    superseded_by: Mapped[str | None] = mapped_column(String(120), default=None)
    batch_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    """``Idempotency-Key`` of a POST /v1/licences: the same key and body replays the same licence."""

    __tablename__ = "licence_idempotency_keys"

    department_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    # None while the first request holding the key is still issuing (the row is written first, so a
    # concurrent replay waits on its key instead of issuing twice).
    licence_identifier: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StatusList(Base):
    """A W3C Bitstring Status List.

    Its bits are derived from the licences' statuses; ``version`` changes with every transition in
    the list, so signed copies can be cached exactly.
    """

    __tablename__ = "licence_status_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LicenceBatch(Base):
    """A batch issuance (JSON Lines upload): progress counters and the per-row results below."""

    __tablename__ = "licence_batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # queued | running | completed
    total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class LicenceBatchRow(Base):
    """One line of a batch: issued at most once (the row is the idempotency key of its licence)."""

    __tablename__ = "licence_batch_rows"
    __table_args__ = (Index("ix_licence_batch_rows_status", "batch_id", "status"),)

    batch_id: Mapped[str] = mapped_column(ForeignKey("licence_batches.id"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1-based line number in the upload
    status: Mapped[str] = mapped_column(String(16))  # pending | issued | failed
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # None: the line was not a JSON object
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_detail: Mapped[str | None] = mapped_column(Text, default=None)
    licence_identifier: Mapped[str | None] = mapped_column(String(120), default=None)


class ExpiryReminder(Base):
    """A reminder sent (or being sent) ``days_before`` the end of validity: the key makes it once-only."""

    __tablename__ = "licence_expiry_reminders"

    licence_pk: Mapped[int] = mapped_column(ForeignKey("licences.pk"), primary_key=True)
    days_before: Mapped[int] = mapped_column(Integer, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HolderNotification(Base):
    """An entry in a holder's inbox (GET /v1/me/notifications)."""

    __tablename__ = "holder_notifications"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        Index("ix_holder_notifications_holder", "holder_type", "holder_code", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    holder_type: Mapped[str] = mapped_column(String(3))
    holder_code: Mapped[str] = mapped_column(String(18))
    kind: Mapped[str] = mapped_column(String(48))  # licence.expiring | licence.expired | licence.revoked ...
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    certificate_identifier: Mapped[str | None] = mapped_column(String(120), default=None)
    dedupe_key: Mapped[str] = mapped_column(String(200))  # e.g. expiring:<identifier>:30
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
