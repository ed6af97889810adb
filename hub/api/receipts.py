"""Audit a department caller's successful call and return its receipt (DESIGN.md §4 ``receipt``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub import audited
from hub.api.schemas import ReceiptOut
from hub.identity.tokens import AccessClaims
from hub.runtime import Runtime


def caller_receipt(
    session: Session,
    runtime: Runtime,
    caller: AccessClaims,
    action: str,
    *,
    actor_type: str | None = None,
    **fields: Any,
) -> ReceiptOut:
    """Record ``action`` by ``caller`` (entry fields such as ``resource_code`` or ``extra={...}``); the receipt.

    The actor is the caller's department (citizens and auditors see departments, not system ids);
    ``actor_type`` defaults to ``admin`` for an admin token and ``department`` otherwise.
    """
    kind = actor_type or ("admin" if "admin" in caller.scopes else "department")
    event = audited.event(
        action=action, outcome="ok", actor_type=kind, actor=caller.department_code, client_id=caller.client_id, **fields
    )
    return ReceiptOut(**audited.record(session, runtime, event).to_json())
