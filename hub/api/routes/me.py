"""Holder API under ``/v1/me/`` (ID token as bearer)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import service as audit
from hub import audited
from hub.api.deps import HolderDep, RuntimeDep, SessionDep
from hub.api.routes.licences import LicenceView, licence_view
from hub.api.schemas import HolderOut, ReceiptOut, Strict
from hub.clock import utcnow
from hub.exchange import consents
from hub.exchange.models import Consent
from hub.identity.models import Department, Holder
from licences import holders

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
    receipt: ReceiptOut = Field(
        description="The hub's signed promise that this entry is in the log (verify it with "
        "GET /v1/audit/verifier-key; prove it with /v1/audit/proof/inclusion)"
    )


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
    names = _department_names(session, {r.department_code for r in rows if r.department_code})
    signer = runtime.audit_signer
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
                receipt=ReceiptOut(**signer.receipt(row.leaf_index, row.leaf_hash, row.integrated_time).to_json()),
            )
        )
    return items


class PresentationIn(Strict):
    fields: list[str] | None = Field(
        default=None, max_length=64, description="Face fields to disclose; omitted: the unconditionally shareable ones"
    )


class PresentationOut(BaseModel):
    token: str
    url: str
    expires_at: datetime
    qr_svg: str
    fields: list[str]
    receipt: ReceiptOut


class NotificationOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    certificate_identifier: str | None
    created_at: datetime
    read_at: datetime | None


class TimelineItem(BaseModel):
    leaf_index: int
    time: str
    event: str = Field(description="issued, suspended, reinstated, revoked, renewed, amended, expired, fetched, ...")
    action: str
    outcome: str
    certificate_identifier: str | None
    department_code: str | None
    department_name: str | None
    matter_code: str | None
    case_number: str | None


@router.get("/licences")
def my_licences(holder: HolderDep, session: SessionDep) -> list[LicenceView]:
    """Every licence issued to me, newest first, with its live status."""
    return [licence_view(lic) for lic in holders.holder_licences(session, holder.holder_type, holder.holder_code)]


@router.get("/licences/{certificate_identifier}")
def my_licence(certificate_identifier: str, holder: HolderDep, session: SessionDep) -> LicenceView:
    licence = holders.holder_licence_or_raise(session, holder.holder_type, holder.holder_code, certificate_identifier)
    return licence_view(licence)


@router.post("/licences/{certificate_identifier}/presentations", status_code=201)
def present_licence(
    certificate_identifier: str, body: PresentationIn, holder: HolderDep, session: SessionDep, runtime: RuntimeDep
) -> PresentationOut:
    """A QR code that shows only the chosen fields and expires within minutes (a screenshot goes stale)."""
    licence = holders.holder_licence_or_raise(session, holder.holder_type, holder.holder_code, certificate_identifier)
    shown = holders.present(
        session, runtime.master_keys, licence, fields=body.fields, public_url=runtime.settings.public_url,
        ttl_seconds=runtime.settings.presentation_ttl_seconds,
    )  # fmt: skip
    ref = audited.holder_ref(runtime, holder.holder_type, holder.holder_code)
    event = audited.event(
        action="licence.presentation.created", outcome="ok", actor_type="holder", actor=ref, holder_ref=ref,
        certificate_identifier=licence.identifier, fields=tuple(shown.fields) or None,
        extra={"jti": shown.presentation.jti},
    )  # fmt: skip
    receipt = ReceiptOut(**audited.record(session, runtime, event).to_json())
    return PresentationOut(
        token=shown.presentation.token, url=shown.url, expires_at=shown.presentation.expires_at,
        qr_svg=shown.qr_svg, fields=shown.fields, receipt=receipt,
    )  # fmt: skip


@router.get("/notifications")
def my_notifications(
    holder: HolderDep,
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,  # a notification id (64-bit column)
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[NotificationOut]:
    """My inbox, newest first: expiry reminders and notices about my licences."""
    rows = holders.notifications(session, holder.holder_type, holder.holder_code, before=before, limit=limit)
    return [
        NotificationOut(
            id=n.id,
            kind=n.kind,
            title=n.title,
            body=n.body,
            certificate_identifier=n.certificate_identifier,
            created_at=n.created_at,
            read_at=n.read_at,
        )
        for n in rows
    ]


@router.get("/timeline")
def my_timeline(
    holder: HolderDep,
    session: SessionDep,
    runtime: RuntimeDep,
    after: Annotated[int | None, Query(ge=-1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[TimelineItem]:
    """一人一档 / 一企一档: every issuance, change, fetch, scan and expiry of my licences, in log order."""
    ref = audited.holder_ref(runtime, holder.holder_type, holder.holder_code)
    rows = audit.access_log(session, ref, now=utcnow(), after=after, limit=limit)
    names = _department_names(session, {r.department_code for r in rows if r.department_code})
    return [
        TimelineItem(
            leaf_index=row.leaf_index,
            time=str((audit.entry_body(row) or {}).get("time")),
            event=row.action.rsplit(".", 1)[-1],
            action=row.action,
            outcome=row.outcome,
            certificate_identifier=row.certificate_identifier,
            department_code=row.department_code,
            department_name=names.get(row.department_code or ""),
            matter_code=row.matter_code,
            case_number=row.case_number,
        )
        for row in rows
    ]


def _department_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(session.execute(select(Department.code, Department.name).where(Department.code.in_(codes))).all())


# ---------------------------------------------------------------------------------------- consents, 用证授权


class ConsentIn(Strict):
    department_code: str = Field(min_length=18, max_length=18, description="USCC of the department")
    matter_code: str = Field(min_length=1, max_length=64)
    case_number: str | None = Field(default=None, min_length=1, max_length=64, description="None: any case")
    valid_days: int = Field(default=30, ge=1, le=consents.MAX_CONSENT_DAYS)


class ConsentOut(BaseModel):
    id: str
    department_code: str
    department_name: str | None
    matter_code: str
    case_number: str | None
    expires_at: datetime
    created_at: datetime
    withdrawn_at: datetime | None
    active: bool
    receipt: ReceiptOut | None = None


def _consent_out(consent: Consent, names: dict[str, str], receipt: ReceiptOut | None = None) -> ConsentOut:
    now = utcnow()
    return ConsentOut(
        id=consent.id, department_code=consent.department_code, department_name=names.get(consent.department_code),
        matter_code=consent.matter_code, case_number=consent.case_number, expires_at=consent.expires_at,
        created_at=consent.created_at, withdrawn_at=consent.withdrawn_at,
        active=consent.withdrawn_at is None and consent.expires_at > now, receipt=receipt,
    )  # fmt: skip


def _consent_receipt(
    session: Session, runtime: RuntimeDep, holder: Holder, action: str, consent: Consent
) -> ReceiptOut:
    ref = audited.holder_ref(runtime, holder.holder_type, holder.holder_code)
    event = audited.event(
        action=action, outcome="ok", actor_type="holder", actor=ref, holder_ref=ref, matter_code=consent.matter_code,
        case_number=consent.case_number, extra={"consent_id": consent.id, "department_code": consent.department_code},
    )  # fmt: skip
    return ReceiptOut(**audited.record(session, runtime, event).to_json())


@router.get("/consents")
def list_consents(holder: HolderDep, session: SessionDep) -> list[ConsentOut]:
    """My consents, newest first, withdrawn and expired ones included (marked ``active: false``)."""
    rows = consents.list_for_holder(session, consents.HolderKey(holder.holder_type, holder.holder_code))
    names = _department_names(session, {c.department_code for c in rows})
    return [_consent_out(c, names) for c in rows]


@router.post("/consents", status_code=status.HTTP_201_CREATED)
def give_consent(body: ConsentIn, holder: HolderDep, session: SessionDep, runtime: RuntimeDep) -> ConsentOut:
    """Let one department use my licences for one matter (optionally one case) until the consent expires."""
    now = utcnow()
    consent = consents.give(
        session, consents.HolderKey(holder.holder_type, holder.holder_code), department_code=body.department_code,
        matter_code=body.matter_code, case_number=body.case_number, expires_at=now + timedelta(days=body.valid_days),
        now=now,
    )  # fmt: skip
    receipt = _consent_receipt(session, runtime, holder, "exchange.consent.given", consent)
    return _consent_out(consent, _department_names(session, {consent.department_code}), receipt)


@router.delete("/consents/{consent_id}")
def withdraw_consent(
    consent_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$")], holder: HolderDep, session: SessionDep,
    runtime: RuntimeDep,
) -> ConsentOut:  # fmt: skip
    """Withdraw a consent; the next fetch under it is refused (``consent_withdrawn``)."""
    key = consents.HolderKey(holder.holder_type, holder.holder_code)
    consent = consents.withdraw(session, key, consent_id, now=utcnow())
    receipt = _consent_receipt(session, runtime, holder, "exchange.consent.withdrawn", consent)
    return _consent_out(consent, _department_names(session, {consent.department_code}), receipt)
