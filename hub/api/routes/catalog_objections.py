"""Catalogue routes: objections (数据异议) for departments (/v1/catalog/objections) and holders (/v1/me/objections).

Scopes: raising needs ``exchange:fetch`` (a department that could fetch the record); the handler's
decisions need ``catalog:write``; reading and closing need any token, and who may see or close is
decided per objection (raiser, handler, admin). Holders raise against and read their own only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from catalog import objections
from catalog.models import Objection, ObjectionEvent
from catalog.objection_schemas import (
    HolderObjectionIn,
    NoteIn,
    ObjectionEventOut,
    ObjectionIn,
    ObjectionOut,
    ObjectionSummary,
    ReasonIn,
    Status,
)
from hub import audited
from hub.api.deps import HolderDep, RuntimeDep, SessionDep, require_scope
from hub.api.receipts import caller_receipt
from hub.api.schemas import ReceiptOut
from hub.identity.models import Holder
from hub.identity.tokens import AccessClaims
from hub.runtime import Runtime

router = APIRouter(tags=["catalog"])
AnyCaller = Annotated[AccessClaims, require_scope(None)]
RaiserDep = Annotated[AccessClaims, require_scope("exchange:fetch")]
HandlerDep = Annotated[AccessClaims, require_scope("catalog:write")]
BASE = "/v1/catalog/objections"
MINE = "/v1/me/objections"


class ObjectionResponse(ObjectionOut):
    receipt: ReceiptOut | None = None


def _context(runtime: Runtime) -> objections.ObjectionContext:
    return objections.ObjectionContext(
        settings=runtime.settings,
        holder_secret=runtime.audit_signer.holder_secret,
        record=lambda session, event: audited.record(session, runtime, event),
    )


def _department(caller: AccessClaims) -> objections.Party:
    return objections.Party.department(
        caller.department_code, admin="admin" in caller.scopes, client_id=caller.client_id
    )


def _holder(holder: Holder) -> objections.Party:
    return objections.Party.signed_in_holder(holder.holder_type, holder.holder_code)


def _summary_fields(row: Objection) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "raised_by_type": row.raised_by_type,
        "raised_by": row.raised_by if row.raised_by_type == "department" else None,
        "handler_code": row.handler_code, "certificate_identifier": row.certificate_identifier,
        "resource_code": row.resource_code, "record_key": row.record_key, "item_key": row.item_key,
        "due_date": row.due_date, "overdue": objections.is_overdue(row, objections.local_today()),
        "decided_at": row.decided_at, "created_at": row.created_at, "modified_at": row.modified_at,
        "closed_at": row.closed_at,
    }  # fmt: skip


def _event_out(event: ObjectionEvent) -> ObjectionEventOut:
    # A holder's holder_ref stays in the audit log; people reading the history see "holder".
    actor = "holder" if event.actor_type == "holder" else event.actor
    return ObjectionEventOut(
        from_status=event.from_status, to_status=event.to_status, actor_type=event.actor_type,
        actor=actor, note=event.note, time=event.time,
    )  # fmt: skip


def _detail(row: Objection, events: Sequence[ObjectionEvent], receipt: ReceiptOut | None = None) -> ObjectionResponse:
    return ObjectionResponse(
        **_summary_fields(row), claimed_value=row.claimed_value, reason=row.reason, evidence=row.evidence,
        resolution=row.resolution, corrected_identifier=row.corrected_identifier,
        allowed_next=list(objections.NEXT[row.status]), events=[_event_out(e) for e in events], receipt=receipt,
    )  # fmt: skip


def _changed(session: Session, done: objections.Changed) -> ObjectionResponse:
    receipt = ReceiptOut(**done.receipt.to_json())
    return _detail(done.objection, objections.history(session, done.objection.id), receipt)


# ----------------------------------------------------------------------------- departments


@router.post(BASE, status_code=status.HTTP_201_CREATED)
def raise_objection(
    body: ObjectionIn, session: SessionDep, runtime: RuntimeDep, caller: RaiserDep
) -> ObjectionResponse:
    """Object to a licence (optionally one face field) or a resource record (optionally one data item).

    The handler (the licence's issuer or the resource's provider) must accept or reject by ``due_date``.
    """
    done = objections.raise_objection(session, _context(runtime), _department(caller), body)
    return _changed(session, done)


@router.get(BASE)
def list_objections(  # noqa: PLR0917 - FastAPI injects dependencies and query filters by name
    session: SessionDep,
    runtime: RuntimeDep,
    caller: AnyCaller,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    overdue: bool | None = None,
    role: Literal["raiser", "handler"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ObjectionSummary]:
    """Objections I raised or handle (an admin: all), newest first; no claimed values (read one for those)."""
    rows = objections.list_objections(
        session, _context(runtime), _department(caller), today=objections.local_today(), status=status_,
        overdue=overdue, role=role, limit=limit,
    )  # fmt: skip
    return [ObjectionSummary(**_summary_fields(row)) for row in rows]


@router.get(BASE + "/{objection_id}")
def get_objection(objection_id: str, session: SessionDep, runtime: RuntimeDep, caller: AnyCaller) -> ObjectionResponse:
    """One objection with its claimed value, evidence and history (the read is audited)."""
    row = objections.get_objection_or_raise(session, _context(runtime), _department(caller), objection_id)
    receipt = caller_receipt(
        session, runtime, caller, "catalog.objection.read", certificate_identifier=row.certificate_identifier,
        resource_code=row.resource_code, holder_ref=row.holder_ref, extra={"objection_id": row.id},
    )  # fmt: skip
    return _detail(row, objections.history(session, row.id), receipt)


def _step(
    session: Session, runtime: Runtime, caller: AccessClaims, objection_id: str, verb: str, *, note: str | None
) -> ObjectionResponse:
    done = objections.transition(session, _context(runtime), objection_id, verb, _department(caller), note=note)
    return _changed(session, done)


@router.post(BASE + "/{objection_id}/accept")
def accept_objection(
    objection_id: str, session: SessionDep, runtime: RuntimeDep, caller: HandlerDep, body: NoteIn | None = None
) -> ObjectionResponse:
    """Raised → accepted (the handler will look into it)."""
    return _step(session, runtime, caller, objection_id, "accept", note=body.note if body else None)


@router.post(BASE + "/{objection_id}/reject")
def reject_objection(
    objection_id: str, body: ReasonIn, session: SessionDep, runtime: RuntimeDep, caller: HandlerDep
) -> ObjectionResponse:
    """Raised → rejected, with the reason the raiser is given."""
    return _step(session, runtime, caller, objection_id, "reject", note=body.reason)


@router.post(BASE + "/{objection_id}/flag")
def flag_objection(
    objection_id: str, session: SessionDep, runtime: RuntimeDep, caller: HandlerDep, body: NoteIn | None = None
) -> ObjectionResponse:
    """Accepted → flagged: fetches of the record now carry ``disputed: true``."""
    return _step(session, runtime, caller, objection_id, "flag", note=body.note if body else None)


@router.post(BASE + "/{objection_id}/verify")
def verify_objection(
    objection_id: str, session: SessionDep, runtime: RuntimeDep, caller: HandlerDep, body: NoteIn | None = None
) -> ObjectionResponse:
    """Flagged → verifying (still disputed)."""
    return _step(session, runtime, caller, objection_id, "verify", note=body.note if body else None)


@router.post(BASE + "/{objection_id}/correct")
def correct_objection(
    objection_id: str, body: ReasonIn, session: SessionDep, runtime: RuntimeDep, caller: HandlerDep
) -> ObjectionResponse:
    """Verifying → corrected; departments that fetched the record are notified (amend the licence first)."""
    return _step(session, runtime, caller, objection_id, "correct", note=body.reason)


@router.post(BASE + "/{objection_id}/uphold")
def uphold_objection(
    objection_id: str, body: ReasonIn, session: SessionDep, runtime: RuntimeDep, caller: HandlerDep
) -> ObjectionResponse:
    """Verifying → upheld: the record stands as it is, for the reason given."""
    return _step(session, runtime, caller, objection_id, "uphold", note=body.reason)


@router.post(BASE + "/{objection_id}/close")
def close_objection(
    objection_id: str, session: SessionDep, runtime: RuntimeDep, caller: AnyCaller, body: NoteIn | None = None
) -> ObjectionResponse:
    """Corrected | upheld | rejected → closed, by the handler, the raising department or an admin."""
    return _step(session, runtime, caller, objection_id, "close", note=body.note if body else None)


# ----------------------------------------------------------------------------- holders


@router.post(MINE, status_code=status.HTTP_201_CREATED, tags=["holder"])
def raise_my_objection(
    body: HolderObjectionIn, holder: HolderDep, session: SessionDep, runtime: RuntimeDep
) -> ObjectionResponse:
    """Object to one of my licences (optionally one face field); the issuer handles it."""
    done = objections.raise_objection(session, _context(runtime), _holder(holder), body)
    return _changed(session, done)


@router.get(MINE, tags=["holder"])
def list_my_objections(
    holder: HolderDep,
    session: SessionDep,
    runtime: RuntimeDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ObjectionSummary]:
    """Objections I raised, newest first."""
    rows = objections.list_objections(
        session, _context(runtime), _holder(holder), today=objections.local_today(), status=status_, limit=limit
    )
    return [ObjectionSummary(**_summary_fields(row)) for row in rows]


@router.get(MINE + "/{objection_id}", tags=["holder"])
def get_my_objection(objection_id: str, holder: HolderDep, session: SessionDep, runtime: RuntimeDep) -> ObjectionOut:
    row = objections.get_objection_or_raise(session, _context(runtime), _holder(holder), objection_id)
    return _detail(row, objections.history(session, row.id))


@router.post(MINE + "/{objection_id}/close", tags=["holder"])
def close_my_objection(
    objection_id: str, holder: HolderDep, session: SessionDep, runtime: RuntimeDep, body: NoteIn | None = None
) -> ObjectionResponse:
    """Accept the outcome (corrected, upheld or rejected) of an objection I raised."""
    done = objections.transition(
        session, _context(runtime), objection_id, "close", _holder(holder), note=body.note if body else None
    )
    return _changed(session, done)
