"""Verify-and-fetch (核验调取): a department gets the granted fields of a holder's licence for a matter and case.

Checks run in a fixed order and the first failure is the answer (and the audited error code): the
caller's scope (HTTP dependency); the licence type's catalogue resource and a grant for this department,
matter, window, status, fields and daily quota (``catalog.grant_check``); the holder's consent when the
grant requires one; then the licence itself (held, not revoked, suspended, expired or superseded). The
grant is decided from the identifier's type code *before* the licence is looked up, so a department
without a grant learns nothing about whether the holder holds anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import objections
from catalog.grant_check import GrantCache, GrantDecision, GrantMissing, check_grant
from catalog.models import Matter, Resource
from hub.codes import validate_holder_code
from hub.errors import Conflict, InvalidInput, NotFound
from hub.exchange import consents, copies
from hub.exchange.models import PurposeCopy
from hub.settings import Settings
from licences.holders import live_status
from licences.identifiers import parse_identifier, validate_type_code
from licences.models import Licence, LicenceType

VALID = "valid"


class FetchTargetInvalid(InvalidInput):
    code = "fetch_target_invalid"
    title = "Name exactly one of certificate_type_code or certificate_identifier"


class PurposeMissing(InvalidInput):
    """A fetch states its purpose: matter, case number and officer (X-Road carries them on every call)."""

    code = "purpose_missing"
    title = "A fetch must name the matter, the case number and the officer"

    def __init__(self, missing: str) -> None:
        super().__init__(f"{missing} is required")
        self.code = f"{missing}_missing"  # type: ignore[misc]  # matter_code_missing, case_number_missing, ...


class MatterNotFound(NotFound):
    code = "matter_not_found"
    title = "No active matter has this code"


class LicenceNotHeld(NotFound):
    code = "licence_not_held"
    title = "The holder holds no current licence of this type (or with this identifier)"


class LicenceNotValid(Conflict):
    """The licence exists but may not be relied on; ``code`` names its status."""

    code = "licence_not_valid"
    title = "The licence is not valid"

    def __init__(self, status: str, detail: str, **extensions: object) -> None:
        super().__init__(detail, **extensions)
        self.code = f"licence_{status}"  # type: ignore[misc]  # licence_revoked, licence_suspended, ...


@dataclass(frozen=True)
class FetchRequest:
    department_code: str
    department_name: str
    matter_code: str
    case_number: str
    officer_id: str
    holder_type: str
    holder_code: str
    certificate_type_code: str | None
    certificate_identifier: str | None
    fields: list[str] | None


@dataclass(frozen=True)
class Fetched:
    licence: Licence
    decision: GrantDecision
    fields: list[str]
    disputed: bool
    disputed_items: list[str]
    copy: PurposeCopy


def target_type_code(request: FetchRequest) -> str:
    """The licence type the call is about, from the request alone (no database read)."""
    if (request.certificate_type_code is None) == (request.certificate_identifier is None):
        raise FetchTargetInvalid
    if request.certificate_identifier is not None:
        return parse_identifier(request.certificate_identifier).type_code
    return validate_type_code(request.certificate_type_code or "")


def licence_resource(session: Session, type_code: str) -> Resource | None:
    return session.scalar(
        select(Resource).where(Resource.licence_type_code == type_code, Resource.status == "published").limit(1)
    )


def decide(
    session: Session, cache: GrantCache, request: FetchRequest, type_code: str, *, at: datetime, count: bool
) -> GrantDecision:
    """The grant decision for this department, the type's catalogue resource and the matter."""
    resource = licence_resource(session, type_code)
    if resource is None:  # nothing published, so nothing can have been granted
        raise GrantMissing(f"licence type {type_code} is not published in the catalogue")
    return check_grant(
        session, cache, consumer_code=request.department_code, resource_code=resource.code,
        matter_code=request.matter_code, fields=request.fields, at=at, count=count,
    )  # fmt: skip


def holders_licence(session: Session, request: FetchRequest, type_code: str) -> Licence:
    """The licence named, if it is the holder's; else the holder's newest current licence of the type."""
    query = select(Licence).where(
        Licence.holder_type == request.holder_type, Licence.holder_code == request.holder_code
    )
    if request.certificate_identifier is not None:
        identifier = str(parse_identifier(request.certificate_identifier))
        licence = session.scalar(query.where(Licence.identifier == identifier))
    else:
        licence = session.scalar(
            query.where(Licence.type_code == type_code, Licence.status != "superseded")
            .order_by(Licence.issue_date.desc(), Licence.pk.desc())
            .limit(1)
        )
    if licence is None:  # someone else's identifier is the same answer as a missing one (no IDOR)
        raise LicenceNotHeld
    return licence


def check_licence(licence: Licence) -> None:
    status = live_status(licence)
    if status == VALID:
        return
    extra = {"superseded_by": licence.superseded_by} if status == "superseded" and licence.superseded_by else {}
    raise LicenceNotValid(status, f"the licence is {status}", **extra)


def fetch(session: Session, cache: GrantCache, settings: Settings, request: FetchRequest, *, at: datetime) -> Fetched:
    """Run every check in order, consume one call of the grant's quota, and promise the purpose-stamped copy."""
    for name in ("matter_code", "case_number", "officer_id"):
        if not getattr(request, name).strip():
            raise PurposeMissing(name)
    validate_holder_code(request.holder_type, request.holder_code)
    matter = session.get(Matter, request.matter_code)
    if matter is None or matter.status != "active":
        raise MatterNotFound(f"no active matter {request.matter_code}")
    type_code = target_type_code(request)
    decision = decide(session, cache, request, type_code, at=at, count=True)
    if decision.consent_required:
        consents.check(
            session, consents.HolderKey(request.holder_type, request.holder_code),
            department_code=request.department_code, matter_code=request.matter_code,
            case_number=request.case_number, at=at,
        )  # fmt: skip
    licence = holders_licence(session, request, type_code)
    check_licence(licence)
    licence_type = session.get(LicenceType, licence.type_code)
    face_keys = list(licence_type.face_schema["properties"]) if licence_type else list(licence.face)
    fields = [key for key in face_keys if key in decision.fields]
    dispute = objections.dispute(session, certificate_identifier=licence.identifier)
    purpose = copies.CopyPurpose(
        department_code=request.department_code, department_name=request.department_name,
        matter_code=matter.code, matter_name=matter.name, case_number=request.case_number,
        officer_id=request.officer_id,
    )  # fmt: skip
    copy = copies.promise(
        session, licence, purpose, fields=fields, all_fields=set(face_keys) <= set(fields), now=at,
        url_ttl=timedelta(seconds=settings.exchange_file_url_ttl_seconds),
        valid_for=timedelta(days=settings.exchange_copy_valid_days),
    )  # fmt: skip
    return Fetched(licence, decision, fields, dispute.disputed, dispute.items, copy)
