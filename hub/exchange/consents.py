"""Holder consents (用证授权): given and withdrawn by the holder, checked by every fetch whose grant needs one.

A consent names one department and one matter, optionally one case number, and always an expiry: the
holder says who may use their data and why, never "anyone, forever" (Singapore Myinfo: one purpose per
request; the EU OOTS: the user's explicit request). Withdrawal takes effect for the next fetch.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from catalog.models import Matter
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.exchange.models import Consent
from hub.identity.models import Department

MAX_CONSENT_DAYS = 365  # a consent is a decision about a purpose, renewed deliberately


class ConsentNotFound(NotFound):
    code = "consent_not_found"
    title = "No consent of yours has this id"


class ConsentInvalid(InvalidInput):
    code = "consent_invalid"
    title = "The consent is not valid"


class ConsentMissing(Forbidden):
    code = "consent_missing"
    title = "The holder has not consented to this department using their data for this matter"


class ConsentWithdrawn(Forbidden):
    code = "consent_withdrawn"
    title = "The holder withdrew their consent for this department and matter"


class ConsentExpired(Forbidden):
    code = "consent_expired"
    title = "The holder's consent for this department and matter has expired"


class ConsentForOtherDepartment(Forbidden):
    code = "consent_other_department"
    title = "The holder consented to another department for this matter, not to this one"


class ConsentForOtherCase(Forbidden):
    code = "consent_other_case"
    title = "The holder's consent for this matter names another case number"


@dataclass(frozen=True)
class HolderKey:
    """Whose consents: the holder's type (111 / 001) and code."""

    holder_type: str
    holder_code: str


def give(
    session: Session,
    holder: HolderKey,
    *,
    department_code: str,
    matter_code: str,
    case_number: str | None,
    expires_at: datetime,
    now: datetime,
) -> Consent:
    """Record a consent after checking the department and matter exist and the expiry is sensible."""
    department = session.get(Department, department_code)
    if department is None or not department.active:
        raise ConsentInvalid(f"no active department {department_code}")
    matter = session.get(Matter, matter_code)
    if matter is None or matter.status != "active":
        raise ConsentInvalid(f"no active matter {matter_code}")
    if expires_at <= now:
        raise ConsentInvalid("expires_at must be in the future")
    if expires_at > now + timedelta(days=MAX_CONSENT_DAYS):
        raise ConsentInvalid(f"a consent lasts at most {MAX_CONSENT_DAYS} days")
    consent = Consent(
        id=secrets.token_hex(16), holder_type=holder.holder_type, holder_code=holder.holder_code,
        department_code=department.code, matter_code=matter.code, case_number=case_number,
        expires_at=expires_at, created_at=now,
    )  # fmt: skip
    session.add(consent)
    session.flush()
    return consent


def list_for_holder(session: Session, holder: HolderKey) -> list[Consent]:
    query = (
        select(Consent)
        .where(Consent.holder_type == holder.holder_type, Consent.holder_code == holder.holder_code)
        .order_by(Consent.created_at.desc(), Consent.id)
    )
    return list(session.scalars(query))


def withdraw(session: Session, holder: HolderKey, consent_id: str, *, now: datetime) -> Consent:
    """Withdraw one of the holder's consents; someone else's id gets the same 404 as a missing one."""
    consent = session.get(Consent, consent_id, with_for_update=True)
    if consent is None or (consent.holder_type, consent.holder_code) != (holder.holder_type, holder.holder_code):
        raise ConsentNotFound(f"no consent {consent_id}")
    if consent.withdrawn_at is None:
        consent.withdrawn_at = now
        session.flush()
    return consent


def check(
    session: Session, holder: HolderKey, *, department_code: str, matter_code: str, case_number: str | None,
    at: datetime,
) -> Consent:  # fmt: skip
    """The consent that lets ``department_code`` fetch for this matter and case, or the most specific refusal.

    ``case_number`` None (a materials check, before a case is opened) accepts a consent for any case.
    """
    found = for_matters(session, [(holder.holder_type, holder.holder_code, matter_code)])
    return choose(found.get((holder.holder_type, holder.holder_code, matter_code), []),
                  department_code=department_code, case_number=case_number, at=at)  # fmt: skip


ConsentKey = tuple[str, str, str]  # holder type, holder code, matter code


def for_matters(session: Session, keys: Collection[ConsentKey]) -> dict[ConsentKey, list[Consent]]:
    """Every consent of these holders for these matters, in one query (a batch of fetches asks once)."""
    if not keys:
        return {}
    found: dict[ConsentKey, list[Consent]] = {}
    stmt = select(Consent).where(tuple_(Consent.holder_type, Consent.holder_code, Consent.matter_code).in_(keys))
    for consent in session.scalars(stmt):
        found.setdefault((consent.holder_type, consent.holder_code, consent.matter_code), []).append(consent)
    return found


def choose(rows: Sequence[Consent], *, department_code: str, case_number: str | None, at: datetime) -> Consent:
    """Of one holder's consents for one matter: the usable one for this department and case, or why none is."""
    mine = [c for c in rows if c.department_code == department_code]
    for consent in mine:
        case_ok = case_number is None or consent.case_number in {None, case_number}
        if consent.withdrawn_at is None and consent.expires_at > at and case_ok:
            return consent
    # No usable consent: say why, most specific first (what the holder would have to do differs).
    if any(c.withdrawn_at is not None for c in mine):
        raise ConsentWithdrawn
    if any(c.expires_at <= at for c in mine):
        raise ConsentExpired
    if mine:
        raise ConsentForOtherCase
    if rows:
        raise ConsentForOtherDepartment
    raise ConsentMissing
