"""Objections (数据异议): raise, move through the handler's state machine, answer whether a record is disputed.

An objection names a licence or a resource record (optionally one item of it); the exchange asks on
every fetch whether the record is disputed.

States (OpenMetadata/DataHub incident workflows, made record-level)::

    raised → accepted | rejected;  accepted → flagged;  flagged → verifying;
    verifying → corrected | upheld;  corrected | upheld | rejected → closed

Who may do what:

- raise: a department holding ``exchange:fetch`` (one that could fetch the record; issue 7 adds the
  grant), against any licence or published resource record; a holder, against their own licences only.
- accept … uphold: only the handler, i.e. the licence's issuer or the resource's provider.
- close: the handler, the raiser (acknowledging the outcome) or an admin.
- read: the raiser, the handler and admins. Anyone else gets the same 404 as a missing objection.

A record is disputed while one of its objections is ``flagged`` or ``verifying``. The due date is the
local day by which the handler must accept or reject (``HUB_OBJECTION_WORKING_DAYS`` working days); an
objection still ``raised`` after it is overdue.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from audit.entries import AuditEvent, Receipt, holder_ref
from audit.models import AuditEntry
from catalog.models import DataItem, Objection, ObjectionEvent, Resource
from catalog.objection_schemas import HolderObjectionIn, ObjectionIn
from catalog.workdays import load_calendar, local_day
from hub.clock import utcnow
from hub.codes import validate_id_number
from hub.errors import Conflict, InvalidIdNumber, InvalidInput, NotFound
from hub.observability import request_id_var
from hub.settings import Settings
from hub.webhooks import service as webhooks
from licences import holders, lifecycle
from licences.models import Licence, LicenceType

RAISED, ACCEPTED, REJECTED = "raised", "accepted", "rejected"
FLAGGED, VERIFYING, CORRECTED, UPHELD, CLOSED = "flagged", "verifying", "corrected", "upheld", "closed"
NEXT: dict[str, tuple[str, ...]] = {
    RAISED: (ACCEPTED, REJECTED),
    ACCEPTED: (FLAGGED,),
    FLAGGED: (VERIFYING,),
    VERIFYING: (CORRECTED, UPHELD),
    CORRECTED: (CLOSED,),
    UPHELD: (CLOSED,),
    REJECTED: (CLOSED,),
    CLOSED: (),
}
VERBS: dict[str, str] = {
    "accept": ACCEPTED, "reject": REJECTED, "flag": FLAGGED, "verify": VERIFYING,
    "correct": CORRECTED, "uphold": UPHELD, "close": CLOSED,
}  # fmt: skip
REASON_REQUIRED = frozenset({REJECTED, UPHELD, CORRECTED})  # the raiser is owed an answer
DISPUTED = (FLAGGED, VERIFYING)
# CloudEvents types (reverse-DNS, as hub.webhooks asks): …objection.raised, …objection.corrected, …
EVENT_TYPE_PREFIX = "cn.gov.licence-hub.catalog.objection."
# Issue 7 records fetches as exchange.<thing>.fetched; any exchange action naming a fetch counts.
FETCH_ACTIONS = ("exchange.%", "%.fetch%")
_ID_NUMBER_LENGTH = 18


class ObjectionNotFound(NotFound):
    code = "objection_not_found"
    title = "No objection has this id"


class ObjectionTransitionInvalid(Conflict):
    code = "objection_transition_invalid"
    title = "The objection's state does not allow this step"


class ObjectionReasonRequired(InvalidInput):
    code = "objection_reason_required"
    title = "Rejecting, correcting or upholding an objection needs a reason"


class ObjectionItemUnknown(InvalidInput):
    code = "objection_item_unknown"
    title = "The item key is not a field of the record"


class ObjectionRecordKeyPersonal(InvalidInput):
    code = "objection_record_key_personal"
    title = "A record key must not contain a citizen ID number"


class ObjectionDuplicate(Conflict):
    code = "objection_duplicate"
    title = "You already have an open objection on this record and item"


class ObjectedResourceNotFound(NotFound):
    code = "resource_not_found"
    title = "No published resource has this code"


@dataclass(frozen=True)
class Party:
    """Who acts: a department (``admin`` when its token has the admin scope) or a signed-in holder."""

    actor_type: Literal["department", "admin", "holder"]
    department_code: str | None = None
    holder: tuple[str, str] | None = None  # (holder_type, holder_code)
    client_id: str | None = None

    @classmethod
    def department(cls, code: str, *, admin: bool, client_id: str | None = None) -> Party:
        return cls("admin" if admin else "department", department_code=code, client_id=client_id)

    @classmethod
    def signed_in_holder(cls, holder_type: str, holder_code: str) -> Party:
        return cls("holder", holder=(holder_type, holder_code))

    @property
    def is_admin(self) -> bool:
        return self.actor_type == "admin"


@dataclass(frozen=True)
class ObjectionContext:
    """What the use cases need from the process: settings, the holder_ref secret and the audit recorder."""

    settings: Settings
    holder_secret: bytes
    record: Callable[[Session, AuditEvent], Receipt]

    def holder_ref(self, holder_type: str, holder_code: str) -> str:
        return holder_ref(self.holder_secret, holder_type, holder_code)

    def actor(self, party: Party) -> str:
        """The audit actor: the department's USCC, or the holder's holder_ref (never an ID number)."""
        if party.holder is not None:
            return self.holder_ref(*party.holder)
        assert party.department_code is not None  # noqa: S101 - Party's constructors set one of the two
        return party.department_code


@dataclass(frozen=True)
class Changed:
    objection: Objection
    receipt: Receipt


@dataclass(frozen=True)
class Dispute:
    """What the exchange adds to a fetch: disputed at all, the whole record, and which items."""

    disputed: bool
    whole_record: bool
    items: list[str]


@dataclass(frozen=True)
class _Target:
    handler_code: str
    certificate_identifier: str | None = None
    resource_code: str | None = None
    record_key: str | None = None
    holder_ref: str | None = None


# ----------------------------------------------------------------------------- deadlines


def local_today() -> date:
    return local_day(utcnow())


def due_date_for(settings: Settings, moment: datetime) -> date:
    calendar = load_calendar(settings.working_calendar_file)
    return calendar.add_working_days(local_day(moment), settings.objection_working_days)


def is_overdue(objection: Objection, today: date) -> bool:
    """Still waiting for the handler's accept/reject decision after its due date."""
    return objection.status == RAISED and today > objection.due_date


# ----------------------------------------------------------------------------- raise


def raise_objection(
    session: Session, ctx: ObjectionContext, party: Party, body: ObjectionIn | HolderObjectionIn
) -> Changed:
    """Record a new objection (``raised``), audit it and tell the handler."""
    if body.certificate_identifier is not None:
        target = _licence_target(session, ctx, party, body.certificate_identifier, body.item_key)
    else:
        assert isinstance(body, ObjectionIn)  # noqa: S101 - a holder's body always names a licence
        assert body.resource_code is not None  # noqa: S101 - ObjectionIn checks
        assert body.record_key is not None  # noqa: S101 - ObjectionIn checks
        target = _record_target(session, body.resource_code, body.record_key, body.item_key)
    raised_by = ctx.actor(party)
    _refuse_duplicate(session, raised_by, target, body.item_key)
    now = utcnow()
    objection = Objection(
        id=secrets.token_hex(16), raised_by_type="holder" if party.holder else "department", raised_by=raised_by,
        handler_code=target.handler_code, resource_code=target.resource_code,
        certificate_identifier=target.certificate_identifier, record_key=target.record_key, item_key=body.item_key,
        holder_ref=target.holder_ref, claimed_value=body.claimed_value, reason=body.reason,
        evidence=[e.model_dump() for e in body.evidence], status=RAISED, resolution=None,
        due_date=due_date_for(ctx.settings, now), created_at=now, modified_at=now,
    )  # fmt: skip
    session.add(objection)
    session.flush()
    return _record_step(session, ctx, objection, party, None, note=None, now=now)


def _licence_target(
    session: Session, ctx: ObjectionContext, party: Party, identifier: str, item_key: str | None
) -> _Target:
    if party.holder is not None:
        licence = holders.holder_licence_or_raise(session, *party.holder, identifier)  # others': 404
    else:
        licence = lifecycle.get_licence_or_raise(session, identifier)
    if item_key is not None:
        licence_type = session.get(LicenceType, licence.type_code)
        fields = list(((licence_type.face_schema if licence_type else {}) or {}).get("properties", {}))
        if item_key not in fields:
            raise ObjectionItemUnknown(f"face fields of licence type {licence.type_code}: {', '.join(fields)}")
    return _Target(
        handler_code=licence.issuer_code, certificate_identifier=licence.identifier,
        holder_ref=ctx.holder_ref(licence.holder_type, licence.holder_code),
    )  # fmt: skip


def _record_target(session: Session, resource_code: str, record_key: str, item_key: str | None) -> _Target:
    _refuse_id_numbers(record_key)
    resource = session.get(Resource, resource_code)
    if resource is None or resource.status != "published":
        raise ObjectedResourceNotFound(f"no published resource {resource_code}")
    if item_key is not None:
        keys = list(
            session.scalars(
                select(DataItem.key).where(DataItem.resource_code == resource_code).order_by(DataItem.position)
            )
        )
        if item_key not in keys:
            raise ObjectionItemUnknown(f"data items of resource {resource_code}: {', '.join(keys)}")
    return _Target(handler_code=resource.provider_code, resource_code=resource.code, record_key=record_key)


def _refuse_id_numbers(record_key: str) -> None:
    """Record keys travel in audit-adjacent webhooks; GB 11643 ID numbers must not (DESIGN.md §6)."""
    for start in range(len(record_key) - _ID_NUMBER_LENGTH + 1):
        try:
            validate_id_number(record_key[start : start + _ID_NUMBER_LENGTH])
        except InvalidIdNumber:
            continue
        raise ObjectionRecordKeyPersonal("name the record by the provider's record id, not a person's ID number")


def _refuse_duplicate(session: Session, raised_by: str, target: _Target, item_key: str | None) -> None:
    stmt = select(Objection.id).where(
        Objection.raised_by == raised_by,
        Objection.status != CLOSED,
        *_record_filter(target.certificate_identifier, target.resource_code, target.record_key),
        Objection.item_key == item_key if item_key is not None else Objection.item_key.is_(None),
    )
    existing = session.scalar(stmt.limit(1))
    if existing is not None:
        raise ObjectionDuplicate("close the open objection before raising another", objection_id=existing)


# ----------------------------------------------------------------------------- transitions


def transition(
    session: Session, ctx: ObjectionContext, objection_id: str, verb: str, party: Party, *, note: str | None
) -> Changed:
    """Lock the objection, check who acts and that ``verb`` is allowed from its state, then move it."""
    target = VERBS[verb]
    objection = session.scalar(select(Objection).where(Objection.id == objection_id).with_for_update())
    if objection is None or not _may_act(ctx, objection, target, party):
        raise ObjectionNotFound(f"no objection {objection_id}")
    allowed = NEXT[objection.status]
    if target not in allowed:
        raise ObjectionTransitionInvalid(
            f"cannot {verb} an objection that is {objection.status}; allowed next: {', '.join(allowed) or 'none'}",
            objection_status=objection.status, allowed_next=list(allowed),
        )  # fmt: skip
    note = note.strip() if note else None
    if target in REASON_REQUIRED and not note:
        raise ObjectionReasonRequired(f"{verb} needs a reason")
    now = utcnow()
    previous = objection.status
    objection.status, objection.modified_at = target, now
    if target in REASON_REQUIRED:
        objection.resolution = note
    if target in {ACCEPTED, REJECTED}:
        objection.decided_at = now
    if target == CORRECTED and objection.certificate_identifier is not None:
        objection.corrected_identifier = _newest_version(session, objection.certificate_identifier)
    if target == CLOSED:
        objection.closed_at = now
    return _record_step(session, ctx, objection, party, previous, note=note, now=now)


def _may_act(ctx: ObjectionContext, objection: Objection, target: str, party: Party) -> bool:
    is_handler = party.holder is None and party.department_code == objection.handler_code
    if target != CLOSED:
        return is_handler
    return is_handler or party.is_admin or _is_raiser(ctx, objection, party)


def _is_raiser(ctx: ObjectionContext, objection: Objection, party: Party) -> bool:
    kind = "holder" if party.holder is not None else "department"
    return objection.raised_by_type == kind and objection.raised_by == ctx.actor(party)


def _newest_version(session: Session, identifier: str) -> str | None:
    """The licence version that now carries the record, if an amendment or renewal superseded it."""
    current = identifier
    for _ in range(1000):  # GB/T 36904 versions are three digits
        successor = session.scalar(select(Licence.superseded_by).where(Licence.identifier == current))
        if successor is None:
            break
        current = successor
    return None if current == identifier else current


def _record_step(
    session: Session,
    ctx: ObjectionContext,
    objection: Objection,
    party: Party,
    previous: str | None,
    *,
    note: str | None,
    now: datetime,
) -> Changed:
    """The event row, the audit entry and the notices of one step, all in the caller's transaction."""
    actor = ctx.actor(party)
    session.add(
        ObjectionEvent(
            objection_id=objection.id, from_status=previous, to_status=objection.status,
            actor_type=party.actor_type, actor=actor, note=note, time=now,
        )
    )  # fmt: skip
    extra = {"objection_id": objection.id, **({"from_status": previous} if previous else {})}
    event = AuditEvent(
        action=f"catalog.objection.{objection.status}", outcome="ok", actor_type=party.actor_type, actor=actor,
        request_id=request_id_var.get() or "-", time=now, client_id=party.client_id,
        holder_ref=objection.holder_ref, certificate_identifier=objection.certificate_identifier,
        resource_code=objection.resource_code, fields=(objection.item_key,) if objection.item_key else None,
        extra=extra,
    )  # fmt: skip
    receipt = ctx.record(session, event)
    _notify(session, ctx.settings, objection, party)
    session.flush()
    return Changed(objection, receipt)


# ----------------------------------------------------------------------------- notices


def _notify(session: Session, settings: Settings, objection: Objection, party: Party) -> None:
    """Each side hears of the other's steps; a correction also reaches every department that fetched the record.

    The event carries identifiers only (no claimed value, no reason): receivers read the rest here.
    """
    recipients = {objection.handler_code}
    if objection.raised_by_type == "department":
        recipients.add(objection.raised_by)
    if objection.status == CORRECTED:
        recipients.update(
            fetching_departments(
                session, certificate_identifier=objection.certificate_identifier, resource_code=objection.resource_code
            )
        )
    if party.holder is None and party.department_code is not None:
        recipients.discard(party.department_code)
    data: dict[str, Any] = {"objection_id": objection.id, "status": objection.status, "item_key": objection.item_key}
    if objection.certificate_identifier is not None:
        data["certificate_identifier"] = objection.certificate_identifier
        if objection.status == CORRECTED:
            data["new_certificate_identifier"] = objection.corrected_identifier
    else:
        data |= {"resource_code": objection.resource_code, "record_key": objection.record_key}
    if objection.status == RAISED:
        data["due_date"] = objection.due_date.isoformat()
    subject = objection.certificate_identifier or objection.resource_code or objection.id
    for code in sorted(recipients):
        webhooks.emit(
            session, settings, department_code=code, type=EVENT_TYPE_PREFIX + objection.status, subject=subject,
            data=data, event_id=f"objection.{objection.id}.{objection.status}",
        )  # fmt: skip


def fetching_departments(
    session: Session, *, certificate_identifier: str | None = None, resource_code: str | None = None
) -> list[str]:
    """Departments that fetched a licence (or any record of a resource) successfully, from the audit log.

    A resource fetch is matched by resource code only: the log has no record column, so every
    department that fetched from the resource hears of the correction (over-inclusive, never silent).
    """
    if (certificate_identifier is None) == (resource_code is None):
        msg = "name a licence or a resource"
        raise ValueError(msg)
    column = AuditEntry.certificate_identifier if certificate_identifier is not None else AuditEntry.resource_code
    stmt = (
        select(AuditEntry.department_code)
        .where(column == (certificate_identifier or resource_code))
        .where(*(AuditEntry.action.like(pattern) for pattern in FETCH_ACTIONS))
        .where(AuditEntry.outcome == "ok", AuditEntry.department_code.is_not(None))
        .distinct()
    )
    return sorted(code for code in session.scalars(stmt) if code)


# ----------------------------------------------------------------------------- reads


def _visible_to(ctx: ObjectionContext, party: Party) -> list[ColumnElement[bool]]:
    if party.is_admin:
        return []
    if party.holder is not None:
        return [Objection.raised_by_type == "holder", Objection.raised_by == ctx.actor(party)]
    code = party.department_code
    return [
        or_(
            Objection.handler_code == code,
            and_(Objection.raised_by_type == "department", Objection.raised_by == code),
        )
    ]


def get_objection_or_raise(session: Session, ctx: ObjectionContext, party: Party, objection_id: str) -> Objection:
    """The objection if ``party`` raised it, handles it or is an admin; anyone else: the same 404 (no IDOR)."""
    objection = session.scalar(select(Objection).where(Objection.id == objection_id, *_visible_to(ctx, party)))
    if objection is None:
        raise ObjectionNotFound(f"no objection {objection_id}")
    return objection


def list_objections(
    session: Session,
    ctx: ObjectionContext,
    party: Party,
    *,
    today: date,
    status: str | None = None,
    overdue: bool | None = None,
    role: Literal["raiser", "handler"] | None = None,
    limit: int = 100,
) -> list[Objection]:
    """Objections ``party`` may see, newest first."""
    stmt = select(Objection).where(*_visible_to(ctx, party))
    if status is not None:
        stmt = stmt.where(Objection.status == status)
    if overdue is True:
        stmt = stmt.where(Objection.status == RAISED, Objection.due_date < today)
    elif overdue is False:
        stmt = stmt.where(or_(Objection.status != RAISED, Objection.due_date >= today))
    if role == "handler":
        stmt = stmt.where(Objection.handler_code == party.department_code)
    elif role == "raiser":
        stmt = stmt.where(Objection.raised_by == ctx.actor(party))
    return list(session.scalars(stmt.order_by(Objection.created_at.desc(), Objection.id).limit(limit)))


def history(session: Session, objection_id: str) -> Sequence[ObjectionEvent]:
    stmt = select(ObjectionEvent).where(ObjectionEvent.objection_id == objection_id).order_by(ObjectionEvent.id)
    return list(session.scalars(stmt))


# ----------------------------------------------------------------------------- the disputed flag


def _record_filter(
    certificate_identifier: str | None, resource_code: str | None, record_key: str | None
) -> list[ColumnElement[bool]]:
    if certificate_identifier is not None and resource_code is None and record_key is None:
        return [Objection.certificate_identifier == certificate_identifier]
    if certificate_identifier is None and resource_code is not None and record_key is not None:
        return [Objection.resource_code == resource_code, Objection.record_key == record_key]
    msg = "name a certificate_identifier, or a resource_code and a record_key"
    raise ValueError(msg)


def is_disputed(
    session: Session,
    *,
    certificate_identifier: str | None = None,
    resource_code: str | None = None,
    record_key: str | None = None,
) -> bool:
    """True while any objection on the record is flagged or verifying (one probe of an index)."""
    where = _record_filter(certificate_identifier, resource_code, record_key)
    stmt = select(Objection.id).where(*where, Objection.status.in_(DISPUTED)).limit(1)
    return session.scalar(stmt) is not None


def disputed_licences(session: Session, identifiers: Collection[str]) -> set[str]:
    """Which of these licences are under dispute now: :func:`is_disputed` for many in one query."""
    if not identifiers:
        return set()
    stmt = select(Objection.certificate_identifier).where(
        Objection.certificate_identifier.in_(identifiers), Objection.status.in_(DISPUTED)
    )
    return {identifier for identifier in session.scalars(stmt.distinct()) if identifier is not None}


UNDISPUTED = Dispute(disputed=False, whole_record=False, items=[])


def disputes(session: Session, identifiers: Collection[str]) -> dict[str, Dispute]:
    """:func:`dispute` for many licences in one query; licences not under dispute are left out."""
    if not identifiers:
        return {}
    stmt = select(Objection.certificate_identifier, Objection.item_key).where(
        Objection.certificate_identifier.in_(identifiers), Objection.status.in_(DISPUTED)
    )
    keys: dict[str, set[str | None]] = {}
    for identifier, item_key in session.execute(stmt.distinct()):
        if identifier is not None:
            keys.setdefault(identifier, set()).add(item_key)
    return {
        identifier: Dispute(disputed=True, whole_record=None in found, items=sorted(k for k in found if k is not None))
        for identifier, found in keys.items()
    }


def disputed_items(
    session: Session,
    *,
    certificate_identifier: str | None = None,
    resource_code: str | None = None,
    record_key: str | None = None,
) -> list[str]:
    """Item keys under dispute; an objection against the whole record adds none (see ``dispute``)."""
    return dispute(
        session, certificate_identifier=certificate_identifier, resource_code=resource_code, record_key=record_key
    ).items


def dispute(
    session: Session,
    *,
    certificate_identifier: str | None = None,
    resource_code: str | None = None,
    record_key: str | None = None,
) -> Dispute:
    """Both answers in one index-only query (the index ends in item_key): what a fetch response needs."""
    where = _record_filter(certificate_identifier, resource_code, record_key)
    keys = set(session.scalars(select(Objection.item_key).where(*where, Objection.status.in_(DISPUTED)).distinct()))
    return Dispute(disputed=bool(keys), whole_record=None in keys, items=sorted(k for k in keys if k is not None))
