"""Verify-and-fetch (核验调取): a department gets the granted fields of a holder's licence for a matter and case.

Checks run in a fixed order and the first failure is the answer (and the audited error code): the
caller's scope (HTTP dependency); the licence type's catalogue resource and a grant for this department,
matter, window, status, fields and daily quota (``catalog.grant_check``); the holder's consent when the
grant requires one; then the licence itself (held, not revoked, suspended, expired or superseded). The
grant is decided from the identifier's type code *before* the licence is looked up, so a department
without a grant learns nothing about whether the holder holds anything.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from catalog import objections
from catalog.grant_check import (
    GrantCache,
    GrantDecision,
    GrantMissing,
    GrantQuotaExceeded,
    check_grant,
    lock_usage,
    seconds_to_local_midnight,
    set_usage,
)
from catalog.models import Matter, Resource
from catalog.workdays import local_day
from hub.codes import validate_holder_code
from hub.errors import Conflict, DomainError, InvalidInput, NotFound
from hub.exchange import consents, copies
from hub.settings import Settings
from licences.holders import live_status
from licences.identifiers import parse_identifier, validate_type_code
from licences.issuance import metadata
from licences.models import Licence, LicenceType

VALID = "valid"


class FetchTargetInvalid(InvalidInput):
    code = "fetch_target_invalid"
    title = "Name exactly one of certificate_type_code or certificate_identifier"


class PurposeMissing(InvalidInput):
    """A fetch states its purpose: matter, case number and officer (X-Road carries them on every call)."""

    code = "purpose_missing"
    title = "A fetch must name the matter, the case number and the officer"

    def __init__(self, missing: str) -> None:
        super().__init__(f"{missing} is required")
        self.code = f"{missing}_missing"  # type: ignore[misc]  # matter_code_missing, case_number_missing, ...


class MatterNotFound(NotFound):
    code = "matter_not_found"
    title = "No active matter has this code"


class LicenceNotHeld(NotFound):
    code = "licence_not_held"
    title = "The holder holds no current licence of this type (or with this identifier)"


class LicenceNotValid(Conflict):
    """The licence exists but may not be relied on; ``code`` names its status."""

    code = "licence_not_valid"
    title = "The licence is not valid"

    def __init__(self, status: str, detail: str, **extensions: object) -> None:
        super().__init__(detail, **extensions)
        self.code = f"licence_{status}"  # type: ignore[misc]  # licence_revoked, licence_suspended, ...


@dataclass(frozen=True)
class FetchRequest:
    department_code: str
    matter_code: str
    case_number: str
    officer_id: str
    holder_type: str
    holder_code: str
    certificate_type_code: str | None
    certificate_identifier: str | None
    fields: list[str] | None


@dataclass(frozen=True)
class Fetched:
    """What a fetch may disclose, as plain values: built inside the batch's transaction, shown after its audit."""

    licence: dict[str, Any]  # DESIGN.md §3 metadata and the granted face fields only
    certificate_identifier: str
    decision: GrantDecision
    fields: list[str]
    disputed: bool
    disputed_items: list[str]
    copy_id: str
    file_url_expires_at: datetime


@dataclass(frozen=True, slots=True)
class Target:
    """What a call names, checked: its licence type, and the licence's identifier (None: the holder's newest)."""

    type_code: str
    identifier: str | None


def target(request: FetchRequest) -> Target:
    """The call's target, from the request alone (no database read); the identifier parsed and checked once."""
    if (request.certificate_type_code is None) == (request.certificate_identifier is None):
        raise FetchTargetInvalid
    if request.certificate_identifier is not None:
        parsed = parse_identifier(request.certificate_identifier)
        return Target(parsed.type_code, str(parsed))
    return Target(validate_type_code(request.certificate_type_code or ""), None)


def decide(
    session: Session, cache: GrantCache, request: FetchRequest, type_code: str, *, at: datetime
) -> GrantDecision:
    """The grant decision for this department, the type's catalogue resource and the matter (no quota counted)."""
    resource = _resources(session, {type_code}).get(type_code)
    if resource is None:  # nothing published, so nothing can have been granted
        raise GrantMissing(f"licence type {type_code} is not published in the catalogue")
    return check_grant(
        session, cache, consumer_code=request.department_code, resource_code=resource,
        matter_code=request.matter_code, fields=request.fields, at=at,
    )  # fmt: skip


def holders_licence(session: Session, request: FetchRequest, type_code: str) -> Licence:
    """The licence named, if it is the holder's; else the holder's newest current licence of the type."""
    named = target(request) if request.certificate_identifier is not None else Target(type_code, None)
    return _holders_licences(session, [(request, named)])(request, named)


def check_licence(licence: Licence) -> None:
    status = live_status(licence)
    if status == VALID:
        return
    extra = {"superseded_by": licence.superseded_by} if status == "superseded" and licence.superseded_by else {}
    raise LicenceNotValid(status, f"the licence is {status}", **extra)


def _check_request(request: FetchRequest) -> None:
    for name in ("matter_code", "case_number", "officer_id"):
        if not getattr(request, name).strip():
            raise PurposeMissing(name)
    validate_holder_code(request.holder_type, request.holder_code)


def fetch_many(
    session: Session, cache: GrantCache, settings: Settings, requests: Sequence[FetchRequest], *, at: datetime
) -> list[Fetched | DomainError]:
    """Fetch for many callers at once: each call's answer or refusal, as if they had run one after another.

    Each call is checked in the module docstring's order and gets its first refusal; a call that passes
    consumes one unit of its grant's daily quota and promises a purpose-stamped copy. The batch reads
    each kind of thing once (matters, resources, consents, licences, types, disputes) and writes the
    quota counts and the copies in one statement each, in the caller's transaction; per call that is
    a fraction of a millisecond where one session per call cost several.

    Calls are judged in order, so the quota goes as it would have serially: a call refused later (no
    consent, licence revoked) gives its unit back, as its rolled-back transaction would have.
    """
    answers: dict[int, Fetched | DomainError] = {}
    pending: dict[int, tuple[FetchRequest, Target | DomainError]] = {}
    for i, request in enumerate(requests):
        try:
            _check_request(request)
        except DomainError as exc:
            answers[i] = exc
            continue
        try:
            pending[i] = (request, target(request))
        except DomainError as exc:  # refused in order: after the matter check
            pending[i] = (request, exc)
    matters = _matters(session, {r.matter_code for r, _ in pending.values()})
    decided = _decide_grants(session, cache, pending, matters, answers, at=at)
    # What follows the quota in the order (consent, the licence), for the calls that got this far.
    later = _after_quota(session, {i: (requests[i], *decided[i]) for i in decided}, at=at)
    passed = _spend_quota(session, {i: (decided[i][0], later[i]) for i in decided}, answers, at=at)
    calls = {i: (requests[i], matters[requests[i].matter_code], *passed[i]) for i in passed}
    answers.update(_disclose(session, settings, calls, at=at))
    return [answers[i] for i in range(len(requests))]


def _decide_grants(
    session: Session, cache: GrantCache, pending: dict[int, tuple[FetchRequest, Target | DomainError]],
    matters: dict[str, Matter], refused: dict[int, Fetched | DomainError], *, at: datetime,
) -> dict[int, tuple[GrantDecision, Target]]:  # fmt: skip
    """The matter, the target and the grant of each call (quota not yet counted); refusals go to ``refused``."""
    resources = _resources(session, {t.type_code for _, t in pending.values() if isinstance(t, Target)})
    decided: dict[int, tuple[GrantDecision, Target]] = {}
    for i, (request, named) in pending.items():
        try:
            matter = matters.get(request.matter_code)
            if matter is None or matter.status != "active":
                raise MatterNotFound(f"no active matter {request.matter_code}")
            if isinstance(named, DomainError):
                raise named
            resource = resources.get(named.type_code)
            if resource is None:  # nothing published, so nothing can have been granted
                raise GrantMissing(f"licence type {named.type_code} is not published in the catalogue")
            decision = check_grant(
                session, cache, consumer_code=request.department_code, resource_code=resource,
                matter_code=request.matter_code, fields=request.fields, at=at,
            )  # fmt: skip
        except DomainError as exc:
            refused[i] = exc
        else:
            decided[i] = (decision, named)
    return decided


def _spend_quota(
    session: Session, calls: dict[int, tuple[GrantDecision, Licence | DomainError]],
    refused: dict[int, Fetched | DomainError], *, at: datetime,
) -> dict[int, tuple[GrantDecision, Licence]]:  # fmt: skip
    """In call order: a spent quota refuses, else the later check's refusal, else one unit is counted."""
    day = local_day(at)
    used = lock_usage(session, {d.grant_id for d, _ in calls.values() if d.quota_per_day is not None}, day)
    counted: dict[str, int] = {}
    passed: dict[int, tuple[GrantDecision, Licence]] = {}
    for i, (decision, outcome) in calls.items():
        quota = decision.quota_per_day
        if quota is not None and used[decision.grant_id] >= quota:
            refused[i] = GrantQuotaExceeded(
                f"the grant allows {quota} calls a day; the quota starts afresh at local midnight",
                retry_after=seconds_to_local_midnight(at), grant_id=decision.grant_id, quota_per_day=quota,
            )  # fmt: skip
        elif isinstance(outcome, DomainError):
            refused[i] = outcome
        elif quota is None:
            passed[i] = (decision, outcome)
        else:
            used[decision.grant_id] = counted[decision.grant_id] = used[decision.grant_id] + 1
            passed[i] = (replace(decision, calls_today=used[decision.grant_id]), outcome)
    set_usage(session, counted, day)
    return passed


def _matters(session: Session, codes: Collection[str]) -> dict[str, Matter]:
    if not codes:
        return {}
    return {m.code: m for m in session.scalars(select(Matter).where(Matter.code.in_(codes)))}


def _resources(session: Session, type_codes: Collection[str]) -> dict[str, str]:
    """Licence type code → the code of its published catalogue resource."""
    if not type_codes:
        return {}
    stmt = (
        select(Resource.licence_type_code, Resource.code)
        .where(Resource.licence_type_code.in_(type_codes), Resource.status == "published")
        .order_by(Resource.code)
    )
    found: dict[str, str] = {}
    for type_code, code in session.execute(stmt):
        if type_code is not None:
            found.setdefault(type_code, code)
    return found


def _after_quota(
    session: Session, calls: dict[int, tuple[FetchRequest, GrantDecision, Target]], *, at: datetime
) -> dict[int, Licence | DomainError]:
    """Per call past its grant: the consent check (when the grant needs one), then its licence and status."""
    wanted = {(r.holder_type, r.holder_code, r.matter_code) for r, d, _ in calls.values() if d.consent_required}
    consented = consents.for_matters(session, wanted)
    held = _holders_licences(session, [(r, named) for r, _, named in calls.values()])
    out: dict[int, Licence | DomainError] = {}
    for i, (request, decision, named) in calls.items():
        try:
            if decision.consent_required:
                rows = consented.get((request.holder_type, request.holder_code, request.matter_code), [])
                consents.choose(rows, department_code=request.department_code, case_number=request.case_number,
                                at=at)  # fmt: skip
            licence = held(request, named)
            check_licence(licence)
        except DomainError as exc:
            out[i] = exc
        else:
            out[i] = licence
    return out


def _holders_licences(
    session: Session, calls: list[tuple[FetchRequest, Target]]
) -> Callable[[FetchRequest, Target], Licence]:
    """:func:`holders_licence` for many calls: one query by identifier, one by holder and type."""
    identifiers = {t.identifier for _, t in calls if t.identifier is not None}
    typed = {(r.holder_type, r.holder_code, t.type_code) for r, t in calls if t.identifier is None}
    by_identifier: dict[str, Licence] = {}
    newest: dict[tuple[str, str, str], Licence] = {}
    if identifiers:
        by_identifier = {lic.identifier: lic for lic in session.scalars(
            select(Licence).where(Licence.identifier.in_(identifiers)))}  # fmt: skip
    if typed:
        stmt = (
            select(Licence)
            .where(tuple_(Licence.holder_type, Licence.holder_code, Licence.type_code).in_(typed))
            .where(Licence.status != "superseded")
            .order_by(Licence.issue_date.desc(), Licence.pk.desc())
        )
        for lic in session.scalars(stmt):
            newest.setdefault((lic.holder_type, lic.holder_code, lic.type_code), lic)

    def held(request: FetchRequest, named: Target) -> Licence:
        if named.identifier is not None:
            licence = by_identifier.get(named.identifier)
            if licence is not None and (licence.holder_type, licence.holder_code) != (
                request.holder_type, request.holder_code
            ):  # fmt: skip
                licence = None  # someone else's identifier is the same answer as a missing one (no IDOR)
        else:
            licence = newest.get((request.holder_type, request.holder_code, named.type_code))
        if licence is None:
            raise LicenceNotHeld
        return licence

    return held


def _disclose(
    session: Session, settings: Settings, calls: dict[int, tuple[FetchRequest, Matter, GrantDecision, Licence]],
    *, at: datetime,
) -> dict[int, Fetched]:  # fmt: skip
    """The granted fields of each passed call's licence, its dispute flags, and its promised copy (one insert)."""
    if not calls:
        return {}
    type_codes = {lic.type_code for *_, lic in calls.values()}
    types = {t.type_code: t for t in session.scalars(select(LicenceType).where(LicenceType.type_code.in_(type_codes)))}
    disputes = objections.disputes(session, {lic.identifier for *_, lic in calls.values()})
    url_expires_at = at + timedelta(seconds=settings.exchange_file_url_ttl_seconds)
    copy_valid_until = at + timedelta(days=settings.exchange_copy_valid_days)
    rows: list[dict[str, Any]] = []
    out: dict[int, Fetched] = {}
    for i, (request, matter, decision, licence) in calls.items():
        licence_type = types.get(licence.type_code)
        face_keys = list(licence_type.face_schema["properties"]) if licence_type else list(licence.face)
        fields = [key for key in face_keys if key in decision.fields]
        copy = copies.promised_row(
            licence.identifier, request.department_code, matter.code, request.case_number, request.officer_id,
            fields=fields, all_fields=set(face_keys) <= set(fields), now=at, url_expires_at=url_expires_at,
            copy_valid_until=copy_valid_until,
        )  # fmt: skip
        rows.append(copy)
        dispute = disputes.get(licence.identifier, objections.UNDISPUTED)
        projected = metadata(licence) | {"face": {key: licence.face[key] for key in fields if key in licence.face}}
        out[i] = Fetched(
            projected, licence.identifier, decision, fields,
            dispute.disputed, dispute.items, copy["id"], url_expires_at,
        )  # fmt: skip
    copies.promise_rows(session, rows)
    return out
