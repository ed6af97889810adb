"""Where the HTTP layer and use cases meet the audit log: build events, record them the right way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from audit import service as audit
from audit import tree
from audit.entries import AuditEvent, Receipt
from audit.entries import holder_ref as holder_ref_hmac
from hub.clock import utcnow
from hub.observability import request_id_var
from hub.runtime import Runtime


def event(
    *,
    action: str,
    outcome: str,
    actor_type: str,
    actor: str,
    request_id: str | None = None,
    time: datetime | None = None,
    **fields: Any,
) -> AuditEvent:
    """An event stamped with the request id and time: the current request's and now, unless given."""
    return AuditEvent(
        action=action,
        outcome=outcome,
        actor_type=actor_type,
        actor=actor,
        request_id=request_id or request_id_var.get() or "-",
        time=time or utcnow(),
        **fields,
    )


def record(session: Session, runtime: Runtime, audit_event: AuditEvent) -> Receipt:
    """Record ``audit_event``; when this returns the entry is durable, and so is the unit of work.

    A unit of work that changes state records in its own transaction (the entry commits with the
    change) and is committed here, at once. The sequencer's row lock is taken by the append and
    must not be held while the response is serialised: FastAPI serialises a sync endpoint's answer
    on the shared thread pool and runs the session's commit after that, so with more concurrent
    writers than pool threads every thread would wait on the lock while its holder waited for a
    thread (the exchange benchmark found this deadlock at 64 clients). Whatever the handler does
    next only builds its answer; a later write would be a transaction of its own.

    A read-only unit of work (declared with ``hub.db.begin_read_only``) has nothing to commit, so
    its entry goes through the group committer and this call returns once it is durable: the
    response that follows is never sent without its entry.
    """
    if session.info.get("read_only"):
        return runtime.audit.record([audit_event])[0]
    receipt = audit.record(session, runtime.audit_signer, audit_event)
    session.commit()
    return receipt


def holder_ref(runtime: Runtime, holder_type: str, holder_code: str) -> str:
    return holder_ref_hmac(runtime.audit_signer.holder_secret, holder_type, holder_code)


def integrate_pending(runtime: Runtime) -> int:
    """Integrate every committed entry, one chunk per transaction; returns how many checkpoints were published."""
    published = 0
    while True:
        with runtime.session_scope() as session:
            if tree.integrate(session, runtime.audit_signer) is None:
                return published
        published += 1
