"""Where the HTTP layer and use cases meet the audit log: build events, record them the right way."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from audit import service as audit
from audit import tree
from audit.entries import AuditEvent, Receipt
from audit.entries import holder_ref as holder_ref_hmac
from hub.clock import utcnow
from hub.observability import request_id_var
from hub.runtime import Runtime


def event(*, action: str, outcome: str, actor_type: str, actor: str, **fields: Any) -> AuditEvent:
    """An event stamped with the current time and request id."""
    return AuditEvent(
        action=action,
        outcome=outcome,
        actor_type=actor_type,
        actor=actor,
        request_id=request_id_var.get() or "-",
        time=utcnow(),
        **fields,
    )


def record(session: Session, runtime: Runtime, audit_event: AuditEvent) -> Receipt:
    """Record ``audit_event`` so that it is durable no later than the unit of work's result.

    A unit of work that changes state records in its own transaction (the entry commits or rolls
    back with the change). A read-only one (declared with ``hub.db.begin_read_only``) has nothing
    to commit, so its entry goes through the group committer and this call returns once it is
    durable: the response that follows is never sent without its entry.
    """
    if session.info.get("read_only"):
        return runtime.audit.record([audit_event])[0]
    return audit.record(session, runtime.audit_signer, audit_event)


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
