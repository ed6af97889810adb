"""Catalogue records (政务数据资源目录).

Classifications, resources with their data items and versions, matters and materials, access requests,
grants and their daily usage, objections and their history.

Share types everywhere are ``unconditional`` (无条件共享), ``conditional`` (有条件共享) and ``none``
(不予共享), the same words the licence face schemas use in ``x-share-type``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Classification(Base):
    """A node of the catalogue classification: 类 (level 1), 项 (2), 目 (3), 细目 (4).

    ``next_sequence`` allocates the sequence part of resource codes under this node; it only ever
    grows (row lock), so a resource code is never reused, even after a resource is withdrawn.
    """

    __tablename__ = "catalog_classifications"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(Integer)  # 1 类, 2 项, 3 目, 4 细目
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("catalog_classifications.code"), default=None)
    next_sequence: Mapped[int] = mapped_column(Integer, default=1)


class Resource(Base):
    """A data resource (数据资源) with the core metadata of the Chinese catalogue; the current version."""

    __tablename__ = "catalog_resources"
    __table_args__ = (
        # No index on status, share type or frequency: they have 2–9 values, so an index never beats a scan,
        # and SQLite's planner walks one (a random row lookup per resource, 3–4× a scan) when it can.
        Index("ix_catalog_resources_modified", "modified_at"),
        # Substring search for Chinese text (catalog.search): a pg_trgm GIN index serves LIKE '%…%' for
        # patterns of 3+ characters on PostgreSQL; on SQLite it is a plain index the search does not use.
        Index(
            "ix_catalog_resources_search_text",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )

    code: Mapped[str] = mapped_column(String(40), primary_key=True)  # classification code + sequence, immutable
    classification_code: Mapped[str] = mapped_column(ForeignKey("catalog_classifications.code"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    provider_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    provider_name: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))  # 资源格式
    share_type: Mapped[str] = mapped_column(String(16))
    share_conditions: Mapped[str | None] = mapped_column(Text, default=None)
    legal_basis: Mapped[str | None] = mapped_column(Text, default=None)  # required for share_type none
    share_method: Mapped[str] = mapped_column(String(16))  # 共享方式: api | file | database | licence
    open_attribute: Mapped[str] = mapped_column(String(16))  # 开放属性: open | conditional | closed
    update_frequency: Mapped[str] = mapped_column(String(16))  # 更新周期
    publish_date: Mapped[date] = mapped_column(Date)
    related_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    contains_personal_data: Mapped[bool] = mapped_column(Boolean, default=False)
    licence_type_code: Mapped[str | None] = mapped_column(String(21), default=None, index=True)  # 电子证照 resources
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="published")  # published | withdrawn
    # Lower-cased name, summary, keywords and item names: what substring / trigram search matches.
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    withdrawal_reason: Mapped[str | None] = mapped_column(Text, default=None)


class DataItem(Base):
    """A data item (信息项) of a resource's current version, with its own share type."""

    __tablename__ = "catalog_data_items"
    __table_args__ = (UniqueConstraint("resource_code", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resource_code: Mapped[str] = mapped_column(ForeignKey("catalog_resources.code"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64))  # stable identifier (a licence face field name, a column)
    name: Mapped[str] = mapped_column(String(100))  # 信息项名称
    data_type: Mapped[str] = mapped_column(String(16))  # string | integer | number | date | datetime | boolean | binary
    length: Mapped[int | None] = mapped_column(Integer, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    share_type: Mapped[str] = mapped_column(String(16))
    share_conditions: Mapped[str | None] = mapped_column(Text, default=None)
    personal: Mapped[bool] = mapped_column(Boolean, default=False)


class ResourceVersion(Base):
    """An immutable snapshot of a resource version (metadata and items), kept for every version."""

    __tablename__ = "catalog_resource_versions"

    resource_code: Mapped[str] = mapped_column(ForeignKey("catalog_resources.code"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    change_summary: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Matter(Base):
    """An administrative matter (政务服务事项) handled by a department."""

    __tablename__ = "catalog_matters"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)  # 事项编码
    name: Mapped[str] = mapped_column(String(200))
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | withdrawn
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Material(Base):
    """A material (申请材料) a matter requires, and what can satisfy it."""

    __tablename__ = "catalog_materials"
    __table_args__ = (UniqueConstraint("matter_code", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    matter_code: Mapped[str] = mapped_column(ForeignKey("catalog_matters.code"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # material_code
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    licence_type_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    resource_codes: Mapped[list[str]] = mapped_column(JSON, default=list)


class AccessRequest(Base):
    """A department's request (共享申请) for data items of a resource, for named matters."""

    __tablename__ = "catalog_access_requests"
    __table_args__ = (Index("ix_catalog_access_requests_open", "status", "due_date"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    consumer_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    provider_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    resource_code: Mapped[str] = mapped_column(ForeignKey("catalog_resources.code"), index=True)
    resource_version: Mapped[int] = mapped_column(Integer)
    items: Mapped[list[str]] = mapped_column(JSON)  # data item keys
    matter_codes: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    valid_days: Mapped[int] = mapped_column(Integer)  # requested grant validity
    quota_per_day: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | rejected | withdrawn
    decision_reason: Mapped[str | None] = mapped_column(Text, default=None)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    due_date: Mapped[date] = mapped_column(Date)  # working-day deadline for the provider's reply
    grant_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Grant(Base):
    """A grant (共享授权): consumer × resource × items × matters, for a window and a daily quota."""

    __tablename__ = "catalog_grants"
    __table_args__ = (Index("ix_catalog_grants_lookup", "consumer_code", "resource_code", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    consumer_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    provider_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    resource_code: Mapped[str] = mapped_column(ForeignKey("catalog_resources.code"), index=True)
    items: Mapped[list[str]] = mapped_column(JSON)
    matter_codes: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    consent_required: Mapped[bool] = mapped_column(Boolean)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    quota_per_day: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(16))  # active | suspended | revoked | expired
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    request_id: Mapped[str | None] = mapped_column(String(32), default=None)
    revision: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every change (cache invalidation)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GrantUsage(Base):
    """Calls made under a grant on one day (Asia/Shanghai calendar day): the quota counter."""

    __tablename__ = "catalog_grant_usage"

    grant_id: Mapped[str] = mapped_column(ForeignKey("catalog_grants.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class CatalogGeneration(Base):
    """Monotonic counters that in-process caches compare against (e.g. ``grants``)."""

    __tablename__ = "catalog_generations"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigId, default=0)


class Objection(Base):
    """An objection (数据异议) against a record or one data item of it."""

    __tablename__ = "catalog_objections"
    __table_args__ = (
        # is_disputed / disputed_items (the exchange, on every fetch) read only these two indexes.
        Index("ix_catalog_objections_licence", "certificate_identifier", "status", "item_key"),
        Index("ix_catalog_objections_record", "resource_code", "record_key", "status", "item_key"),
        Index("ix_catalog_objections_raiser", "raised_by", "status"),
        Index("ix_catalog_objections_due", "status", "due_date"),  # overdue lists
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    raised_by_type: Mapped[str] = mapped_column(String(16))  # department | holder
    raised_by: Mapped[str] = mapped_column(String(64))  # USCC of the department, or the holder's holder_ref
    handler_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)  # issuer / provider
    resource_code: Mapped[str | None] = mapped_column(String(40), default=None)
    certificate_identifier: Mapped[str | None] = mapped_column(String(120), default=None)
    record_key: Mapped[str | None] = mapped_column(String(200), default=None)  # record id within a resource
    item_key: Mapped[str | None] = mapped_column(String(64), default=None)  # one data item / face field, or None
    holder_ref: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    claimed_value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    resolution: Mapped[str | None] = mapped_column(Text, default=None)
    # The licence version that carries the correction (an amendment of ``certificate_identifier``), if any.
    corrected_identifier: Mapped[str | None] = mapped_column(String(120), default=None)
    due_date: Mapped[date] = mapped_column(Date)  # the handler's accept/reject decision is due by this local day
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)  # accepted or rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ObjectionEvent(Base):
    """One transition of an objection: who moved it, from what to what, when and why."""

    __tablename__ = "catalog_objection_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    objection_id: Mapped[str] = mapped_column(ForeignKey("catalog_objections.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
