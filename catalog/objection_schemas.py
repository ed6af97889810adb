"""Request and response bodies of objections (数据异议): raise, decide, read with history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["raised", "accepted", "rejected", "flagged", "verifying", "corrected", "upheld", "closed"]
MAX_EVIDENCE = 10
# A record key names a row in the provider's system (a registration number, a row id); it travels in
# webhooks to the departments that fetched the record, so it is a short token, never free text.
RECORD_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceRef(_Strict):
    """A piece of evidence held by the raiser, named by its SHA-256 (the hub stores no documents here)."""

    name: str = Field(min_length=1, max_length=200, examples=["营业执照变更通知书.pdf"])
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of the document")
    description: str | None = Field(default=None, max_length=500)


class _Claim(_Strict):
    item_key: str | None = Field(
        default=None, min_length=1, max_length=64, description="One face field / data item; omitted: the whole record"
    )
    claimed_value: str = Field(min_length=1, max_length=2000, description="What the raiser says the value should be")
    reason: str = Field(min_length=1, max_length=2000)
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class ObjectionIn(_Claim):
    """A department's objection: against a licence, or against one record of a resource."""

    certificate_identifier: str | None = Field(default=None, min_length=1, max_length=120)
    resource_code: str | None = Field(default=None, min_length=1, max_length=40)
    record_key: str | None = Field(default=None, pattern=RECORD_KEY_PATTERN)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        licence = self.certificate_identifier is not None
        record = self.resource_code is not None or self.record_key is not None
        if licence == record:
            msg = "name either certificate_identifier, or resource_code and record_key"
            raise ValueError(msg)
        if record and (self.resource_code is None or self.record_key is None):
            msg = "an objection against a resource record names both resource_code and record_key"
            raise ValueError(msg)
        return self


class HolderObjectionIn(_Claim):
    """A holder's objection: against one of their own licences only."""

    certificate_identifier: str = Field(min_length=1, max_length=120)


class NoteIn(_Strict):
    """accept, flag, verify, close: an optional note."""

    note: str | None = Field(default=None, max_length=2000)


class ReasonIn(_Strict):
    """reject, correct, uphold: the handler must say why (it is the answer the raiser gets)."""

    reason: str = Field(min_length=1, max_length=2000)


class ObjectionEventOut(BaseModel):
    from_status: Status | None
    to_status: Status
    actor_type: str
    actor: str = Field(description="Department USCC; 'holder' when the holder acted")
    note: str | None
    time: datetime


class ObjectionSummary(BaseModel):
    """What lists show: identifiers, state and deadline, no claimed values."""

    id: str
    status: Status
    raised_by_type: Literal["department", "holder"]
    raised_by: str | None = Field(description="The raising department's USCC; null for a holder")
    handler_code: str
    certificate_identifier: str | None
    resource_code: str | None
    record_key: str | None
    item_key: str | None
    due_date: date = Field(description="Local (Asia/Shanghai) day by which the handler accepts or rejects")
    overdue: bool = Field(description="Still awaiting the accept/reject decision after its due date")
    decided_at: datetime | None
    created_at: datetime
    modified_at: datetime
    closed_at: datetime | None


class ObjectionOut(ObjectionSummary):
    claimed_value: str
    reason: str
    evidence: list[dict[str, Any]]
    resolution: str | None
    corrected_identifier: str | None
    allowed_next: list[Status]
    events: list[ObjectionEventOut]
