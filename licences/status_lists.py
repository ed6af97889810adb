"""Status lists as stored and served: which licences of a list are not valid, signed on demand and cached.

The bits are derived from the licences' own statuses (one source of truth); a transition bumps
the list's ``version`` in the same transaction, so a signed copy is reused exactly until the next
change in that list, in every process.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.errors import NotFound
from hub.keys.service import SigningKey
from licences.models import Licence, StatusList
from licences.statuslist import LIST_SIZE, STATUS_VALUES, position, sign_status_list, status_list_credential

FRESHNESS = timedelta(hours=24)  # validUntil of a signed list: offline verifiers refresh at least daily


class StatusListNotFound(NotFound):
    code = "status_list_not_found"
    title = "No status list has this id"


def touch(session: Session, licence_pk: int) -> None:
    """Mark the list holding ``licence_pk`` changed (in the caller's transaction)."""
    list_id, _ = position(licence_pk)
    now = utcnow()
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(StatusList).values(id=list_id, version=1, updated_at=now)
    set_ = {"version": StatusList.version + 1, "updated_at": now}
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=set_))


def list_url(public_url: str, list_id: int) -> str:
    return f"{public_url.rstrip('/')}/v1/status-lists/{list_id}"


class SignedLists:
    """Per-process cache of signed status list JWTs by (list id, version)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[int, float, str]] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, list_id: int, *, public_url: str, key: SigningKey) -> str:
        if list_id < 0 or list_id > _highest_list(session):
            raise StatusListNotFound(f"no status list {list_id}")
        version = session.scalar(select(StatusList.version).where(StatusList.id == list_id)) or 0
        now = utcnow().timestamp()
        cached = self._cache.get(list_id)
        if cached is not None and cached[0] == version and now - cached[1] < FRESHNESS.total_seconds() / 2:
            return cached[2]
        token = _sign(session, list_id, public_url=public_url, key=key)
        with self._lock:
            self._cache[list_id] = (version, now, token)
        return token


def _highest_list(session: Session) -> int:
    top = session.scalar(select(Licence.pk).order_by(Licence.pk.desc()).limit(1))
    return -1 if top is None else position(top)[0]


def entries(session: Session, list_id: int) -> dict[int, int]:
    """Index -> status value for the licences of ``list_id`` that are not valid (valid is 0)."""
    low, high = list_id * LIST_SIZE, (list_id + 1) * LIST_SIZE
    rows = session.execute(
        select(Licence.pk, Licence.status).where(
            Licence.pk >= low, Licence.pk < high, Licence.status.in_([s for s, v in STATUS_VALUES.items() if v])
        )
    )
    return {pk - low: STATUS_VALUES[status] for pk, status in rows}


def _sign(session: Session, list_id: int, *, public_url: str, key: SigningKey) -> str:
    now = utcnow().replace(microsecond=0)
    payload = status_list_credential(
        list_url=list_url(public_url, list_id),
        issuer=public_url.rstrip("/"),
        entries=entries(session, list_id),
        valid_from=now,
        valid_until=now + FRESHNESS,
    )
    return sign_status_list(payload, key)
