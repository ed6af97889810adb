"""The single sequencer: gap-free leaf indexes and entry rows, in whatever transaction it is given."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from audit.entries import AuditEvent, Receipt, canonical, entry_leaf_hash
from audit.models import STATE_ROW, AuditEntry, AuditState


@dataclass(frozen=True)
class AuditSigner:
    """The log's identity: its origin line and Ed25519 key (checkpoints and receipts)."""

    origin: str
    key_id: str
    private_key: Ed25519PrivateKey
    holder_secret: bytes

    def receipt(self, leaf_index: int, leaf_hash: bytes, integrated_time: int) -> Receipt:
        return Receipt.sign(self.private_key, self.origin, leaf_index, leaf_hash, integrated_time)


@dataclass(frozen=True)
class Sequenced:
    leaf_index: int
    leaf_hash: bytes
    integrated_time: int


def _row(event: AuditEvent, body: bytes, leaf_hash: bytes, leaf_index: int, integrated_time: int) -> dict[str, object]:
    return {
        "leaf_index": leaf_index,
        "leaf_hash": leaf_hash,
        "body": body,
        "time": event.time,
        "integrated_time": integrated_time,
        "action": event.action,
        "outcome": event.outcome,
        "error_code": event.error_code,
        "actor_type": event.actor_type,
        "actor": event.actor,
        "department_code": event.department_code,
        "officer_id": event.officer_id,
        "holder_ref": event.holder_ref,
        "certificate_identifier": event.certificate_identifier,
        "resource_code": event.resource_code,
        "matter_code": event.matter_code,
        "case_number": event.case_number,
        "hidden_until": event.hidden_until,
    }


def append(session: Session, events: Sequence[AuditEvent]) -> list[Sequenced]:
    """Give ``events`` the next leaf indexes and insert them; durable when ``session`` commits.

    The ``UPDATE ... RETURNING`` of the state row is the sequencer: PostgreSQL holds its row lock
    until commit and SQLite has one writer, so no two transactions get the same index and a rolled
    back transaction returns its indexes (the next one reuses them): the log has no gaps.
    """
    if not events:
        return []
    bodies = [canonical(event.to_entry()) for event in events]  # before the lock: keep it short
    hashes = [entry_leaf_hash(body) for body in bodies]
    end = session.execute(
        update(AuditState)
        .where(AuditState.id == STATE_ROW)
        .values(next_index=AuditState.next_index + len(events))
        .returning(AuditState.next_index)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    first = int(end) - len(events)
    integrated_time = int(time.time())
    session.execute(
        insert(AuditEntry),
        [
            _row(event, body, leaf_hash, first + offset, integrated_time)
            for offset, (event, body, leaf_hash) in enumerate(zip(events, bodies, hashes, strict=True))
        ],
    )
    return [Sequenced(first + i, leaf_hash, integrated_time) for i, leaf_hash in enumerate(hashes)]
