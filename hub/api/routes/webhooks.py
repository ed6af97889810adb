"""Webhook endpoints (``/v1/webhooks``): departments register their own; admins see and redrive dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from hub.api.deps import RuntimeDep, SessionDep, require_scope
from hub.api.receipts import caller_receipt
from hub.api.schemas import ReceiptOut, Strict
from hub.identity.tokens import AccessClaims
from hub.runtime import Runtime
from hub.webhooks import service as webhooks
from hub.webhooks.models import WebhookEndpoint

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
AdminDep = Annotated[AccessClaims, require_scope("admin")]
DepartmentDep = Annotated[AccessClaims, require_scope(None)]
EventType = Annotated[str, Field(min_length=1, max_length=128, examples=["cn.gov.licence-hub.licence.expiring"])]


class EndpointIn(Strict):
    url: str = Field(min_length=1, max_length=2048, description="https URL that receives CloudEvents by POST")
    types: list[EventType] = Field(
        default_factory=list, max_length=webhooks.MAX_TYPES, description="CloudEvents types to send; empty = all"
    )


class EndpointOut(BaseModel):
    id: str
    department_code: str
    url: str
    types: list[str]
    active: bool
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="Standard Webhooks signing secret (whsec_…). Shown once, at registration.")
    receipt: ReceiptOut


class DeliveryOut(BaseModel):
    """A delivery as admins see it: identifiers and outcome, never the body, the URL or the secret."""

    id: str
    event_id: str
    event_type: str
    subject: str
    department_code: str
    endpoint_id: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    receipt: ReceiptOut | None = None


def _endpoint_out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id, department_code=endpoint.department_code, url=endpoint.url, types=list(endpoint.types),
        active=endpoint.active, created_at=endpoint.created_at,
    )  # fmt: skip


def _delivery_out(view: webhooks.DeliveryView, receipt: ReceiptOut | None = None) -> DeliveryOut:
    d = view.delivery
    return DeliveryOut(
        id=d.id, event_id=view.event.event_id, event_type=view.event.type, subject=view.event.subject,
        department_code=view.endpoint.department_code, endpoint_id=view.endpoint.id, status=d.status,
        attempts=d.attempts, next_attempt_at=d.next_attempt_at, last_attempt_at=d.last_attempt_at,
        last_status_code=d.last_status_code, last_error=d.last_error, created_at=d.created_at, receipt=receipt,
    )  # fmt: skip


def _audit(
    session: Session, runtime: Runtime, caller: AccessClaims, action: str, *, actor_type: str, extra: dict[str, str]
) -> ReceiptOut:
    return caller_receipt(session, runtime, caller, action, actor_type=actor_type, extra=extra)


@router.post("", status_code=status.HTTP_201_CREATED)
def register_endpoint(
    body: EndpointIn, session: SessionDep, runtime: RuntimeDep, caller: DepartmentDep
) -> EndpointCreated:
    """Register an endpoint for the caller's own department; the secret in the answer is never shown again."""
    endpoint, secret = webhooks.register_endpoint(
        session, runtime.settings, runtime.master_keys, department_code=caller.department_code, url=body.url,
        types=body.types,
    )  # fmt: skip
    extra = {"endpoint_id": endpoint.id}
    receipt = _audit(session, runtime, caller, "webhook.endpoint.registered", actor_type="department", extra=extra)
    return EndpointCreated(**_endpoint_out(endpoint).model_dump(), secret=secret, receipt=receipt)


@router.get("")
def list_endpoints(session: SessionDep, caller: DepartmentDep) -> list[EndpointOut]:
    """The caller's department's active endpoints (secrets are never listed)."""
    return [_endpoint_out(e) for e in webhooks.list_endpoints(session, caller.department_code)]


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def disable_endpoint(endpoint_id: str, session: SessionDep, runtime: RuntimeDep, caller: DepartmentDep) -> Response:
    """Disable one of the caller's endpoints; another department's endpoint is the same 404 as a missing one."""
    endpoint = webhooks.disable_endpoint(session, department_code=caller.department_code, endpoint_id=endpoint_id)
    extra = {"endpoint_id": endpoint.id}
    _audit(session, runtime, caller, "webhook.endpoint.disabled", actor_type="department", extra=extra)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/dead-letters")
def dead_letters(
    session: SessionDep,
    _caller: AdminDep,
    department_code: Annotated[str | None, Query(min_length=18, max_length=18)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    """Deliveries that ran out of attempts (or whose endpoint was disabled), newest first."""
    return [_delivery_out(v) for v in webhooks.dead_letters(session, department_code=department_code, limit=limit)]


@router.post("/deliveries/{delivery_id}/redeliver")
def redeliver(delivery_id: str, session: SessionDep, runtime: RuntimeDep, caller: AdminDep) -> DeliveryOut:
    """Reset a dead delivery to pending with a fresh set of attempts; the first runs after commit."""
    view = webhooks.redeliver(session, runtime.settings, delivery_id)
    extra = {"delivery_id": delivery_id, "endpoint_id": view.endpoint.id, "event_id": view.event.event_id}
    receipt = _audit(session, runtime, caller, "webhook.delivery.redelivered", actor_type="admin", extra=extra)
    return _delivery_out(view, receipt)
