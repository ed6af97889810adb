"""Holder API under ``/v1/me/`` (ID token as bearer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from audit import service as audit
from hub import audited
from hub.api.deps import HolderDep, RuntimeDep, SessionDep
from hub.api.schemas import HolderOut
from hub.clock import utcnow
from hub.identity.models import Department

router = APIRouter(prefix="/v1/me", tags=["holder"])


class AccessLogItem(BaseModel):
    leaf_index: int
    time: str
    action: str
    outcome: str
    department_code: str | None
    department_name: str | None
    officer_id: str | None
    matter_code: str | None
    case_number: str | None
    certificate_identifier: str | None
    fields: list[str] | None
    error_code: str | None


@router.get("")
def me(holder: HolderDep) -> HolderOut:
    """Who the ID token signs in: one account per (holder type, code)."""
    return HolderOut(holder_type=holder.holder_type, holder_code=holder.holder_code, name=holder.name)


@router.get("/access-log")
def access_log(
    holder: HolderDep,
    session: SessionDep,
    runtime: RuntimeDep,
    after: Annotated[int | None, Query(ge=-1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AccessLogItem]:
    """Who used my data, when, for which matter and case, which fields, with what outcome.

    Entries under a law-enforcement delay stay hidden until their ``hidden_until`` has passed.
    """
    ref = audited.holder_ref(runtime, holder.holder_type, holder.holder_code)
    rows = audit.access_log(session, ref, now=utcnow(), after=after, limit=limit)
    codes = {r.department_code for r in rows if r.department_code}
    names = (
        dict(session.execute(select(Department.code, Department.name).where(Department.code.in_(codes))).all())
        if codes
        else {}
    )
    items = []
    for row in rows:
        body = audit.entry_body(row) or {}
        items.append(
            AccessLogItem(
                leaf_index=row.leaf_index,
                time=str(body.get("time")),
                action=row.action,
                outcome=row.outcome,
                department_code=row.department_code,
                department_name=names.get(row.department_code or ""),
                officer_id=row.officer_id,
                matter_code=row.matter_code,
                case_number=row.case_number,
                certificate_identifier=row.certificate_identifier,
                fields=body.get("fields"),
                error_code=row.error_code,
            )
        )
    return items
