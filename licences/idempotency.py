"""``Idempotency-Key`` for issuance (draft-ietf-httpapi-idempotency-key-header): same key + body, same licence.

The key row is written *before* issuing, inside a savepoint: a concurrent request with the same
key blocks on the primary key until the first commits (PostgreSQL) or waits for the single writer
(SQLite), then finds the key taken and replays the first request's licence instead of issuing twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.errors import Conflict, InvalidInput
from licences.models import IdempotencyKey


class IdempotencyKeyMissing(InvalidInput):
    code = "idempotency_key_missing"
    title = "POST /v1/licences needs an Idempotency-Key header"


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request body"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    title = "A request with this Idempotency-Key is still being processed"


def request_digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise IdempotencyKeyMissing("send a unique 'Idempotency-Key' header (for example a UUID) with each licence")
    if len(key) > 255 or not key.isprintable():
        raise InvalidInput("Idempotency-Key must be at most 255 printable characters")
    return key


def claim(session: Session, department_code: str, key: str, digest: str) -> str | None:
    """Reserve ``key`` for this request; returns the licence identifier to replay when it was used."""
    existing = session.get(IdempotencyKey, (department_code, key))
    if existing is None:
        try:
            with session.begin_nested():
                session.add(
                    IdempotencyKey(department_code=department_code, key=key, request_sha256=digest, created_at=utcnow())
                )
        except IntegrityError:
            existing = session.get(IdempotencyKey, (department_code, key), populate_existing=True)
        else:
            return None
    if existing is None:  # the first request rolled back between our insert and the read: try again later
        raise IdempotencyKeyInFlight("retry the request: the first one with this key did not complete")
    if existing.request_sha256 != digest:
        raise IdempotencyKeyReused("use a new Idempotency-Key for a different licence")
    if existing.licence_identifier is None:
        raise IdempotencyKeyInFlight("retry shortly: the first request with this key is still issuing")
    return existing.licence_identifier


def complete(session: Session, department_code: str, key: str, identifier: str) -> None:
    row = session.get(IdempotencyKey, (department_code, key))
    if row is not None:
        row.licence_identifier = identifier
