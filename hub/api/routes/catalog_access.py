"""Catalogue routes: access requests (共享申请) and grants (共享授权) (DESIGN.md §4).

``/v1/catalog/access-requests``: a department requests items of a resource for its matters; the provider
approves or rejects with a reason within the working-day deadline. ``/v1/catalog/grants``: the consumer
reads its grants, the provider (or an admin) suspends, reinstates, revokes and renews them. Refused
changes are audited too (outcome ``denied``), after the refused request's transaction rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from catalog import access_requests as requests
from catalog import grants
from catalog.access_requests import AccessRequestIn, ApproveIn, RejectIn, WithdrawIn
from catalog.grants import Viewer
from catalog.models import AccessRequest, Grant
from hub import audited
from hub.api.deps import RuntimeDep, SessionDep, require_scope
from hub.api.receipts import caller_receipt
from hub.api.schemas import ReceiptOut
from hub.errors import DomainError
from hub.identity.tokens import AccessClaims

router = APIRouter(tags=["catalog"])
Reader = Annotated[AccessClaims, require_scope("catalog:read")]
Writer = Annotated[AccessClaims, require_scope("catalog:write")]
RoleQuery = Annotated[
    Literal["consumer", "provider"] | None, Query(description="Only requests/grants where the caller is this side")
]


class AccessRequestOut(BaseModel):
    id: str
    consumer_code: str
    provider_code: str
    resource_code: str
    resource_version: int
    items: list[str]
    matter_codes: list[str]
    purpose: str
    legal_basis: str
    valid_days: int
    quota_per_day: int | None
    status: Literal["pending", "approved", "rejected", "withdrawn"]
    decision_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    due_date: date = Field(description="Working-day deadline for the provider's reply (Asia/Shanghai)")
    overdue: bool = Field(description="Pending past the due date")
    working_days_left: int | None = Field(description="Pending only; negative when overdue")
    grant_id: str | None
    created_at: datetime
    receipt: ReceiptOut | None = None


class GrantOut(BaseModel):
    id: str
    consumer_code: str
    provider_code: str
    resource_code: str
    items: list[str]
    matter_codes: list[str]
    purpose: str
    legal_basis: str
    consent_required: bool
    valid_from: datetime
    valid_until: datetime
    quota_per_day: int | None
    status: Literal["active", "suspended", "revoked", "expired"]
    status_reason: str | None
    request_id: str | None
    revision: int
    created_at: datetime
    modified_at: datetime
    receipt: ReceiptOut | None = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GrantReasonIn(_Strict):
    reason: str = Field(min_length=1, max_length=2000)


class GrantReinstateIn(_Strict):
    reason: str | None = Field(default=None, max_length=2000)


class GrantRenewIn(_Strict):
    """Either a new ``valid_until`` or ``valid_days`` added to the later of now and the current end."""

    valid_days: int | None = Field(default=None, ge=1, le=grants.MAX_VALID_DAYS)
    valid_until: datetime | None = None
    reason: str | None = Field(default=None, max_length=2000)


def _viewer(caller: AccessClaims) -> Viewer:
    return Viewer(caller.department_code, admin="admin" in caller.scopes)


@contextmanager
def _refusal_audited(caller: AccessClaims, action: str, **fields: Any) -> Iterator[None]:
    """A refused change leaves its entry (DESIGN.md §2: denied requests are audited too)."""
    try:
        yield
    except DomainError as exc:
        if exc.audit_event is None:
            exc.audit_event = audited.event(
                action=action, outcome="denied", actor_type="admin" if "admin" in caller.scopes else "department",
                actor=caller.department_code, client_id=caller.client_id, error_code=exc.code, **fields,
            )  # fmt: skip
        raise


def request_out(
    runtime: RuntimeDep, request: AccessRequest, day: date, receipt: ReceiptOut | None = None
) -> AccessRequestOut:
    overdue, left = requests.deadline_state(requests.calendar(runtime.settings), request, day)
    return AccessRequestOut(
        id=request.id, consumer_code=request.consumer_code, provider_code=request.provider_code,
        resource_code=request.resource_code, resource_version=request.resource_version, items=request.items,
        matter_codes=request.matter_codes, purpose=request.purpose, legal_basis=request.legal_basis,
        valid_days=request.valid_days, quota_per_day=request.quota_per_day, status=request.status,
        decision_reason=request.decision_reason, decided_by=request.decided_by, decided_at=request.decided_at,
        due_date=request.due_date, overdue=overdue, working_days_left=left, grant_id=request.grant_id,
        created_at=request.created_at, receipt=receipt,
    )  # fmt: skip


def grant_out(grant: Grant, receipt: ReceiptOut | None = None) -> GrantOut:
    return GrantOut(
        id=grant.id, consumer_code=grant.consumer_code, provider_code=grant.provider_code,
        resource_code=grant.resource_code, items=grant.items, matter_codes=grant.matter_codes, purpose=grant.purpose,
        legal_basis=grant.legal_basis, consent_required=grant.consent_required, valid_from=grant.valid_from,
        valid_until=grant.valid_until, quota_per_day=grant.quota_per_day, status=grant.status,
        status_reason=grant.status_reason, request_id=grant.request_id, revision=grant.revision,
        created_at=grant.created_at, modified_at=grant.modified_at, receipt=receipt,
    )  # fmt: skip


# ----------------------------------------------------------------------------- access requests


@router.post("/v1/catalog/access-requests", status_code=status.HTTP_201_CREATED)
def create_access_request(
    body: AccessRequestIn, response: Response, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> AccessRequestOut:
    """Request data items of a resource for named matters.

    Unconditional resources whose requested items are all unconditional are approved at once (the grant
    is created; ``grant_id`` set); otherwise the request waits for the provider until ``due_date``.
    不予共享 resources (403 ``resource_not_shareable``) and items (403 ``item_not_shareable``) cannot be
    requested.
    """
    with _refusal_audited(caller, "catalog.access_request.created", resource_code=body.resource_code[:40]):
        done = requests.submit(session, runtime.settings, body, consumer_code=caller.department_code)
    request = done.request
    extra = {"access_request_id": request.id, "status": request.status, "items": ",".join(request.items)}
    if done.grant is not None:
        extra |= {"grant_id": done.grant.id, "consent_required": str(done.grant.consent_required).lower()}
    receipt = caller_receipt(
        session, runtime, caller, "catalog.access_request.created", resource_code=request.resource_code,
        matter_code=request.matter_codes[0], extra=extra | {"matter_codes": ",".join(request.matter_codes)},
    )  # fmt: skip
    response.headers["Location"] = f"/v1/catalog/access-requests/{request.id}"
    return request_out(runtime, request, requests.today(), receipt)


@router.get("/v1/catalog/access-requests")
def list_access_requests(  # noqa: PLR0917 - FastAPI injects dependencies and query parameters by name
    session: SessionDep,
    runtime: RuntimeDep,
    caller: Reader,
    role: RoleQuery = None,
    status_: Annotated[Literal["pending", "approved", "rejected", "withdrawn"] | None, Query(alias="status")] = None,
    overdue: Annotated[bool, Query(description="Only pending requests past their due date")] = False,
    after: Annotated[str | None, Query(max_length=32, description="Last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AccessRequestOut]:
    """Requests the caller made (``role=consumer``), received (``provider``), or both; admins see all."""
    day = requests.today()
    rows = requests.list_requests(
        session, _viewer(caller), role=role, status=status_, overdue=overdue, day=day, after=after, limit=limit
    )
    return [request_out(runtime, row, day) for row in rows]


@router.get("/v1/catalog/access-requests/{request_id}")
def get_access_request(request_id: str, session: SessionDep, runtime: RuntimeDep, caller: Reader) -> AccessRequestOut:
    return request_out(runtime, requests.get_request_or_raise(session, request_id, _viewer(caller)), requests.today())


@router.post("/v1/catalog/access-requests/{request_id}/approve")
def approve_access_request(
    request_id: str, body: ApproveIn, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> AccessRequestOut:
    """The provider (or an admin) approves; the grant takes the requested terms unless the body narrows them."""
    with _refusal_audited(caller, "catalog.access_request.approved", extra={"access_request_id": request_id[:32]}):
        request = requests.request_for_decision(session, request_id, _viewer(caller))
        grant = requests.approve(session, runtime.settings, request, body, decided_by=caller.department_code)
    receipt = caller_receipt(
        session, runtime, caller, "catalog.access_request.approved", resource_code=request.resource_code,
        extra={"access_request_id": request.id, "grant_id": grant.id, "items": ",".join(grant.items),
               "consent_required": str(grant.consent_required).lower()},
    )  # fmt: skip
    return request_out(runtime, request, requests.today(), receipt)


@router.post("/v1/catalog/access-requests/{request_id}/reject")
def reject_access_request(
    request_id: str, body: RejectIn, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> AccessRequestOut:
    """The provider (or an admin) rejects, giving its reason (required: 422 ``decision_reason_required``)."""
    with _refusal_audited(caller, "catalog.access_request.rejected", extra={"access_request_id": request_id[:32]}):
        request = requests.request_for_decision(session, request_id, _viewer(caller))
        requests.reject(session, runtime.settings, request, body.reason, decided_by=caller.department_code)
    receipt = caller_receipt(
        session, runtime, caller, "catalog.access_request.rejected", resource_code=request.resource_code,
        extra={"access_request_id": request.id},
    )  # fmt: skip
    return request_out(runtime, request, requests.today(), receipt)


@router.post("/v1/catalog/access-requests/{request_id}/withdraw")
def withdraw_access_request(
    request_id: str, body: WithdrawIn, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> AccessRequestOut:
    """The requesting department withdraws its pending request."""
    with _refusal_audited(caller, "catalog.access_request.withdrawn", extra={"access_request_id": request_id[:32]}):
        request = requests.withdraw(session, request_id, _viewer(caller), body.reason)
    receipt = caller_receipt(
        session, runtime, caller, "catalog.access_request.withdrawn", resource_code=request.resource_code,
        extra={"access_request_id": request.id},
    )  # fmt: skip
    return request_out(runtime, request, requests.today(), receipt)


# ----------------------------------------------------------------------------- grants


@router.get("/v1/catalog/grants")
def list_grants(  # noqa: PLR0917 - FastAPI injects dependencies and query parameters by name
    session: SessionDep,
    caller: Reader,
    role: RoleQuery = None,
    status_: Annotated[Literal["active", "suspended", "revoked", "expired"] | None, Query(alias="status")] = None,
    resource_code: Annotated[str | None, Query(max_length=40)] = None,
    after: Annotated[str | None, Query(max_length=32, description="Last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[GrantOut]:
    """Grants the caller holds (``role=consumer``), gave (``provider``), or both; admins see all."""
    rows = grants.list_grants(
        session, _viewer(caller), role=role, status=status_, resource_code=resource_code, after=after, limit=limit
    )
    return [grant_out(row) for row in rows]


@router.get("/v1/catalog/grants/{grant_id}")
def get_grant(grant_id: str, session: SessionDep, caller: Reader) -> GrantOut:
    return grant_out(grants.get_grant_or_raise(session, grant_id, _viewer(caller)))


def _transition(
    grant_id: str,
    session: Session,
    runtime: RuntimeDep,
    caller: AccessClaims,
    transition: str,
    *,
    reason: str | None = None,
    renewal: GrantRenewIn | None = None,
) -> GrantOut:
    action = f"catalog.grant.{grants.past_tense(transition)}"
    with _refusal_audited(caller, action, extra={"grant_id": grant_id[:32]}):
        grant = grants.grant_for_change(session, grant_id, _viewer(caller))
        if renewal is not None:
            grants.renew(
                session, runtime.settings, grant, valid_days=renewal.valid_days, valid_until=renewal.valid_until
            )
        else:
            grants.change_status(session, runtime.settings, grant, transition, reason=reason)
    extra = {"grant_id": grant.id, "status": grant.status, "revision": str(grant.revision)}
    if reason:
        extra["reason"] = reason
    if renewal is not None:
        extra["valid_until"] = grant.valid_until.isoformat()
    receipt = caller_receipt(session, runtime, caller, action, resource_code=grant.resource_code, extra=extra)
    return grant_out(grant, receipt)


@router.post("/v1/catalog/grants/{grant_id}/suspend")
def suspend_grant(
    grant_id: str, body: GrantReasonIn, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> GrantOut:
    """Calls under the grant are refused (``grant_suspended``) until it is reinstated; the consumer is notified."""
    return _transition(grant_id, session, runtime, caller, "suspend", reason=body.reason)


@router.post("/v1/catalog/grants/{grant_id}/reinstate")
def reinstate_grant(
    grant_id: str, body: GrantReinstateIn, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> GrantOut:
    return _transition(grant_id, session, runtime, caller, "reinstate", reason=body.reason)


@router.post("/v1/catalog/grants/{grant_id}/revoke")
def revoke_grant(
    grant_id: str, body: GrantReasonIn, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> GrantOut:
    """Final: a revoked grant is never used or renewed again; the consumer is notified."""
    return _transition(grant_id, session, runtime, caller, "revoke", reason=body.reason)


@router.post("/v1/catalog/grants/{grant_id}/renew")
def renew_grant(
    grant_id: str, body: GrantRenewIn, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> GrantOut:
    """Extend ``valid_until`` (an expired grant becomes active again)."""
    return _transition(grant_id, session, runtime, caller, "renew", reason=body.reason, renewal=body)
