"""Licence types (证照类型): defined by a defining authority, issued by the departments it names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.codes import validate_uscc
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from licences.face import validate_face_schema
from licences.identifiers import validate_type_code
from licences.models import LicenceType
from licences.render import TEMPLATES
from licences.schemas import LicenceTypeIn


class LicenceTypeNotFound(NotFound):
    code = "licence_type_not_found"
    title = "No licence type has this code"


class LicenceTypeExists(Conflict):
    code = "licence_type_exists"
    title = "A licence type with this code already exists"


class LicenceTypeNotAuthorised(Forbidden):
    code = "licence_type_not_authorised"
    title = "This department may not issue licences of this type"


class LicenceTypeInvalid(InvalidInput):
    code = "licence_type_invalid"
    title = "The licence type definition is invalid"


# The catalogue (issue 6) publishes each type as a resource of the 电子证照 base catalogue; it
# registers here so this domain does not import it. Each hook returns the resource code or None.
CatalogueHook = Callable[[Session, LicenceType], "str | None"]
catalogue_hooks: list[CatalogueHook] = []


def define_type(session: Session, body: LicenceTypeIn) -> LicenceType:
    """Create a licence type after checking its code, issuers, template and face schema."""
    type_code = validate_type_code(body.certificate_type_code)
    authority = type_code[:18]
    issuers = sorted({validate_uscc(code) for code in body.issuer_codes})
    if body.template not in TEMPLATES:
        raise LicenceTypeInvalid(f"template must be one of {', '.join(sorted(TEMPLATES))}")
    if (body.validity.kind == "years") != (body.validity.years is not None):
        raise LicenceTypeInvalid("validity.years is required for kind 'years' and only for it")
    schema = validate_face_schema(body.face_schema)
    if session.get(LicenceType, type_code) is not None:
        raise LicenceTypeExists(f"licence type {type_code} already exists")
    now = utcnow()
    row = LicenceType(
        type_code=type_code, name=body.certificate_type_name, holder_type=body.holder_type,
        defining_authority_code=authority, defining_authority_name=body.defining_authority_name,
        validity=body.validity.model_dump(exclude_none=True), issuer_codes=issuers, face_schema=schema,
        template=body.template, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(row)
    session.flush()
    for hook in catalogue_hooks:
        row.catalogue_resource_code = hook(session, row) or row.catalogue_resource_code
    return row


def get_type_or_raise(session: Session, type_code: str) -> LicenceType:
    row = session.get(LicenceType, type_code)
    if row is None:
        raise LicenceTypeNotFound(f"no licence type {type_code}")
    return row


def list_types(session: Session) -> list[LicenceType]:
    return list(session.scalars(select(LicenceType).order_by(LicenceType.type_code)))


def authorise_issuer(licence_type: LicenceType, department_code: str) -> None:
    if department_code not in licence_type.issuer_codes:
        raise LicenceTypeNotAuthorised(
            f"department {department_code} is not among the issuing authorities of {licence_type.type_code}"
        )


def add_issuer(session: Session, type_code: str, department_code: str) -> LicenceType:
    row = get_type_or_raise(session, type_code)
    code = validate_uscc(department_code)
    if code not in row.issuer_codes:
        row.issuer_codes = sorted([*row.issuer_codes, code])
        row.updated_at = utcnow()
    return row


def type_out(row: LicenceType) -> dict[str, Any]:
    """DESIGN.md §4 GET /v1/licence-types item, plus the rest of the definition."""
    return {
        "certificate_type_code": row.type_code,
        "certificate_type_name": row.name,
        "holder_type": row.holder_type,
        "face_schema": row.face_schema,
        "defining_authority_code": row.defining_authority_code,
        "defining_authority_name": row.defining_authority_name,
        "validity": row.validity,
        "issuer_codes": row.issuer_codes,
        "template": row.template,
        "catalogue_resource_code": row.catalogue_resource_code,
    }


def ensure_demo_types(
    session: Session, issuer_codes: list[str], *, only: tuple[str, ...] | None = None
) -> list[LicenceType]:
    """The five demo types (licences.demo_types), created once; ``issuer_codes`` may issue each of them."""
    from licences.demo_types import DEMO_TYPES  # noqa: PLC0415 - demo data only when asked for

    rows = []
    for demo in DEMO_TYPES:
        if only is not None and demo.type_code not in only:
            continue
        row = session.get(LicenceType, demo.type_code)
        if row is None:
            row = define_type(
                session,
                LicenceTypeIn(
                    certificate_type_code=demo.type_code, certificate_type_name=demo.name,
                    holder_type=demo.holder_type, defining_authority_name=demo.defining_authority_name,
                    validity=demo.validity, issuer_codes=issuer_codes, face_schema=demo.face_schema,
                    template=demo.template,
                ),
            )  # fmt: skip
        for code in issuer_codes:
            add_issuer(session, demo.type_code, code)
        rows.append(row)
    return rows
