"""Matters (政务服务事项) and the materials (申请材料) each requires: what makes 免证办 possible.

A material names the licence types (证照类型) and/or catalogue resources that can satisfy it, so the
exchange's materials check can ask which of them the holder already has (OOTS Evidence Broker:
requirement → evidence type). Services flush, never commit; the HTTP layer audits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.models import Material, Matter, Resource
from hub.clock import utcnow
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from licences.models import LicenceType

# 事项编码: the 国家政务服务事项基本目录 codes are upper-case letters and digits (USCC-prefixed
# implementation codes such as 11330100002489045K3000111003000, or basic-catalogue codes with
# hyphen-separated parts); 6–64 characters, no leading/trailing or doubled hyphen.
MATTER_CODE = re.compile(r"^(?=.{6,64}$)[A-Z0-9]+(?:-[A-Z0-9]+)*$")
MATTER_CODE_RULE = "6–64 characters of A–Z, 0–9 and single inner hyphens, e.g. 11330100002489045K3000111003000"
# A material's code is unique within its matter only.
MATERIAL_CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_MATERIALS = 100
ACTIVE = "active"


class MatterNotFound(NotFound):
    code = "matter_not_found"
    title = "No matter has this code"


class MatterExists(Conflict):
    code = "matter_exists"
    title = "A matter with this code already exists"


class MatterCodeInvalid(InvalidInput):
    code = "matter_code_invalid"
    title = "Not a valid matter code (事项编码)"


class MatterNotHandler(Forbidden):
    code = "matter_not_handler"
    title = "Only the matter's handling department (or an admin) may change it"


class MaterialInvalid(InvalidInput):
    code = "material_invalid"
    title = "A material is not valid"


class MaterialUnsatisfiable(InvalidInput):
    code = "material_unsatisfiable"
    title = "A material must name at least one licence type or resource that can satisfy it"


class MaterialLicenceTypeUnknown(InvalidInput):
    code = "material_licence_type_unknown"
    title = "A material names a licence type that does not exist"


class MaterialResourceUnknown(InvalidInput):
    code = "material_resource_unknown"
    title = "A material names a resource that does not exist or is not published"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaterialIn(_Strict):
    code: str = Field(pattern=MATERIAL_CODE, description="Unique within the matter")
    name: str = Field(min_length=1, max_length=200, examples=["营业执照"])
    required: bool = True
    licence_type_codes: list[str] = Field(default_factory=list, max_length=50)
    resource_codes: list[str] = Field(default_factory=list, max_length=50)


class MatterIn(_Strict):
    code: str = Field(min_length=1, max_length=64, description=MATTER_CODE_RULE)
    name: str = Field(min_length=1, max_length=200, examples=["就业登记"])
    description: str | None = Field(default=None, max_length=2000)
    department_code: str | None = Field(
        default=None, max_length=18, description="Handling department (admins only; defaults to the caller)"
    )
    materials: list[MaterialIn] = Field(default_factory=list, max_length=MAX_MATERIALS)


class MatterUpdate(_Strict):
    """The whole matter as it should be: materials not listed are removed, listed ones kept or added."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    materials: list[MaterialIn] = Field(max_length=MAX_MATERIALS)


def check_matter_code(code: str) -> str:
    if not MATTER_CODE.fullmatch(code):
        raise MatterCodeInvalid(f"matter codes are {MATTER_CODE_RULE}")
    return code


def get_matter(session: Session, code: str) -> Matter | None:
    return session.get(Matter, code)


def get_matter_or_raise(session: Session, code: str, *, lock: bool = False) -> Matter:
    matter = session.get(Matter, code, with_for_update=lock or None)
    if matter is None:
        raise MatterNotFound(f"no matter {code}")
    return matter


def list_matters(
    session: Session, *, department_code: str | None = None, after: str | None = None, limit: int = 100
) -> list[Matter]:
    """Matters in code order (keyset pagination: pass the last code as ``after``)."""
    stmt = select(Matter).order_by(Matter.code).limit(limit)
    if department_code is not None:
        stmt = stmt.where(Matter.department_code == department_code)
    if after is not None:
        stmt = stmt.where(Matter.code > after)
    return list(session.scalars(stmt))


def materials_for(session: Session, matter_code: str) -> list[Material]:
    """The materials of an active matter in their listed order (the exchange's materials check).

    Raises ``MatterNotFound`` for an unknown or withdrawn matter.
    """
    matter = get_matter(session, matter_code)
    if matter is None or matter.status != ACTIVE:
        raise MatterNotFound(f"no active matter {matter_code}")
    stmt = select(Material).where(Material.matter_code == matter_code).order_by(Material.position)
    return list(session.scalars(stmt))


def materials_by_matter(session: Session, codes: Sequence[str]) -> dict[str, list[Material]]:
    """Materials of several matters at once (listing pages), each list in position order."""
    out: dict[str, list[Material]] = {code: [] for code in codes}
    if codes:
        stmt = select(Material).where(Material.matter_code.in_(list(codes))).order_by(Material.position)
        for material in session.scalars(stmt):
            out[material.matter_code].append(material)
    return out


def create_matter(session: Session, body: MatterIn, *, department_code: str) -> Matter:
    """A new active matter handled by ``department_code`` with its materials (validated first)."""
    check_matter_code(body.code)
    _validate_materials(session, body.materials)
    if session.get(Matter, body.code) is not None:
        raise MatterExists(f"matter {body.code} already exists")
    now = utcnow()
    matter = Matter(
        code=body.code, name=body.name, department_code=department_code, description=body.description,
        status=ACTIVE, created_at=now, modified_at=now,
    )  # fmt: skip
    try:
        # A concurrent creator of the same code waits on the primary key, then fails here.
        with session.begin_nested():
            session.add(matter)
    except IntegrityError as exc:
        raise MatterExists(f"matter {body.code} already exists") from exc
    for position, material in enumerate(body.materials):
        session.add(_material_row(body.code, position, material))
    session.flush()
    return matter


def update_matter(session: Session, matter: Matter, body: MatterUpdate) -> Matter:
    """Replace name, description and materials of a locked matter; material rows are kept by code."""
    _validate_materials(session, body.materials)
    existing = {m.code: m for m in session.scalars(select(Material).where(Material.matter_code == matter.code))}
    wanted = {m.code for m in body.materials}
    for code, stale in existing.items():
        if code not in wanted:
            session.delete(stale)
    session.flush()  # removed codes free their unique key before re-numbered rows are written
    for position, material in enumerate(body.materials):
        row = existing.get(material.code)
        if row is None:
            session.add(_material_row(matter.code, position, material))
            continue
        row.name, row.position, row.required = material.name, position, material.required
        row.licence_type_codes = _unique(material.licence_type_codes)
        row.resource_codes = _unique(material.resource_codes)
    matter.name, matter.description, matter.modified_at = body.name, body.description, utcnow()
    session.flush()
    return matter


def matter_for_change(session: Session, code: str, department_code: str | None) -> Matter:
    """The locked matter if ``department_code`` handles it (None: an admin)."""
    matter = get_matter_or_raise(session, code, lock=True)
    if department_code is not None and matter.department_code != department_code:
        raise MatterNotHandler(f"matter {code} is handled by another department")
    return matter


def _material_row(matter_code: str, position: int, material: MaterialIn) -> Material:
    return Material(
        matter_code=matter_code, code=material.code, name=material.name, position=position,
        required=material.required, licence_type_codes=_unique(material.licence_type_codes),
        resource_codes=_unique(material.resource_codes),
    )  # fmt: skip


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _validate_materials(session: Session, materials: Sequence[MaterialIn]) -> None:
    seen: set[str] = set()
    type_codes: set[str] = set()
    resource_codes: set[str] = set()
    for material in materials:
        if material.code in seen:
            raise MaterialInvalid(f"material code {material.code} appears twice", material_code=material.code)
        seen.add(material.code)
        if not material.licence_type_codes and not material.resource_codes:
            raise MaterialUnsatisfiable(
                f"material {material.code} names no licence type and no resource", material_code=material.code
            )
        type_codes.update(material.licence_type_codes)
        resource_codes.update(material.resource_codes)
    if type_codes:
        known = set(session.scalars(select(LicenceType.type_code).where(LicenceType.type_code.in_(type_codes))))
        if missing := sorted(type_codes - known):
            raise MaterialLicenceTypeUnknown(f"unknown licence types: {', '.join(missing)}", licence_type_codes=missing)
    if resource_codes:
        stmt = select(Resource.code).where(Resource.code.in_(resource_codes), Resource.status == "published")
        if missing := sorted(resource_codes - set(session.scalars(stmt))):
            raise MaterialResourceUnknown(
                f"unknown or unpublished resources: {', '.join(missing)}", resource_codes=missing
            )
