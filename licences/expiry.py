"""Expiry: licences past their validity become ``expired``; reminders go out 30 / 7 / 1 days before.

Each reminder is sent once: its (licence, days) key is inserted in the same transaction as the
holder's inbox entry and the issuer's webhook event, so a retried or concurrent run either finds the
key taken (and sends nothing) or rolls back everything it would have sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.clock import china_today, utcnow
from licences.issuance import SUSPENDED, SYSTEM, VALID, LicenceContext
from licences.lifecycle import expire_one
from licences.models import ExpiryReminder, HolderNotification, Licence

CHUNK = 500  # licences per transaction


class IssuerNotifier(Protocol):
    """Sends an event to the issuing department's webhooks in the caller's transaction (hub.webhooks)."""

    def __call__(
        self,
        session: Session,
        *,
        department_code: str,
        type: str,  # noqa: A002 - the CloudEvents attribute name
        subject: str,
        data: dict[str, Any],
        event_id: str,
    ) -> None: ...


@dataclass
class ExpiryReport:
    expired: int = 0
    reminded: int = 0


SessionScope = Callable[[], Any]


def run(
    session_scope: SessionScope,
    ctx: LicenceContext,
    notify_issuer: IssuerNotifier,
    *,
    today: date | None = None,
    reminder_days: Sequence[int] = (30, 7, 1),
) -> ExpiryReport:
    """One pass of the scheduled job; safe to run again at any time."""
    today = today or china_today()
    report = ExpiryReport()
    while True:
        with session_scope() as session:
            due = list(
                session.scalars(
                    select(Licence.pk)
                    .where(Licence.status.in_([VALID, SUSPENDED]), Licence.validity_end < today)
                    .order_by(Licence.pk)
                    .limit(CHUNK)
                )
            )
            for pk in due:
                changed = expire_one(session, ctx, pk, SYSTEM)
                if changed is not None:
                    report.expired += 1
                    _expired_notice(session, notify_issuer, changed.licence)
        if len(due) < CHUNK:
            break
    days = sorted(set(reminder_days))
    if days:
        report.reminded = _remind(session_scope, notify_issuer, today, days)
    return report


def due_reminder(days_left: int, days: Sequence[int]) -> int | None:
    """The most specific reminder due: 20 days left → the 30-day one; 5 → 7; 0 → 1 (sorted ``days``)."""
    return next((d for d in days if days_left <= d), None)


def _remind(session_scope: SessionScope, notify: IssuerNotifier, today: date, days: Sequence[int]) -> int:
    sent = 0
    last_pk = 0
    horizon = today + timedelta(days=max(days))
    while True:
        with session_scope() as session:
            batch = list(
                session.scalars(
                    select(Licence)
                    .where(Licence.status == VALID, Licence.validity_end >= today, Licence.validity_end <= horizon)
                    .where(Licence.pk > last_pk)
                    .order_by(Licence.pk)
                    .limit(CHUNK)
                )
            )
            for licence in batch:
                assert licence.validity_end is not None  # noqa: S101 - the query selects dated licences only
                d = due_reminder((licence.validity_end - today).days, days)
                if d is None or _reminded(session, licence.pk, d):
                    continue
                if _send_reminder(session, notify, licence, d, today):
                    sent += 1
        if len(batch) < CHUNK:
            return sent
        last_pk = batch[-1].pk


def _reminded(session: Session, pk: int, days: int) -> bool:
    return bool(
        session.scalar(select(exists().where(ExpiryReminder.licence_pk == pk, ExpiryReminder.days_before == days)))
    )


def _send_reminder(session: Session, notify: IssuerNotifier, licence: Licence, days: int, today: date) -> bool:
    assert licence.validity_end is not None  # noqa: S101
    try:
        with session.begin_nested():
            session.add(ExpiryReminder(licence_pk=licence.pk, days_before=days, sent_at=utcnow()))
            session.flush()
    except IntegrityError:
        return False  # a concurrent run sent it
    end = licence.validity_end.isoformat()
    _inbox(
        session, licence, kind="licence.expiring", dedupe=f"expiring:{licence.identifier}:{days}",
        title=f"您的{licence.type_name}将于{end}到期",
        body=(
            f"{licence.type_name}（{licence.certificate_number}）有效期至{end}，"
            f"还有{(licence.validity_end - today).days}天。请及时向{licence.issuer_name}申请延续。"
        ),
    )  # fmt: skip
    notify(
        session, department_code=licence.issuer_code, type="cn.gov.licence-hub.licence.expiring",
        subject=licence.identifier, event_id=f"expiring-{licence.identifier}-{days}",
        data={"certificate_identifier": licence.identifier, "certificate_type_code": licence.type_code,
              "certificate_validity_end": end, "days_before": days},
    )  # fmt: skip
    return True


def _expired_notice(session: Session, notify: IssuerNotifier, licence: Licence) -> None:
    end = licence.validity_end.isoformat() if licence.validity_end else ""
    _inbox(
        session, licence, kind="licence.expired", dedupe=f"expired:{licence.identifier}",
        title=f"您的{licence.type_name}已过期",
        body=f"{licence.type_name}（{licence.certificate_number}）已于{end}到期失效。",
    )  # fmt: skip
    notify(
        session, department_code=licence.issuer_code, type="cn.gov.licence-hub.licence.expired",
        subject=licence.identifier, event_id=f"expired-{licence.identifier}",
        data={"certificate_identifier": licence.identifier, "certificate_type_code": licence.type_code,
              "certificate_validity_end": end},
    )  # fmt: skip


def _inbox(session: Session, licence: Licence, *, kind: str, dedupe: str, title: str, body: str) -> None:
    session.add(
        HolderNotification(
            holder_type=licence.holder_type, holder_code=licence.holder_code, kind=kind, title=title, body=body,
            certificate_identifier=licence.identifier, dedupe_key=dedupe, created_at=utcnow(),
        )
    )  # fmt: skip
