"""Signing keys of the hub, private halves stored only encrypted under the master key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, UTCDateTime


class HubKey(Base):
    __tablename__ = "hub_keys"
    __table_args__ = (Index("ix_hub_keys_purpose_created", "purpose", "created_at"),)

    # RFC 7638 JWK thumbprint: a kid anyone can recompute from the published key.
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    algorithm: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    master_key_id: Mapped[str] = mapped_column(String(32))
    private_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
