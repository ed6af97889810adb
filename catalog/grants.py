"""Grant lifecycle (共享授权): creation from an approved request, suspend / reinstate / revoke / renew, expiry.

States: active ⇄ suspended; active / suspended / expired → revoked (final); active / suspended → expired
(the periodic job ``catalog.grants.expire``); renew extends ``valid_until`` and brings an expired grant
back to active. Every change locks the row, bumps ``Grant.revision`` and the ``grants`` generation in
the caller's transaction (so the exchange's cache drops it), and suspend / revoke / expire notify the
consumer through its webhooks after commit. Only the provider (or an admin) changes a grant; the
consumer sees it; everyone else gets the same 404 as for a missing grant.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from audit import service as audit
from audit.append import AuditSigner
from audit.entries import AuditEvent
from catalog.grant_check import ACTIVE, EXPIRED, REVOKED, SUSPENDED, note_grants_changed
from catalog.models import DataItem, Grant, Resource
from hub.clock import utcnow
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.observability import request_id_var
from hub.settings import Settings
from hub.webhooks import service as webhooks

STATUSES = (ACTIVE, SUSPENDED, REVOKED, EXPIRED)
# from-statuses of each transition; revoked is final.
ALLOWED = {
    "suspend": (ACTIVE,),
    "reinstate": (SUSPENDED,),
    "revoke": (ACTIVE, SUSPENDED, EXPIRED),
    "renew": (ACTIVE, SUSPENDED, EXPIRED),
    "expire": (ACTIVE, SUSPENDED),
}
_TARGET = {"suspend": SUSPENDED, "reinstate": ACTIVE, "revoke": REVOKED, "expire": EXPIRED}
NOTIFIED = frozenset({"suspend", "revoke", "expire", "reinstate", "renew"})
EVENT_TYPE = "cn.gov.licence-hub.catalog.grant.{verb}"
MAX_VALID_DAYS = 3650
EXPIRE_CHUNK = 500
Role = Literal["consumer", "provider"]


class GrantNotFound(NotFound):
    code = "grant_not_found"
    title = "No grant has this id"


class GrantTransitionNotAllowed(Conflict):
    code = "grant_transition_not_allowed"
    title = "The grant's status does not allow this change"


class GrantChangeForbidden(Forbidden):
    code = "grant_change_forbidden"
    title = "Only the providing department (or an admin) may change a grant"


class GrantRenewalInvalid(InvalidInput):
    code = "grant_renewal_invalid"
    title = "The renewal must extend the grant's validity"


@dataclass(frozen=True)
class Viewer:
    """Who asks: a department's USCC, or an admin (sees and changes every grant)."""

    department_code: str
    admin: bool = False


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def default_consent(resource: Resource, items: Iterable[DataItem]) -> bool:
    """Holder consent (用证授权) is required by default when personal data is shared (PIPL 第十三条, 第十四条)."""
    return resource.contains_personal_data or any(item.personal for item in items)


def create_grant(
    session: Session,
    *,
    consumer_code: str,
    resource: Resource,
    items: list[str],
    matter_codes: list[str],
    purpose: str,
    legal_basis: str,
    consent_required: bool,
    valid_days: int,
    quota_per_day: int | None,
    request_id: str | None,
    now: datetime | None = None,
) -> Grant:
    """A new active grant valid from ``now`` for ``valid_days`` days."""
    now = now or utcnow()
    grant = Grant(
        id=new_id("gr"), consumer_code=consumer_code, provider_code=resource.provider_code,
        resource_code=resource.code, items=list(items), matter_codes=list(matter_codes), purpose=purpose,
        legal_basis=legal_basis, consent_required=consent_required, valid_from=now,
        valid_until=now + timedelta(days=valid_days), quota_per_day=quota_per_day, status=ACTIVE,
        status_reason=None, request_id=request_id, revision=1, created_at=now, modified_at=now,
    )  # fmt: skip
    session.add(grant)
    session.flush()
    note_grants_changed(session)
    return grant


def get_grant_or_raise(session: Session, grant_id: str, viewer: Viewer, *, lock: bool = False) -> Grant:
    """The grant if ``viewer`` is its consumer, its provider or an admin; others get the same 404."""
    grant = session.get(Grant, grant_id, with_for_update=lock or None)
    if grant is None or not (viewer.admin or viewer.department_code in {grant.consumer_code, grant.provider_code}):
        raise GrantNotFound(f"no grant {grant_id}")
    return grant


def grant_for_change(session: Session, grant_id: str, viewer: Viewer) -> Grant:
    """The locked grant if ``viewer`` may change it (its provider or an admin)."""
    grant = get_grant_or_raise(session, grant_id, viewer, lock=True)
    if not viewer.admin and viewer.department_code != grant.provider_code:
        raise GrantChangeForbidden("the consumer of a grant may read it; its provider changes it")
    return grant


def list_grants(
    session: Session,
    viewer: Viewer,
    *,
    role: Role | None = None,
    status: str | None = None,
    resource_code: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[Grant]:
    """Grants the viewer may see (``role`` narrows to one side), in id order (keyset: pass the last id as ``after``)."""
    stmt = select(Grant).order_by(Grant.id).limit(limit)
    if role == "consumer":
        stmt = stmt.where(Grant.consumer_code == viewer.department_code)
    elif role == "provider":
        stmt = stmt.where(Grant.provider_code == viewer.department_code)
    elif not viewer.admin:
        stmt = stmt.where(
            or_(Grant.consumer_code == viewer.department_code, Grant.provider_code == viewer.department_code)
        )
    if status is not None:
        stmt = stmt.where(Grant.status == status)
    if resource_code is not None:
        stmt = stmt.where(Grant.resource_code == resource_code)
    if after is not None:
        stmt = stmt.where(Grant.id > after)
    return list(session.scalars(stmt))


def change_status(
    session: Session,
    settings: Settings,
    grant: Grant,
    transition: str,
    *,
    reason: str | None,
    now: datetime | None = None,
) -> Grant:
    """Suspend / reinstate / revoke / expire a locked grant."""
    _check(grant, transition)
    grant.status = _TARGET[transition]
    grant.status_reason = None if transition == "reinstate" else reason
    _changed(session, settings, grant, transition, now or utcnow())
    return grant


def renew(
    session: Session,
    settings: Settings,
    grant: Grant,
    *,
    valid_days: int | None = None,
    valid_until: datetime | None = None,
    now: datetime | None = None,
) -> Grant:
    """Extend a locked grant to ``valid_until``, or by ``valid_days`` (default setting) from its end or now.

    An expired grant becomes active again; a suspended one stays suspended.
    """
    _check(grant, "renew")
    now = now or utcnow()
    if valid_until is None:
        days = valid_days or settings.grant_default_valid_days
        valid_until = max(now, grant.valid_until) + timedelta(days=days)
    if valid_until.tzinfo is None:
        raise GrantRenewalInvalid("valid_until needs a time zone offset (RFC 3339)")
    if valid_until <= max(now, grant.valid_until):
        raise GrantRenewalInvalid("the new valid_until must be later than both now and the current valid_until")
    if valid_until > now + timedelta(days=MAX_VALID_DAYS):
        raise GrantRenewalInvalid(f"a grant runs at most {MAX_VALID_DAYS} days from now")
    grant.valid_until = valid_until
    if grant.status == EXPIRED:
        grant.status, grant.status_reason = ACTIVE, None
    _changed(session, settings, grant, "renew", now)
    return grant


def _check(grant: Grant, transition: str) -> None:
    if grant.status not in ALLOWED[transition]:
        raise GrantTransitionNotAllowed(
            f"cannot {transition} a {grant.status} grant; allowed from: {', '.join(ALLOWED[transition])}",
            grant_status=grant.status,
        )


def _changed(session: Session, settings: Settings, grant: Grant, transition: str, now: datetime) -> None:
    grant.revision += 1
    grant.modified_at = now
    session.flush()
    note_grants_changed(session)
    if transition in NOTIFIED:
        verb = past_tense(transition)
        data: dict[str, object] = {
            "grant_id": grant.id, "resource_code": grant.resource_code, "status": grant.status,
            "valid_until": grant.valid_until.isoformat(), "revision": grant.revision,
        }  # fmt: skip
        if grant.status_reason:
            data["reason"] = grant.status_reason
        webhooks.emit(
            session, settings, department_code=grant.consumer_code, type=EVENT_TYPE.format(verb=verb),
            subject=grant.id, data=data, event_id=f"grant-{grant.id}-r{grant.revision}",
        )  # fmt: skip


def past_tense(transition: str) -> str:
    """The verb of a transition as audit actions and webhook types spell it (``suspend`` → ``suspended``)."""
    return {"suspend": "suspended", "reinstate": "reinstated", "revoke": "revoked", "renew": "renewed"}.get(
        transition, f"{transition}d"
    )


def expire_due(
    session_scope: Callable[[], AbstractContextManager[Session]],
    settings: Settings,
    signer: Callable[[], AuditSigner],
    *,
    now: datetime | None = None,
) -> int:
    """Mark active / suspended grants past ``valid_until`` expired, 500 per transaction; returns how many.

    Safe to repeat: a grant already expired (by a concurrent run) is skipped under its row lock.
    """
    now = now or utcnow()
    expired = 0
    while True:
        with session_scope() as session:
            due = list(
                session.scalars(
                    select(Grant.id)
                    .where(Grant.status.in_(ALLOWED["expire"]), Grant.valid_until <= now)
                    .order_by(Grant.id)
                    .limit(EXPIRE_CHUNK)
                )
            )
            for grant_id in due:
                grant = session.get(Grant, grant_id, with_for_update=True, populate_existing=True)
                if grant is None or grant.status not in ALLOWED["expire"] or grant.valid_until > now:
                    continue
                change_status(session, settings, grant, "expire", reason="validity window ended", now=now)
                audit.record(session, signer(), _system_event(grant))
                expired += 1
        if len(due) < EXPIRE_CHUNK:
            return expired


def _system_event(grant: Grant) -> AuditEvent:
    return AuditEvent(
        action="catalog.grant.expired", outcome="ok", actor_type="system", actor="system",
        request_id=request_id_var.get() or "-", time=utcnow(), resource_code=grant.resource_code,
        extra={"grant_id": grant.id, "consumer_code": grant.consumer_code, "revision": str(grant.revision)},
    )  # fmt: skip
