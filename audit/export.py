"""Export the audit log as JSON Lines for offline verification (``audit.verify``; format in its docstring).

Entries are exported as their exact stored bytes (base64), never re-serialised, so the verifier hashes what
the log hashed. Rows are read in keyset-paginated chunks: a log of millions of entries is never in memory.
"""

from __future__ import annotations

import base64
import json
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.models import AuditEntry
from audit.tree import latest_checkpoint
from audit.verify import EXPORT_FORMAT

CHUNK = 5_000


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _line(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def checkpoint_origin(signed_note: str) -> str:
    """The origin line of a signed checkpoint note (its first line)."""
    return signed_note.split("\n", 1)[0]


def export_log(session: Session, out: IO[str], *, upto: int | None = None, chunk: int = CHUNK) -> int:
    """Write the header and leaves 0..size-1 in index order; returns how many entry lines were written.

    ``size`` is the latest checkpoint's tree size, or ``upto`` (which may not exceed it: later entries have no
    signed root yet). Rows are written as stored: a missing row leaves a gap for the verifier to report, so
    a return value below ``size`` means the stored log is damaged.
    """
    latest = latest_checkpoint(session)
    if latest is None:
        raise LookupError("no checkpoint has been published yet: integrate the log first")
    size = latest.tree_size
    if upto is not None:
        if not 0 <= upto <= size:
            raise ValueError(f"can export up to the latest checkpoint's tree size {size}, not {upto}")
        size = upto
    out.write(_line({"format": EXPORT_FORMAT, "origin": checkpoint_origin(latest.signed_note), "tree_size": size}))
    written, start = 0, 0
    while start < size:
        rows = session.execute(
            select(AuditEntry.leaf_index, AuditEntry.leaf_hash, AuditEntry.body)
            .where(AuditEntry.leaf_index >= start, AuditEntry.leaf_index < size)
            .order_by(AuditEntry.leaf_index)
            .limit(chunk)
        ).all()
        if not rows:
            break
        for index, leaf_hash, body in rows:
            out.write(
                _line(
                    {
                        "leaf_index": int(index),
                        "leaf_hash": _b64(bytes(leaf_hash)),
                        "body": None if body is None else _b64(bytes(body)),
                        "redacted": body is None,
                    }
                )
            )
        written += len(rows)
        start = int(rows[-1][0]) + 1
    return written
