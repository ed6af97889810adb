"""Webhook tables: registered endpoints, the event outbox, and one delivery row per event and endpoint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, UTCDateTime

# BigInteger primary keys must stay INTEGER on SQLite to be its rowid alias (autoincrement).
BigId = BigInteger().with_variant(Integer(), "sqlite")

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"


class WebhookEndpoint(Base):
    """A department's receiver URL; its signing secret is stored only encrypted under the master key."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex, not guessable
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    types: Mapped[list[str]] = mapped_column(JSON)  # CloudEvents types it wants; empty = every type
    master_kid: Mapped[str] = mapped_column(String(32))  # which master key wrapped the secret
    # AES-256-GCM(nonce ‖ ct ‖ tag) of the 32 secret bytes; AAD binds the endpoint id.
    encrypted_secret: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookEvent(Base):
    """The outbox: a CloudEvent for one department, written in the transaction of the change it reports.

    ``body`` is the exact bytes sent (and signed) on every attempt, so a retry is byte-identical.
    The event id is unique per department, not globally: one occurrence (a revoked licence) told to
    several departments is one CloudEvent (same ``source`` + ``id``, CloudEvents 1.0 §3.1.1).
    """

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("department_code", "event_id"),)

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200))  # CloudEvents ``id``; Standard Webhooks ``webhook-id``
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    type: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # application/cloudevents+json
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """One event to one endpoint: pending until a 2xx answer (delivered) or the last failed attempt (dead).

    ``next_attempt_at`` doubles as a lease: claiming an attempt moves it past the attempt's timeout,
    so a redelivered task message or the redrive job finds the row not due and sends nothing.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_pk", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex
    event_pk: Mapped[int] = mapped_column(ForeignKey("webhook_events.pk"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None once delivered or dead
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))  # short and secret-free: shown to admins
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
