"""Audit use cases: record in a caller's transaction, query entries, holders' access log, redaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from audit.append import AuditSigner, append
from audit.entries import AuditEvent, Receipt
from audit.errors import AuditEntryNotFound
from audit.models import STATE_ROW, AuditEntry, AuditState


def record(session: Session, signer: AuditSigner, event: AuditEvent) -> Receipt:
    """Append ``event`` in the caller's transaction and sign its receipt (durable at the caller's commit)."""
    (sequenced,) = append(session, [event])
    return signer.receipt(sequenced.leaf_index, sequenced.leaf_hash, sequenced.integrated_time)


@dataclass(frozen=True)
class EntryFilter:
    """Auditor search (issue 3 §5); ``holder_ref`` is computed server-side from type and code."""

    holder_ref: str | None = None
    department_code: str | None = None
    officer_id: str | None = None
    certificate_identifier: str | None = None
    matter_code: str | None = None
    case_number: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, stmt: Select[tuple[AuditEntry]]) -> Select[tuple[AuditEntry]]:
        columns = {
            "holder_ref": AuditEntry.holder_ref,
            "department_code": AuditEntry.department_code,
            "officer_id": AuditEntry.officer_id,
            "certificate_identifier": AuditEntry.certificate_identifier,
            "matter_code": AuditEntry.matter_code,
            "case_number": AuditEntry.case_number,
            "action": AuditEntry.action,
            "outcome": AuditEntry.outcome,
        }
        for name, column in columns.items():
            value = getattr(self, name)
            if value is not None:
                stmt = stmt.where(column == value)
        if self.since is not None:
            stmt = stmt.where(AuditEntry.time >= self.since)
        if self.until is not None:
            stmt = stmt.where(AuditEntry.time < self.until)
        return stmt


def search(session: Session, where: EntryFilter, *, after: int | None, limit: int) -> list[AuditEntry]:
    """Entries matching ``where`` in log order, keyset-paginated by leaf index."""
    stmt = where.apply(select(AuditEntry))
    if after is not None:
        stmt = stmt.where(AuditEntry.leaf_index > after)
    return list(session.scalars(stmt.order_by(AuditEntry.leaf_index).limit(limit)))


def get_entry_or_raise(session: Session, leaf_index: int) -> AuditEntry:
    entry = session.get(AuditEntry, leaf_index)
    if entry is None:
        raise AuditEntryNotFound(f"no audit entry at leaf index {leaf_index}")
    return entry


def entry_body(entry: AuditEntry) -> dict[str, Any] | None:
    """The entry as logged (None once redacted)."""
    return None if entry.body is None else dict(json.loads(entry.body))


def access_log(session: Session, holder: str, *, now: datetime, after: int | None, limit: int) -> list[AuditEntry]:
    """Uses of a holder's data, without entries still hidden for a law-enforcement delay."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.holder_ref == holder, AuditEntry.body.is_not(None))
        .where((AuditEntry.hidden_until.is_(None)) | (AuditEntry.hidden_until <= now))
    )
    if after is not None:
        stmt = stmt.where(AuditEntry.leaf_index > after)
    return list(session.scalars(stmt.order_by(AuditEntry.leaf_index).limit(limit)))


def redact(session: Session, *, before: datetime, now: datetime) -> int:
    """Drop bodies (and the query copies) of entries older than ``before``; leaf hashes stay.

    The tree is built from leaf hashes only, so every checkpoint and proof still verifies; an
    export marks these entries redacted and the offline verifier accepts their stored leaf hash.
    """
    result = session.execute(
        update(AuditEntry)
        .where(AuditEntry.time < before, AuditEntry.body.is_not(None))
        .values(
            body=None,
            redacted_at=now,
            holder_ref=None,
            officer_id=None,
            certificate_identifier=None,
            case_number=None,
            matter_code=None,
            resource_code=None,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def leaf_hashes(session: Session, start: int, stop: int) -> Sequence[bytes]:
    """Leaf hashes of [start, stop) in order (one range query)."""
    rows = session.execute(
        select(AuditEntry.leaf_hash)
        .where(AuditEntry.leaf_index >= start, AuditEntry.leaf_index < stop)
        .order_by(AuditEntry.leaf_index)
    )
    found = [row[0] for row in rows]
    if len(found) != stop - start:
        msg = f"the log lacks {stop - start - len(found)} entries in [{start}, {stop}): rows were deleted"
        raise LookupError(msg)
    return found


def fix_origin(session: Session, wanted: str) -> str:
    """Store the log's origin the first time; afterwards the stored one wins (returned)."""
    state = session.get(AuditState, STATE_ROW)
    if state is None:  # pragma: no cover - the migration creates the row
        raise LookupError("audit_state row missing: run the migrations")
    if state.origin is None:
        state.origin = wanted
        session.flush()
    return state.origin
