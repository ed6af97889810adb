"""Audit log tables: entries with their leaf hashes, persisted tree nodes, checkpoints, sequencer state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, UTCDateTime

STATE_ROW = 1


class AuditState(Base):
    """One row: the next leaf index to hand out; the newest checkpoint says how far the tree is integrated.

    ``UPDATE ... RETURNING`` on this row is the single sequencer: it row-locks on PostgreSQL until
    commit and runs under SQLite's single writer, so leaf indexes are gap-free.
    """

    __tablename__ = "audit_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_index: Mapped[int] = mapped_column(BigInteger)
    # The log's C2SP origin, fixed when the hub is initialised: checkpoints and the published
    # verifier key name it, so it must not follow later changes of HUB_PUBLIC_URL.
    origin: Mapped[str | None] = mapped_column(String(200))


class AuditEntry(Base):
    """A leaf of the log: the canonical entry bytes (RFC 8785) and SHA-256(0x00 ‖ bytes).

    The columns beside ``body`` copy fields of the entry for queries; ``body`` is authoritative.
    A redacted entry keeps its leaf hash and loses its body (retention, DESIGN-NOTES.md).
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_holder_time", "holder_ref", "time"),
        Index("ix_audit_entries_department_time", "department_code", "time"),
    )

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    integrated_time: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    department_code: Mapped[str | None] = mapped_column(String(18))
    officer_id: Mapped[str | None] = mapped_column(String(64))
    holder_ref: Mapped[str | None] = mapped_column(String(64))
    certificate_identifier: Mapped[str | None] = mapped_column(String(128), index=True)
    resource_code: Mapped[str | None] = mapped_column(String(64))
    matter_code: Mapped[str | None] = mapped_column(String(64), index=True)
    case_number: Mapped[str | None] = mapped_column(String(64), index=True)
    hidden_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditNode(Base):
    """Hash of the perfect subtree (level ≥ 1, index) covering leaves [index·2^level, (index+1)·2^level)."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A published C2SP checkpoint (signed note); all are kept so any two can be proven consistent."""

    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
