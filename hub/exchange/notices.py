"""Push notices: a department that relied on a licence hears when it changes.

Every verifier elsewhere (OOTS, X-Road, DigiLocker) must pull status again; here, when a licence is
suspended, reinstated, revoked, amended, renewed or expires, each department with a successful fetch or
verify of it (any earlier version included) within ``HUB_EXCHANGE_NOTICE_WINDOW_DAYS`` gets a CloudEvent
through its webhook endpoints. The relying departments come from the audit log, the one record of who
used what; the event is written in the change's own transaction and delivered after it commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.models import AuditEntry
from hub.clock import utcnow
from hub.settings import Settings
from hub.webhooks import service as webhooks
from licences import lifecycle
from licences.models import Licence

FETCHED = "exchange.licence.fetched"
VERIFIED = "exchange.licence.verified"
EVENT_TYPE = "cn.gov.licence-hub.licence.{verb}"  # same family as cn.gov.licence-hub.licence.expiring


def relying_departments(session: Session, identifiers: list[str], *, since: datetime) -> list[str]:
    """Departments with an ok fetch or verify of any of ``identifiers`` at or after ``since``."""
    query = (
        select(AuditEntry.department_code)
        .where(
            AuditEntry.certificate_identifier.in_(identifiers),
            AuditEntry.action.in_((FETCHED, VERIFIED)),
            AuditEntry.outcome == "ok",
            AuditEntry.time >= since,
            AuditEntry.department_code.is_not(None),
        )
        .distinct()
    )
    return sorted(code for code in session.scalars(query) if code)


def earlier_versions(session: Session, licence: Licence) -> list[str]:
    """``licence``'s identifier and every version it supersedes (a department may hold any of them)."""
    chain, current = [licence.identifier], licence.supersedes
    while current and len(chain) < 1000:  # versions are 3 digits (GB/T 36904): a chain ends well before this
        chain.append(current)
        current = session.scalar(select(Licence.supersedes).where(Licence.identifier == current))
    return chain


def notify_relying(
    session: Session, settings: Settings, verb: str, licence: Licence, new: Licence | None, *, now: datetime
) -> list[str]:
    """Emit one event per relying department; returns their codes. Identifiers and status only, no face."""
    since = now - timedelta(days=settings.exchange_notice_window_days)
    departments = relying_departments(session, earlier_versions(session, licence), since=since)
    changed_at = licence.status_changed_at or now
    data = {
        "certificate_identifier": licence.identifier,
        "certificate_type_code": licence.type_code,
        "change": verb,
        "status": licence.status,
        "status_reason": licence.status_reason,
        "new_certificate_identifier": new.identifier if new else None,
        "changed_at": changed_at.isoformat(),
    }
    event_id = f"{licence.identifier}.{verb}.{int(changed_at.timestamp() * 1000)}"
    for code in departments:
        webhooks.emit(
            session, settings, department_code=code, type=EVENT_TYPE.format(verb=verb),
            subject=licence.identifier, data=data, event_id=event_id,
        )  # fmt: skip
    return departments


def _on_change(session: Session, verb: str, licence: Licence, new: Licence | None) -> None:
    from hub.runtime import get_runtime  # noqa: PLC0415 - the process's settings, resolved when a licence changes

    notify_relying(session, get_runtime().settings, verb, licence, new, now=utcnow())


def register() -> None:
    if _on_change not in lifecycle.change_hooks:
        lifecycle.change_hooks.append(_on_change)
