"""Licence lifecycle: suspend, reinstate, revoke, renew, amend, expire.

Every transition locks the licence row, checks the transition is allowed from the current status,
marks the status list changed and is audited, all in the caller's unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.entries import Receipt
from hub.clock import utcnow
from hub.errors import Conflict, NotFound
from licences import status_lists
from licences.issuance import (
    EXPIRED,
    REVOKED,
    SUPERSEDED,
    SUSPENDED,
    VALID,
    Actor,
    LicenceContext,
    licence_event,
    next_version,
    validity_for,
)
from licences.models import Licence
from licences.schemas import AmendRequest, RenewRequest
from licences.types import get_type_or_raise

# from-statuses of each transition; revoked and superseded are final (DESIGN.md §3 statuses).
ALLOWED = {
    "suspend": (VALID,),
    "reinstate": (SUSPENDED,),
    "revoke": (VALID, SUSPENDED, EXPIRED),
    "renew": (VALID, EXPIRED, SUSPENDED),
    "amend": (VALID, SUSPENDED),
    "expire": (VALID, SUSPENDED),
}


class LicenceNotFound(NotFound):
    code = "licence_not_found"
    title = "No licence has this identifier"


class LicenceTransitionNotAllowed(Conflict):
    code = "licence_transition_not_allowed"
    title = "The licence's status does not allow this change"


@dataclass(frozen=True)
class Transitioned:
    licence: Licence  # the changed licence (for renew/amend: the new version)
    previous: Licence | None
    receipt: Receipt


def get_licence_or_raise(session: Session, identifier: str, *, lock: bool = False) -> Licence:
    stmt = select(Licence).where(Licence.identifier == identifier)
    if lock:
        stmt = stmt.with_for_update()
    licence = session.scalar(stmt)
    if licence is None:
        raise LicenceNotFound(f"no licence {identifier}")
    return licence


def issued_by(session: Session, identifier: str, department_code: str | None, *, lock: bool = False) -> Licence:
    """The licence if ``department_code`` issued it (None: an admin); others get the same 404 (no IDOR)."""
    licence = get_licence_or_raise(session, identifier, lock=lock)
    if department_code is not None and licence.issuer_code != department_code:
        raise LicenceNotFound(f"no licence {identifier}")
    return licence


# Who relied on a licence hears of its changes (issue 7): the exchange registers here so this domain does not
# import it. Each hook gets the past-tense verb, the licence changed (or superseded) and its new version.
ChangeHook = Callable[[Session, str, Licence, "Licence | None"], None]
change_hooks: list[ChangeHook] = []


def _changed(session: Session, verb: str, licence: Licence, new: Licence | None = None) -> None:
    for hook in change_hooks:
        hook(session, verb, licence, new)


def _check(licence: Licence, transition: str) -> None:
    if licence.status not in ALLOWED[transition]:
        raise LicenceTransitionNotAllowed(
            f"cannot {transition} a {licence.status} licence; allowed from: {', '.join(ALLOWED[transition])}",
            licence_status=licence.status,
        )


def _set_status(session: Session, licence: Licence, status: str, reason: str | None) -> None:
    now = utcnow()
    licence.status, licence.status_reason, licence.status_changed_at, licence.updated_at = status, reason, now, now
    status_lists.touch(session, licence.pk)


def change_status(
    session: Session, ctx: LicenceContext, licence: Licence, transition: str, actor: Actor, *, reason: str | None
) -> Transitioned:
    """Suspend / reinstate / revoke / expire of a locked licence row."""
    _check(licence, transition)
    target = {"suspend": SUSPENDED, "reinstate": VALID, "revoke": REVOKED, "expire": EXPIRED}[transition]
    _set_status(session, licence, target, reason if transition != "reinstate" else None)
    extra = {"reason": reason} if reason else {}
    event = licence_event(ctx, actor, f"licence.licence.{_past(transition)}", licence, **extra)
    receipt = ctx.record(session, event)
    _changed(session, _past(transition), licence)
    return Transitioned(licence, None, receipt)


def renew(session: Session, ctx: LicenceContext, old: Licence, body: RenewRequest, actor: Actor) -> Transitioned:
    """A new version with a new validity window; the old one is superseded and linked."""
    _check(old, "renew")
    licence_type = get_type_or_raise(session, old.type_code)
    start = body.certificate_validity_start or (old.validity_end or old.validity_start)
    window = validity_for(licence_type, start, body.certificate_validity_end)
    new = next_version(session, ctx, old, validity=window)
    return _supersede(session, ctx, old, new, actor, verb="renewed", reason=None)


def amend(session: Session, ctx: LicenceContext, old: Licence, body: AmendRequest, actor: Actor) -> Transitioned:
    """A new version with corrected face data (更正); the old one is superseded and linked."""
    _check(old, "amend")
    new = next_version(session, ctx, old, face=body.face, holder_name=body.certificate_holder_name)
    return _supersede(session, ctx, old, new, actor, verb="amended", reason=body.reason)


def _supersede(
    session: Session, ctx: LicenceContext, old: Licence, new: Licence, actor: Actor, *, verb: str, reason: str | None
) -> Transitioned:
    old.superseded_by = new.identifier
    _set_status(session, old, SUPERSEDED, reason or f"{verb}: superseded by {new.identifier}")
    extra = {"previous_identifier": old.identifier, **({"reason": reason} if reason else {})}
    receipt = ctx.record(session, licence_event(ctx, actor, f"licence.licence.{verb}", new, **extra))
    _changed(session, verb, old, new)
    return Transitioned(new, old, receipt)


def _past(transition: str) -> str:
    return {"suspend": "suspended", "reinstate": "reinstated", "revoke": "revoked", "expire": "expired"}[transition]


def expire_one(session: Session, ctx: LicenceContext, pk: int, actor: Actor) -> Transitioned | None:
    """Expire the licence with ``pk`` if it is still due (re-checked under the row lock); None otherwise."""
    licence = session.scalar(select(Licence).where(Licence.pk == pk).with_for_update())
    if licence is None or licence.status not in ALLOWED["expire"]:
        return None
    return change_status(session, ctx, licence, "expire", actor, reason="validity ended")
