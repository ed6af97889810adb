"""Exchange records: holder consents (用证授权) and the purpose-stamped copies (加注件) fetches promise."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, UTCDateTime


class Consent(Base):
    """A holder's consent that a department may fetch their data for one matter (and optionally one case)."""

    __tablename__ = "exchange_consents"
    __table_args__ = (Index("ix_exchange_consents_lookup", "holder_type", "holder_code", "matter_code"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder_type: Mapped[str] = mapped_column(String(3))
    holder_code: Mapped[str] = mapped_column(String(18))
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    matter_code: Mapped[str] = mapped_column(ForeignKey("catalog_matters.code"))
    case_number: Mapped[str | None] = mapped_column(String(64), default=None)  # None: any case of the matter
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class PurposeCopy(Base):
    """A purpose-stamped copy (加注件) a fetch promised: rendered and sealed on its first download.

    ``id`` is a 128-bit random capability, but it is not enough alone: downloading also needs an
    access token of the department that fetched (another department gets the same 404 as a missing copy).
    """

    __tablename__ = "exchange_copies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    licence_identifier: Mapped[str] = mapped_column(String(120), index=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    matter_code: Mapped[str] = mapped_column(String(64))
    case_number: Mapped[str] = mapped_column(String(64))
    officer_id: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list[str]] = mapped_column(JSON)  # the granted face fields printed on the copy
    original: Mapped[bool] = mapped_column(default=False)  # the grant covers every face field: the sealed original
    url_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the file URL's short life
    copy_valid_until: Mapped[datetime] = mapped_column(UTCDateTime())  # printed on the copy (有效期至)
    file_sha256: Mapped[str | None] = mapped_column(String(64), default=None)  # set on first download
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
