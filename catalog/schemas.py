"""Vocabularies of the resource catalogue and the request/response bodies of resources and data items.

The vocabularies follow the core metadata of 《政务信息资源目录编制指南（试行）》 (发改高技〔2017〕1272号) and
GB/T 21063.3: each is a mapping from the stable code used in the API and the database to its Chinese label.
Other catalogue modules (access requests, DCAT export) import them from here.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.text import MULTILINE, ONE_LINE

# 共享类型 (国发〔2016〕51号 第九条): who may use the data.
SHARE_TYPES: dict[str, str] = {"unconditional": "无条件共享", "conditional": "有条件共享", "none": "不予共享"}
# How open a share type is; a smaller number is more open.
SHARE_OPENNESS: dict[str, int] = {"unconditional": 0, "conditional": 1, "none": 2}

# 信息资源格式 (编制指南 5.2 核心元数据「信息资源格式」的分类).
FORMATS: dict[str, str] = {
    "电子文件": "电子文件（OFD、PDF、XML、TXT 等）",
    "电子表格": "电子表格（ET、XLS 等）",
    "数据库": "数据库（结构化数据表）",
    "图形图像": "图形图像（JPG、PNG 等）",
    "流媒体": "流媒体（音频、视频）",
    "自描述格式": "自描述格式（JSON、XML 等，格式自带描述）",
    "服务接口": "服务接口（API）",
    "其他": "其他",
}

# 共享方式: how a consumer gets the data once granted.
SHARE_METHODS: dict[str, str] = {
    "api": "接口调用",
    "file": "文件下载",
    "database": "库表交换",
    "licence": "电子证照调用",
}

# 开放属性 (to the public, distinct from sharing between departments).
OPEN_ATTRIBUTES: dict[str, str] = {"open": "无条件开放", "conditional": "有条件开放", "closed": "不予开放"}

# 更新周期, with the EU Publications Office frequency authority code each maps to
# (http://publications.europa.eu/resource/authority/frequency/<CODE>, used by DCAT-AP 3 dct:accrualPeriodicity).
UPDATE_FREQUENCIES: dict[str, str] = {
    "realtime": "实时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "quarterly": "每季度",
    "semiannual": "每半年",
    "annual": "每年",
    "irregular": "不定期",
    "never": "不更新",
}
UPDATE_FREQUENCY_EU: dict[str, str] = {
    "realtime": "UPDATE_CONT",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "semiannual": "ANNUAL_2",
    "annual": "ANNUAL",
    "irregular": "IRREG",
    "never": "NEVER",
}

# 数据类型 of a data item.
DATA_TYPES: dict[str, str] = {
    "string": "字符型",
    "integer": "整数型",
    "number": "数值型",
    "date": "日期型",
    "datetime": "日期时间型",
    "boolean": "布尔型",
    "binary": "二进制",
}

ShareType = Literal["unconditional", "conditional", "none"]
Format = Literal["电子文件", "电子表格", "数据库", "图形图像", "流媒体", "自描述格式", "服务接口", "其他"]
ShareMethod = Literal["api", "file", "database", "licence"]
OpenAttribute = Literal["open", "conditional", "closed"]
UpdateFrequency = Literal[
    "realtime", "daily", "weekly", "monthly", "quarterly", "semiannual", "annual", "irregular", "never"
]
DataType = Literal["string", "integer", "number", "date", "datetime", "boolean", "binary"]
ResourceStatus = Literal["published", "withdrawn"]

# Classification codes: 类 one digit 1–3, lower levels append digits (catalog.classifications).
CLASSIFICATION_CODE = r"^[1-3][0-9]{0,11}$"
# Resource code = classification code + "/" + 6-digit sequence (编制指南: 前段码/后段码).
RESOURCE_CODE = r"^[1-3][0-9]{0,11}/[0-9]{6}$"
RESOURCE_CODE_RE = re.compile(RESOURCE_CODE)
ITEM_KEY = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200), ONE_LINE]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=40), ONE_LINE]
# A summary is dct:description in the DCAT export, which DCAT-AP requires non-blank.
Summary = Annotated[str, StringConstraints(min_length=1, max_length=4000), MULTILINE]
ResourceCode = Annotated[str, StringConstraints(pattern=RESOURCE_CODE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataItemIn(_Strict):
    """A data item (信息项): its stable key, name, type and its own share type."""

    key: str = Field(pattern=ITEM_KEY, description="Stable identifier, e.g. a column or licence face field name")
    name: Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE] = Field(
        examples=["统一社会信用代码"]
    )
    data_type: DataType = "string"
    length: int | None = Field(default=None, ge=1, le=1_000_000)
    description: str | None = Field(default=None, max_length=2000)
    share_type: ShareType
    share_conditions: str | None = Field(default=None, max_length=2000)
    personal: bool = Field(default=False, description="The item is personal information (PIPL art. 4)")


class ResourceIn(_Strict):
    """A new data resource with the core metadata of the catalogue."""

    classification_code: str = Field(pattern=CLASSIFICATION_CODE, description="An existing 类/项/目/细目 node")
    name: Text200 = Field(examples=["企业基本登记信息"])
    summary: Summary
    format: Format
    items: list[DataItemIn] = Field(min_length=1, max_length=500)
    share_type: ShareType
    share_conditions: str | None = Field(default=None, max_length=4000, description="Required for conditional")
    legal_basis: str | None = Field(default=None, max_length=4000, description="Required for none (不予共享)")
    share_method: ShareMethod
    open_attribute: OpenAttribute = "closed"
    update_frequency: UpdateFrequency
    publish_date: date
    related_codes: list[ResourceCode] = Field(default_factory=list, max_length=50)
    keywords: list[Keyword] = Field(default_factory=list, max_length=20)
    provider_code: str | None = Field(default=None, description="Admin only: the providing department's USCC")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _kept(**constraints: Any) -> Any:
    """A PATCH field that is optional but never null: omitted keeps the value, which the resource must have."""
    return Field(default=None, json_schema_extra=_no_default, **constraints)


class ResourcePatch(_Strict):
    """A change to a resource: only the fields sent change; ``items`` replaces the whole item list.

    Only ``share_conditions`` and ``legal_basis`` may be cleared with null; every other field is required
    metadata, so null is refused rather than stored.
    """

    name: Text200 = _kept()
    summary: Summary = _kept()
    format: Format = _kept()
    items: list[DataItemIn] = _kept(min_length=1, max_length=500)
    share_type: ShareType = _kept()
    share_conditions: str | None = Field(default=None, max_length=4000)
    legal_basis: str | None = Field(default=None, max_length=4000)
    share_method: ShareMethod = _kept()
    open_attribute: OpenAttribute = _kept()
    update_frequency: UpdateFrequency = _kept()
    publish_date: date = _kept()
    related_codes: list[ResourceCode] = _kept(max_length=50)
    keywords: list[Keyword] = _kept(max_length=20)
    change_summary: str | None = Field(default=None, max_length=2000, description="Recorded with a new version")


class WithdrawIn(_Strict):
    reason: str = Field(min_length=1, max_length=2000)


class DataItemOut(BaseModel):
    key: str
    name: str
    data_type: str
    length: int | None
    description: str | None
    share_type: str
    share_conditions: str | None
    personal: bool


class ResourceSummaryOut(BaseModel):
    """A search hit: enough to choose a resource, without its items."""

    code: str
    name: str
    classification_code: str
    provider_code: str
    provider_name: str
    share_type: str
    update_frequency: str
    format: str
    status: str
    version: int
    licence_type_code: str | None
    modified_at: datetime


class ResourceOut(ResourceSummaryOut):
    """A resource with all its core metadata and the data items of its current version."""

    summary: str
    share_conditions: str | None
    legal_basis: str | None
    share_method: str
    open_attribute: str
    publish_date: date
    related_codes: list[str]
    keywords: list[str]
    contains_personal_data: bool
    sequence: int
    created_at: datetime
    withdrawn_at: datetime | None
    withdrawal_reason: str | None
    items: list[DataItemOut]


class FacetCount(BaseModel):
    value: str
    label: str
    count: int


class ResourcePage(BaseModel):
    total: int
    limit: int
    offset: int
    next_offset: int | None
    items: list[ResourceSummaryOut]
    facets: dict[str, list[FacetCount]] | None = Field(
        default=None, description="provider, share_type, classification (top level), update_frequency"
    )


class VersionSummaryOut(BaseModel):
    version: int
    change_summary: str | None
    created_by: str
    created_at: datetime


class VersionOut(VersionSummaryOut):
    resource_code: str
    snapshot: dict[str, Any]


class ClassificationOut(BaseModel):
    code: str
    name: str
    level: int
    parent_code: str | None
