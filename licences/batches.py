"""Batch issuance: a JSON Lines upload becomes rows; chunk jobs issue each pending row exactly once.

A row's status and its licence are written in the same transaction, so a job killed at any point
leaves every row either issued (with its licence) or pending (with nothing): re-running a chunk
issues only what is still pending. Rows are locked while issued (``SKIP LOCKED`` on PostgreSQL),
so two jobs on the same chunk never issue the same row twice.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from audit.append import append as append_audit
from audit.entries import AuditEvent
from hub.clock import utcnow
from hub.errors import DomainError, InvalidInput, NotFound, ServiceUnavailable
from hub.identity.service import get_department_or_raise
from licences.issuance import Actor, Issuer, LicenceContext, allocate_serials, issue
from licences.models import LicenceBatch, LicenceBatchRow
from licences.schemas import LicenceRequest

PENDING, ISSUED, FAILED = "pending", "issued", "failed"
QUEUED, RUNNING, COMPLETED = "queued", "running", "completed"
ROWS_PER_TRANSACTION = 20  # rows committed together inside a chunk; each row has its own savepoint
MAX_LINE_BYTES = 64 * 1024
INSERT_ROWS = 5000  # rows per INSERT while an upload is stored


class BatchNotFound(NotFound):
    code = "licence_batch_not_found"
    title = "No licence batch has this id"


class BatchTooLarge(InvalidInput):
    status = 413
    code = "licence_batch_too_large"
    title = "The batch has more rows than allowed"


class BatchEmpty(InvalidInput):
    code = "licence_batch_empty"
    title = "The batch has no rows"


@dataclass(frozen=True)
class RowError:
    code: str
    detail: str


def parse_line(raw: bytes) -> tuple[dict[str, Any] | None, RowError | None]:
    """One JSON Lines row: the request, or why it is refused (never echoing the row's values)."""
    if len(raw) > MAX_LINE_BYTES:
        return None, RowError("batch_row_too_long", f"a row may have at most {MAX_LINE_BYTES} bytes")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, RowError(
            "batch_row_malformed", f"not a JSON object: {type(exc).__name__} at position {getattr(exc, 'pos', 0)}"
        )
    if not isinstance(value, dict):
        return None, RowError("batch_row_malformed", "each line must be one JSON object")
    try:
        LicenceRequest.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        return value, RowError("batch_row_invalid", problems[:2000])
    return value, None


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines of a byte stream, without holding the whole upload in memory."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def create_batch(
    session: Session, *, department_code: str, client_id: str | None, body: Iterable[bytes], max_rows: int
) -> LicenceBatch:
    """Store every line as a row (pending, or failed with its error) in one transaction."""
    now = utcnow()
    batch = LicenceBatch(
        id=secrets.token_hex(16), department_code=department_code, client_id=client_id, status=QUEUED, total=0,
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(batch)
    session.flush()
    rows: list[dict[str, Any]] = []  # the next INSERT's rows; the upload itself is never all in memory
    total = 0
    for line_number, raw in enumerate(_lines(body), start=1):
        if not raw.strip():
            continue  # blank lines (a trailing newline) are not rows; numbering still follows the file
        if total >= max_rows:
            raise BatchTooLarge(f"a batch may have at most {max_rows} rows")
        total += 1
        payload, error = parse_line(raw.rstrip(b"\r"))
        rows.append(
            {
                "batch_id": batch.id, "line": line_number, "status": FAILED if error else PENDING,
                "payload": payload if error is None else None,
                "error_code": error.code if error else None, "error_detail": error.detail if error else None,
            }
        )  # fmt: skip
        if len(rows) == INSERT_ROWS:
            session.execute(insert(LicenceBatchRow), rows)
            rows = []
    if not total:
        raise BatchEmpty("send one licence request (JSON object) per line")
    if rows:
        session.execute(insert(LicenceBatchRow), rows)
    batch.total = total
    return batch


def chunks(session: Session, batch_id: str, size: int) -> list[tuple[int, int]]:
    """(first line, last line) ranges of ``size`` pending rows each."""
    lines = list(
        session.scalars(
            select(LicenceBatchRow.line)
            .where(LicenceBatchRow.batch_id == batch_id, LicenceBatchRow.status == PENDING)
            .order_by(LicenceBatchRow.line)
        )
    )
    return [(lines[i], lines[min(i + size, len(lines)) - 1]) for i in range(0, len(lines), size)]


def dispatch_ranges(session: Session, batch_id: str, size: int) -> list[tuple[int, int]]:
    """The chunks to send to jobs: the pending ranges, or one empty range when nothing is pending.

    The empty range still runs a job, which marks a batch of refused lines only as completed.
    """
    return chunks(session, batch_id, size) or [(0, 0)]


def row_error(row: LicenceBatchRow) -> dict[str, Any]:
    """A failed row as callers see it: its line, stable code and detail (never the row's values)."""
    return {"line": row.line, "code": row.error_code, "detail": row.error_detail}


def progress(session: Session, batch_id: str) -> dict[str, int]:
    return progress_of(session, [batch_id])[batch_id]


def progress_of(session: Session, batch_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Rows pending, issued and failed of each batch, in one grouped query."""
    counts = {batch_id: dict.fromkeys((PENDING, ISSUED, FAILED), 0) for batch_id in batch_ids}
    if not counts:
        return counts
    for batch_id, status, count in session.execute(
        select(LicenceBatchRow.batch_id, LicenceBatchRow.status, func.count())
        .where(LicenceBatchRow.batch_id.in_(counts))
        .group_by(LicenceBatchRow.batch_id, LicenceBatchRow.status)
    ):
        counts[batch_id][status] = count
    return counts


def get_batch_or_raise(session: Session, batch_id: str, department_code: str | None) -> LicenceBatch:
    """The batch if ``department_code`` uploaded it (None: admin); others get the same 404."""
    batch = session.get(LicenceBatch, batch_id)
    if batch is None or (department_code is not None and batch.department_code != department_code):
        raise BatchNotFound(f"no licence batch {batch_id}")
    return batch


def failed_rows(session: Session, batch_id: str, *, after: int, limit: int) -> list[LicenceBatchRow]:
    stmt = (
        select(LicenceBatchRow)
        .where(LicenceBatchRow.batch_id == batch_id, LicenceBatchRow.status == FAILED, LicenceBatchRow.line > after)
        .order_by(LicenceBatchRow.line)
        .limit(limit)
    )
    return list(session.scalars(stmt))


SessionScope = Callable[[], Any]  # a context manager factory: one committed unit of work


def issue_chunk(
    session_scope: SessionScope,
    ctx: LicenceContext,
    batch_id: str,
    first: int,
    last: int,
    *,
    on_row: Callable[[int], None] | None = None,
) -> int:
    """Issue the pending rows of lines [first, last]; returns how many rows this call finished."""
    with session_scope() as session:
        batch = session.get(LicenceBatch, batch_id)
        if batch is None or batch.status == COMPLETED:
            return 0
        issuer = _issuer(session, batch.department_code)
        actor = Actor("department", batch.department_code, batch.client_id)
        pending = _pending_lines(session, batch_id, first, last)
        if batch.status == QUEUED:
            session.execute(
                update(LicenceBatch)
                .where(LicenceBatch.id == batch_id, LicenceBatch.status == QUEUED)
                .values(status=RUNNING, updated_at=utcnow())
            )
    if not pending:
        _finish_if_done(session_scope, batch_id)
        return 0
    with session_scope() as session:  # serials in their own short transaction: a redo only leaves gaps
        serials = allocate_serials(session, issuer.code, len(pending))
    done = 0
    for start in range(0, len(pending), ROWS_PER_TRANSACTION):
        group = list(
            zip(
                pending[start : start + ROWS_PER_TRANSACTION],
                serials[start : start + ROWS_PER_TRANSACTION],
                strict=True,
            )
        )
        with session_scope() as session:
            events: list[AuditEvent] = []
            for line, serial in group:
                if _issue_row(session, ctx, issuer, actor, events, batch_id=batch_id, line=line, serial=serial):
                    done += 1
                    if on_row is not None:
                        on_row(line)
            session.execute(update(LicenceBatch).where(LicenceBatch.id == batch_id).values(updated_at=utcnow()))
            append_audit(session, events)  # last: the sequencer's lock is held only until this commit
    _finish_if_done(session_scope, batch_id)
    return done


def _pending_lines(session: Session, batch_id: str, first: int, last: int) -> list[int]:
    return list(
        session.scalars(
            select(LicenceBatchRow.line)
            .where(LicenceBatchRow.batch_id == batch_id, LicenceBatchRow.status == PENDING)
            .where(LicenceBatchRow.line >= first, LicenceBatchRow.line <= last)
            .order_by(LicenceBatchRow.line)
        )
    )


def _issue_row(
    session: Session,
    ctx: LicenceContext,
    issuer: Issuer,
    actor: Actor,
    events: list[AuditEvent],
    *,
    batch_id: str,
    line: int,
    serial: int,
) -> bool:
    stmt = select(LicenceBatchRow).where(LicenceBatchRow.batch_id == batch_id, LicenceBatchRow.line == line)
    row = session.scalar(stmt.with_for_update(skip_locked=True))
    if row is None or row.status != PENDING:
        return False  # another job has it, or it is done: never issue a row twice
    try:
        with session.begin_nested():
            request = LicenceRequest.model_validate(row.payload)
            row_events: list[AuditEvent] = []
            issued = issue(
                session, ctx, issuer, request, actor, batch_id=batch_id, serial=serial, audit_events=row_events
            )
        events.extend(row_events)  # only once its savepoint is released
    except ServiceUnavailable:
        raise  # an outage (database, object store, full disk) is not the row's fault: the chunk is retried
    except DomainError as exc:
        row.status, row.error_code, row.error_detail = FAILED, exc.code, exc.detail[:2000]
        return True
    row.status, row.licence_identifier = ISSUED, issued.licence.identifier
    return True


def _finish_if_done(session_scope: SessionScope, batch_id: str) -> None:
    with session_scope() as session:
        left = session.scalar(
            select(func.count()).where(LicenceBatchRow.batch_id == batch_id, LicenceBatchRow.status == PENDING)
        )
        if not left:
            now = utcnow()
            session.execute(
                update(LicenceBatch)
                .where(LicenceBatch.id == batch_id, LicenceBatch.status != COMPLETED)
                .values(status=COMPLETED, finished_at=now, updated_at=now)
            )


def _issuer(session: Session, department_code: str) -> Issuer:
    department = get_department_or_raise(session, department_code)
    return Issuer(department.code, department.name, department.area_code)


def stalled(session: Session, *, after_seconds: float = 300.0, now: datetime | None = None) -> list[str]:
    """Batches still running or queued without progress for a while: their chunks are re-driven."""
    cutoff = (now or utcnow()) - timedelta(seconds=after_seconds)
    return list(
        session.scalars(
            select(LicenceBatch.id).where(LicenceBatch.status != COMPLETED, LicenceBatch.updated_at < cutoff)
        )
    )
