"""Departments, their API clients, single-use assertion ids, and holders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db import Base, UTCDateTime

DEPARTMENT_LEVELS = ("national", "provincial", "municipal", "county", "township")


class Department(Base):
    """A government department (部门), identified by its unified social credit code."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)  # USCC, GB 32100
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), default="municipal")
    area_code: Mapped[str] = mapped_column(String(12))  # GB/T 2260 administrative division
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    clients: Mapped[list[ApiClient]] = relationship(back_populates="department", lazy="raise")


class ApiClient(Base):
    """An OAuth 2.0 client of a department (RFC 6749 §2): a departmental system calling the API."""

    __tablename__ = "api_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(500))  # space-separated, RFC 6749 §3.3
    # RFC 7591 §2 token_endpoint_auth_method: client_secret_basic or private_key_jwt.
    auth_method: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str | None] = mapped_column(String(200), default=None)  # Argon2id PHC string
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    department: Mapped[Department] = relationship(back_populates="clients", lazy="raise")

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())


class UsedAssertion(Base):
    """A client assertion ``jti`` already spent (RFC 7523 §3 item 7): replays hit the unique key."""

    __tablename__ = "used_assertions"
    __table_args__ = (UniqueConstraint("client_id", "jti"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Holder(Base):
    """A licence holder (持证主体): one account per person or company, keyed by (type, code)."""

    __tablename__ = "holders"
    __table_args__ = (UniqueConstraint("holder_type", "holder_code"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    holder_type: Mapped[str] = mapped_column(String(3))  # 111 citizen ID, 001 USCC
    holder_code: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
