"""Request and response bodies of the kernel endpoints (auth, admin, holders, operations)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.text import ONE_LINE

HolderType = Literal["111", "001"]
# A department name is shown on pages, PDFs and as dct:publisher in the DCAT export: never blank.
DepartmentName = Annotated[str, StringConstraints(min_length=1, max_length=200), ONE_LINE]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReceiptOut(BaseModel):
    """Signed promise that the audit entry of this call is in the log (DESIGN.md §4)."""

    leaf_index: int
    leaf_hash: str
    integrated_time: int
    signature: str


class TokenResponse(BaseModel):
    """RFC 6749 §5.1, plus the audit receipt of the issuance."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    receipt: ReceiptOut


class DepartmentIn(Strict):
    code: str = Field(min_length=1, max_length=40, description="Unified social credit code (GB 32100)")
    name: DepartmentName = Field(examples=["某市市场监督管理局"])
    level: Literal["national", "provincial", "municipal", "county", "township"] = "municipal"
    area_code: str = Field(min_length=6, max_length=12, pattern=r"^[0-9]+$", description="GB/T 2260 division code")


class DepartmentOut(BaseModel):
    code: str
    name: str
    level: str
    area_code: str
    active: bool
    receipt: ReceiptOut | None = None


class ClientIn(Strict):
    department_code: str = Field(min_length=1, max_length=40)
    scopes: str = Field(min_length=1, max_length=500, description="Space-separated scopes (RFC 6749 §3.3)")
    name: str | None = Field(default=None, max_length=200)
    jwks: dict[str, Any] | None = Field(
        default=None, description="Public JWK set for private_key_jwt; omit for client_secret_basic"
    )


class ClientOut(BaseModel):
    client_id: str
    department_code: str
    scopes: str
    token_endpoint_auth_method: str
    active: bool
    client_secret: str | None = Field(default=None, description="Shown once, at creation")
    receipt: ReceiptOut | None = None


class DevTokenIn(Strict):
    holder_type: HolderType
    holder_code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    nonce: str | None = Field(default=None, max_length=200)


class DevTokenOut(BaseModel):
    id_token: str


class HolderOut(BaseModel):
    holder_type: str
    holder_code: str
    name: str


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
