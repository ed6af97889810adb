"""Access requests (共享申请, 供需对接): a department asks for data items of a resource, for named matters.

Validation: the resource is published and shareable (不予共享 resources and items cannot be requested,
国发〔2016〕51号 第五条), every item exists in its current version, every matter exists and is handled by
the requesting department (a purpose it cannot claim is no purpose), and a department does not
request its own resource. A request for an unconditional resource whose every requested item is
unconditional is approved at once and its grant created; anything conditional goes to the provider,
who must answer within ``access_request_working_days`` working days (10 by default, 51号文 第十条).
Services flush, never commit; the HTTP layer audits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog import grants
from catalog.grants import Viewer
from catalog.matters import ACTIVE as MATTER_ACTIVE
from catalog.models import AccessRequest, DataItem, Grant, Matter, Resource
from catalog.workdays import WorkingCalendar, load_calendar, local_day
from hub.clock import utcnow
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.settings import Settings
from hub.webhooks import service as webhooks

PENDING, APPROVED, REJECTED, WITHDRAWN = "pending", "approved", "rejected", "withdrawn"
STATUSES = (PENDING, APPROVED, REJECTED, WITHDRAWN)
UNCONDITIONAL, CONDITIONAL, NONE = "unconditional", "conditional", "none"
EVENT_TYPE = "cn.gov.licence-hub.catalog.access-request.{verb}"


class AccessRequestNotFound(NotFound):
    code = "access_request_not_found"
    title = "No access request has this id"


class ResourceUnknown(InvalidInput):
    code = "resource_unknown"
    title = "The resource does not exist or is not published"


class ResourceNotShareable(Forbidden):
    code = "resource_not_shareable"
    title = "The resource is not shared (不予共享) and cannot be requested"


class ItemsUnknown(InvalidInput):
    code = "access_request_items_unknown"
    title = "Requested data items are not in the resource"


class ItemNotShareable(Forbidden):
    code = "item_not_shareable"
    title = "Requested data items are not shared (不予共享)"


class MatterUnknown(InvalidInput):
    code = "matter_unknown"
    title = "A named matter does not exist or is withdrawn"


class MatterNotHandledByConsumer(InvalidInput):
    code = "matter_not_handled_by_consumer"
    title = "A department may request data only for matters it handles"


class OwnResourceRequest(InvalidInput):
    code = "access_request_own_resource"
    title = "A department needs no grant for its own resource"


class AccessRequestAlreadyDecided(Conflict):
    code = "access_request_already_decided"
    title = "The access request is no longer pending"


class DecisionReasonRequired(InvalidInput):
    code = "decision_reason_required"
    title = "A rejection must give its reason"


class ApprovalItemsInvalid(InvalidInput):
    code = "approval_items_invalid"
    title = "An approval may grant only items that were requested"


class WithdrawForbidden(Forbidden):
    code = "access_request_withdraw_forbidden"
    title = "Only the requesting department may withdraw its request"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccessRequestIn(_Strict):
    resource_code: str = Field(min_length=1, max_length=40)
    items: list[str] = Field(min_length=1, max_length=500, description="Data item keys, listed explicitly")
    matter_codes: list[str] = Field(min_length=1, max_length=50, description="Matters the data is used for")
    purpose: str = Field(min_length=1, max_length=2000, examples=["办理就业登记时核验企业登记信息"])
    legal_basis: str = Field(min_length=1, max_length=2000, examples=["《就业服务与就业管理规定》第六十二条"])
    valid_days: int | None = Field(default=None, ge=1, le=grants.MAX_VALID_DAYS, description="Default: setting")
    quota_per_day: int | None = Field(default=None, ge=1, le=100_000_000, description="Calls a day; none = no limit")


class ApproveIn(_Strict):
    """The provider's approval; each term defaults to what was requested (consent: personal data → yes)."""

    reason: str | None = Field(default=None, max_length=2000)
    items: list[str] | None = Field(default=None, min_length=1, max_length=500)
    valid_days: int | None = Field(default=None, ge=1, le=grants.MAX_VALID_DAYS)
    quota_per_day: int | None = Field(default=None, ge=1, le=100_000_000)
    consent_required: bool | None = None


class RejectIn(_Strict):
    reason: str | None = Field(default=None, max_length=2000, description="Required")


class WithdrawIn(_Strict):
    reason: str | None = Field(default=None, max_length=2000)


@dataclass(frozen=True)
class Submitted:
    request: AccessRequest
    grant: Grant | None  # set when approved automatically


def today() -> date:
    """The local (Asia/Shanghai) calendar day deadlines count from; tests replace it."""
    return local_day(utcnow())


def calendar(settings: Settings) -> WorkingCalendar:
    return load_calendar(settings.working_calendar_file)


def deadline_state(cal: WorkingCalendar, request: AccessRequest, day: date) -> tuple[bool, int | None]:
    """(overdue, working days left) of a request on ``day``; only a pending request has a deadline.

    Due on the due date itself (0 left); overdue from the next day (negative: working days late).
    """
    if request.status != PENDING:
        return False, None
    return day > request.due_date, cal.working_days_between(day, request.due_date)


def submit(session: Session, settings: Settings, body: AccessRequestIn, *, consumer_code: str) -> Submitted:
    """Validate and record a request; approve it at once when everything requested is unconditional."""
    resource = _published_resource(session, body.resource_code)
    if resource.provider_code == consumer_code:
        raise OwnResourceRequest("the provider reads its own resource without a grant")
    items = _requestable_items(session, resource, body.items)
    matter_codes = _consumer_matters(session, body.matter_codes, consumer_code)
    now, day = utcnow(), today()
    automatic = resource.share_type == UNCONDITIONAL and all(i.share_type == UNCONDITIONAL for i in items)
    request = AccessRequest(
        id=grants.new_id("ar"), consumer_code=consumer_code, provider_code=resource.provider_code,
        resource_code=resource.code, resource_version=resource.version, items=[i.key for i in items],
        matter_codes=matter_codes, purpose=body.purpose, legal_basis=body.legal_basis,
        valid_days=body.valid_days or settings.grant_default_valid_days, quota_per_day=body.quota_per_day,
        status=PENDING, due_date=day if automatic else calendar(settings).add_working_days(
            day, settings.access_request_working_days
        ),
        created_at=now,
    )  # fmt: skip
    session.add(request)
    session.flush()
    if not automatic:
        _notify(session, settings, request, request.provider_code, "submitted")
        return Submitted(request, None)
    grant = _grant(session, request, resource, items, consent_required=None, valid_days=None, quota=None)
    _decided(request, APPROVED, "无条件共享，自动批准", "system", now, grant_id=grant.id)
    return Submitted(request, grant)


def get_request_or_raise(session: Session, request_id: str, viewer: Viewer, *, lock: bool = False) -> AccessRequest:
    """The request if ``viewer`` is its consumer, its provider or an admin; others get the same 404."""
    request = session.get(AccessRequest, request_id, with_for_update=lock or None)
    if request is None or not (
        viewer.admin or viewer.department_code in {request.consumer_code, request.provider_code}
    ):
        raise AccessRequestNotFound(f"no access request {request_id}")
    return request


def request_for_decision(session: Session, request_id: str, viewer: Viewer) -> AccessRequest:
    """The locked pending request if ``viewer`` is its provider or an admin (others: 404)."""
    request = session.get(AccessRequest, request_id, with_for_update=True)
    if request is None or not (viewer.admin or viewer.department_code == request.provider_code):
        raise AccessRequestNotFound(f"no access request {request_id}")
    _pending(request)
    return request


def approve(session: Session, settings: Settings, request: AccessRequest, body: ApproveIn, *, decided_by: str) -> Grant:
    """Approve a locked pending request and create its grant (items re-checked against the resource now)."""
    _pending(request)
    wanted = request.items if body.items is None else list(dict.fromkeys(body.items))
    if extra := [key for key in wanted if key not in request.items]:
        raise ApprovalItemsInvalid(f"not requested: {', '.join(extra)}", items=extra)
    resource = _published_resource(session, request.resource_code)
    items = _requestable_items(session, resource, wanted)
    grant = _grant(
        session, request, resource, items, consent_required=body.consent_required, valid_days=body.valid_days,
        quota=body.quota_per_day,
    )  # fmt: skip
    _decided(request, APPROVED, body.reason, decided_by, utcnow(), grant_id=grant.id)
    _notify(session, settings, request, request.consumer_code, "approved")
    return grant


def reject(
    session: Session, settings: Settings, request: AccessRequest, reason: str | None, *, decided_by: str
) -> AccessRequest:
    """Reject a locked pending request; the reason is required and goes back to the consumer."""
    _pending(request)
    if reason is None or not reason.strip():
        raise DecisionReasonRequired("give the reason for the rejection (国发〔2016〕51号: 说明理由)")
    _decided(request, REJECTED, reason.strip(), decided_by, utcnow(), grant_id=None)
    _notify(session, settings, request, request.consumer_code, "rejected")
    return request


def withdraw(session: Session, request_id: str, viewer: Viewer, reason: str | None) -> AccessRequest:
    """The consumer (or an admin) withdraws its pending request."""
    request = get_request_or_raise(session, request_id, viewer, lock=True)
    if not viewer.admin and viewer.department_code != request.consumer_code:
        raise WithdrawForbidden("the provider decides a request; only its consumer withdraws it")
    _pending(request)
    _decided(request, WITHDRAWN, reason, viewer.department_code, utcnow(), grant_id=None)
    return request


def list_requests(
    session: Session,
    viewer: Viewer,
    *,
    role: grants.Role | None = None,
    status: str | None = None,
    overdue: bool = False,
    day: date | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[AccessRequest]:
    """Requests the viewer may see, in id order (keyset ``after``); ``overdue`` = pending past the due date."""
    stmt = select(AccessRequest).order_by(AccessRequest.id).limit(limit)
    if role == "consumer":
        stmt = stmt.where(AccessRequest.consumer_code == viewer.department_code)
    elif role == "provider":
        stmt = stmt.where(AccessRequest.provider_code == viewer.department_code)
    elif not viewer.admin:
        stmt = stmt.where(
            or_(
                AccessRequest.consumer_code == viewer.department_code,
                AccessRequest.provider_code == viewer.department_code,
            )
        )
    if status is not None:
        stmt = stmt.where(AccessRequest.status == status)
    if overdue:
        stmt = stmt.where(AccessRequest.status == PENDING, AccessRequest.due_date < (day or today()))
    if after is not None:
        stmt = stmt.where(AccessRequest.id > after)
    return list(session.scalars(stmt))


# ----------------------------------------------------------------------------- internals


def _pending(request: AccessRequest) -> None:
    if request.status != PENDING:
        raise AccessRequestAlreadyDecided(
            f"the request is {request.status}; only a pending request can be decided or withdrawn",
            access_request_status=request.status,
        )


def _decided(
    request: AccessRequest, status: str, reason: str | None, by: str, at: datetime, *, grant_id: str | None
) -> None:
    request.status, request.decision_reason, request.decided_by, request.decided_at = status, reason, by, at
    request.grant_id = grant_id


def _grant(
    session: Session,
    request: AccessRequest,
    resource: Resource,
    items: Sequence[DataItem],
    *,
    consent_required: bool | None,
    valid_days: int | None,
    quota: int | None,
) -> Grant:
    consent = grants.default_consent(resource, items) if consent_required is None else consent_required
    return grants.create_grant(
        session, consumer_code=request.consumer_code, resource=resource, items=[i.key for i in items],
        matter_codes=request.matter_codes, purpose=request.purpose, legal_basis=request.legal_basis,
        consent_required=consent, valid_days=valid_days or request.valid_days,
        quota_per_day=quota if quota is not None else request.quota_per_day, request_id=request.id,
    )  # fmt: skip


def _published_resource(session: Session, code: str) -> Resource:
    resource = session.get(Resource, code)
    if resource is None or resource.status != "published":
        raise ResourceUnknown(f"no published resource {code}", resource_code=code)
    if resource.share_type == NONE:
        raise ResourceNotShareable(
            f"resource {code} is 不予共享; its legal basis: {resource.legal_basis or '-'}", resource_code=code
        )
    return resource


def _requestable_items(session: Session, resource: Resource, keys: Sequence[str]) -> list[DataItem]:
    """The resource's items for ``keys`` (requested order, duplicates dropped), all shareable."""
    wanted = list(dict.fromkeys(keys))
    rows = {
        row.key: row
        for row in session.scalars(
            select(DataItem).where(DataItem.resource_code == resource.code, DataItem.key.in_(wanted))
        )
    }
    if unknown := [key for key in wanted if key not in rows]:
        raise ItemsUnknown(f"not in resource {resource.code}: {', '.join(unknown)}", items=unknown)
    if closed := [key for key in wanted if rows[key].share_type == NONE]:
        raise ItemNotShareable(f"不予共享 items cannot be requested: {', '.join(closed)}", items=closed)
    return [rows[key] for key in wanted]


def _consumer_matters(session: Session, codes: Sequence[str], consumer_code: str) -> list[str]:
    wanted = list(dict.fromkeys(codes))
    found = {m.code: m for m in session.scalars(select(Matter).where(Matter.code.in_(wanted)))}
    if unknown := [c for c in wanted if c not in found or found[c].status != MATTER_ACTIVE]:
        raise MatterUnknown(f"unknown or withdrawn matters: {', '.join(unknown)}", matter_codes=unknown)
    if foreign := [c for c in wanted if found[c].department_code != consumer_code]:
        raise MatterNotHandledByConsumer(f"handled by other departments: {', '.join(foreign)}", matter_codes=foreign)
    return wanted


def _notify(session: Session, settings: Settings, request: AccessRequest, department: str, verb: str) -> None:
    webhooks.emit(
        session, settings, department_code=department, type=EVENT_TYPE.format(verb=verb), subject=request.id,
        event_id=f"access-request-{request.id}-{verb}",
        data={"access_request_id": request.id, "resource_code": request.resource_code, "status": request.status,
              "consumer_code": request.consumer_code, "due_date": request.due_date.isoformat(),
              "grant_id": request.grant_id},
    )  # fmt: skip
