"""Request bodies of the licences domain, shared by the HTTP API, batch rows and the CLI import."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HolderType = Literal["111", "001"]  # DESIGN.md §3: 111 citizen ID number, 001 USCC


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ValidityRule(_Strict):
    """How a type's validity end is set: none (长期), a number of years from the start, or by the issuer."""

    kind: Literal["permanent", "years", "explicit"]
    years: int | None = Field(default=None, ge=1, le=100)


class LicenceTypeIn(_Strict):
    certificate_type_code: str = Field(min_length=21, max_length=21, description="Defining authority USCC + 3 digits")
    certificate_type_name: str = Field(min_length=1, max_length=100, examples=["食品经营许可证"])
    holder_type: HolderType
    defining_authority_name: str = Field(min_length=1, max_length=200)
    validity: ValidityRule
    issuer_codes: list[str] = Field(min_length=1, max_length=1000, description="USCCs of departments that may issue it")
    face_schema: dict[str, Any] = Field(
        description="JSON Schema 2020-12 of the 照面 fields (title + x-share-type each)"
    )
    template: str = "certificate-a4-portrait"


class LicenceRequest(_Strict):
    """One licence to issue (DESIGN.md §4 POST /v1/licences; also one line of a batch)."""

    certificate_type_code: str = Field(min_length=21, max_length=21)
    certificate_holder_type: HolderType
    certificate_holder_code: str = Field(min_length=18, max_length=18)
    certificate_holder_name: str = Field(min_length=1, max_length=200)
    certificate_number: str | None = Field(default=None, min_length=1, max_length=64)
    certificate_validity_start: date | None = None
    certificate_validity_end: date | None = None
    certificate_area_code: str | None = Field(default=None, pattern=r"^[0-9]{6,12}$")
    face: dict[str, Any]


class RevokeRequest(_Strict):
    reason: str = Field(min_length=1, max_length=500, description="Why the licence is revoked (shown to verifiers)")


class SuspendRequest(_Strict):
    reason: str = Field(min_length=1, max_length=500)


class ReinstateRequest(_Strict):
    reason: str | None = Field(default=None, max_length=500)


class RenewRequest(_Strict):
    certificate_validity_start: date | None = None
    certificate_validity_end: date | None = None


class AmendRequest(_Strict):
    face: dict[str, Any]
    certificate_holder_name: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)
