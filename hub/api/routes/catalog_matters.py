"""Catalogue routes: matters (政务服务事项) and their materials (DESIGN.md §4 ``/v1/catalog/matters``).

Every department with ``catalog:read`` reads every matter (the 事项目录 is public within the hub);
the handling department (or an admin) creates and changes its matters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from catalog import matters
from catalog.matters import MatterIn, MatterUpdate
from catalog.models import Material, Matter
from hub.api.deps import RuntimeDep, SessionDep, require_scope
from hub.api.receipts import caller_receipt
from hub.api.schemas import ReceiptOut
from hub.errors import Forbidden
from hub.identity import service as identity
from hub.identity.tokens import AccessClaims

router = APIRouter(tags=["catalog"])
Reader = Annotated[AccessClaims, require_scope("catalog:read")]
Writer = Annotated[AccessClaims, require_scope("catalog:write")]


class MaterialOut(BaseModel):
    code: str
    name: str
    required: bool
    licence_type_codes: list[str]
    resource_codes: list[str]


class MatterOut(BaseModel):
    code: str
    name: str
    department_code: str
    description: str | None
    status: str
    created_at: datetime
    modified_at: datetime
    materials: list[MaterialOut]
    receipt: ReceiptOut | None = None


class MatterDepartmentForbidden(Forbidden):
    code = "matter_department_forbidden"
    title = "Only an admin may create a matter for another department"


def matter_out(matter: Matter, materials: list[Material], receipt: ReceiptOut | None = None) -> MatterOut:
    return MatterOut(
        code=matter.code, name=matter.name, department_code=matter.department_code, description=matter.description,
        status=matter.status, created_at=matter.created_at, modified_at=matter.modified_at, receipt=receipt,
        materials=[
            MaterialOut(code=m.code, name=m.name, required=m.required, licence_type_codes=m.licence_type_codes,
                        resource_codes=m.resource_codes)
            for m in materials
        ],
    )  # fmt: skip


def _materials(session: Session, code: str) -> list[Material]:
    return matters.materials_by_matter(session, [code])[code]


@router.post("/v1/catalog/matters", status_code=status.HTTP_201_CREATED)
def create_matter(
    body: MatterIn, response: Response, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> MatterOut:
    """A matter handled by the caller (an admin may name the handling department) with its materials.

    Matter codes: 6–64 characters of A–Z, 0–9 and single inner hyphens (国家政务服务事项基本目录 style).
    Each material names the licence types and/or published resources that can satisfy it.
    """
    department = body.department_code or caller.department_code
    if department != caller.department_code:
        if "admin" not in caller.scopes:
            raise MatterDepartmentForbidden("a department creates matters it handles itself")
        identity.get_department_or_raise(session, department)
    matter = matters.create_matter(session, body, department_code=department)
    receipt = caller_receipt(
        session, runtime, caller, "catalog.matter.created", matter_code=matter.code,
        extra={"department_code": department, "materials": str(len(body.materials))},
    )  # fmt: skip
    response.headers["Location"] = f"/v1/catalog/matters/{matter.code}"
    return matter_out(matter, _materials(session, matter.code), receipt)


@router.get("/v1/catalog/matters")
def list_matters(
    session: SessionDep,
    _caller: Reader,
    department_code: Annotated[str | None, Query(max_length=18)] = None,
    after: Annotated[str | None, Query(max_length=64, description="Last code of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[MatterOut]:
    """Matters in code order, optionally of one handling department (keyset pagination with ``after``)."""
    rows = matters.list_matters(session, department_code=department_code, after=after, limit=limit)
    materials = matters.materials_by_matter(session, [m.code for m in rows])
    return [matter_out(m, materials[m.code]) for m in rows]


@router.get("/v1/catalog/matters/{code}")
def get_matter(code: str, session: SessionDep, _caller: Reader) -> MatterOut:
    matter = matters.get_matter_or_raise(session, code)
    return matter_out(matter, _materials(session, code))


@router.put("/v1/catalog/matters/{code}")
def update_matter(code: str, body: MatterUpdate, session: SessionDep, runtime: RuntimeDep, caller: Writer) -> MatterOut:
    """Replace name, description and materials (materials kept by code, unlisted ones removed)."""
    owner = None if "admin" in caller.scopes else caller.department_code
    matter = matters.update_matter(session, matters.matter_for_change(session, code, owner), body)
    receipt = caller_receipt(
        session, runtime, caller, "catalog.matter.updated", matter_code=matter.code,
        extra={"materials": str(len(body.materials))},
    )  # fmt: skip
    return matter_out(matter, _materials(session, matter.code), receipt)
