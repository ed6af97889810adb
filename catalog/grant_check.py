"""The grant decision the exchange runs on every fetch, from an in-process cache of grant snapshots.

``check_grant`` answers "may department C fetch these items of resource R for matter M now?" and
raises a typed ``GrantDenied`` (stable ``code``) otherwise, checking in this order: a grant exists for
C × R, one covers M, it is inside its validity window, it is active, it grants every requested item
(X-Road carries the purpose per call; here it is enforced per call). It counts nothing: a daily quota is
spent by the caller for the calls it answers, in the same transaction (``lock_usage`` and ``set_usage``;
the exchange's fetch does it for a whole batch, after the checks that come before the quota).

**Cache and staleness bound.** ``GrantCache`` keeps, per (consumer, resource), immutable snapshots of
the grant rows, valid for the ``CatalogGeneration('grants')`` value they were loaded under. Every grant
change bumps that counter in its own transaction (``note_grants_changed``). A warm decision does no
database round trip: the counter is re-read at most every ``REFRESH_SECONDS`` (1 s). Hence:

- a change committed by a session of **this process** is seen by the next check that starts after the
  commit (every cache of the process is invalidated right after commit, never before and never on
  rollback);
- a change committed by **another process** is seen by every check that starts more than
  ``REFRESH_SECONDS`` after that commit (on SQLite plus the age of the checking transaction, whose
  snapshot is taken at its first read; PostgreSQL READ COMMITTED reads the latest commit);
- rows are stored only when the loading transaction saw the very generation the cache is labelled
  with, and never from a session that has uncommitted grant changes, so an older snapshot or a
  rolled-back change can never be cached under a newer label.

Validity windows are always checked against the clock, never only the stored status: a grant past
``valid_until`` is refused before the expiry job has marked it.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction

from catalog.models import CatalogGeneration, Grant, GrantUsage
from catalog.workdays import LOCAL_TZ
from hub.errors import Forbidden

GENERATION = "grants"
REFRESH_SECONDS = 1.0  # the cross-process staleness bound (module docstring)
MAX_KEYS = 100_000  # (consumer, resource) pairs kept before the cache starts afresh
ACTIVE, SUSPENDED, REVOKED, EXPIRED = "active", "suspended", "revoked", "expired"
_PENDING = "catalog.grants.pending_generation"  # session.info: generation this transaction bumped to


# ----------------------------------------------------------------------------- errors


class GrantDenied(Forbidden):
    """Base of every refusal of the grant decision."""

    code = "grant_denied"
    title = "No grant allows this call"


class GrantMissing(GrantDenied):
    code = "grant_missing"
    title = "This department holds no grant for this resource"


class GrantMatterMismatch(GrantDenied):
    code = "grant_matter_mismatch"
    title = "No grant of this department for this resource covers this matter"


class GrantExpired(GrantDenied):
    code = "grant_expired"
    title = "The grant's validity window has ended"


class GrantNotYetValid(GrantDenied):
    code = "grant_not_yet_valid"
    title = "The grant's validity window has not started"


class GrantSuspended(GrantDenied):
    code = "grant_suspended"
    title = "The grant is suspended"


class GrantRevoked(GrantDenied):
    code = "grant_revoked"
    title = "The grant has been revoked"


class GrantFieldNotGranted(GrantDenied):
    code = "grant_field_not_granted"
    title = "A requested data item is not granted"


class GrantQuotaExceeded(GrantDenied):
    status = 429
    code = "grant_quota_exceeded"
    title = "The grant's daily quota is spent"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = str(retry_after)  # RFC 9110 §10.2.3: seconds until local midnight


# ----------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class GrantSnapshot:
    """An immutable copy of one grant row, as the cache holds it."""

    id: str
    consumer_code: str
    provider_code: str
    resource_code: str
    items: tuple[str, ...]  # in granted order
    item_set: frozenset[str]
    matter_codes: frozenset[str]
    consent_required: bool
    valid_from: datetime
    valid_until: datetime
    quota_per_day: int | None
    status: str
    revision: int

    @classmethod
    def of(cls, row: Any) -> GrantSnapshot:
        """From a ``Grant`` or a row of its columns."""
        items = tuple(dict.fromkeys(row.items))
        return cls(
            id=row.id, consumer_code=row.consumer_code, provider_code=row.provider_code,
            resource_code=row.resource_code, items=items, item_set=frozenset(items),
            matter_codes=frozenset(row.matter_codes), consent_required=row.consent_required,
            valid_from=row.valid_from, valid_until=row.valid_until, quota_per_day=row.quota_per_day,
            status=row.status, revision=row.revision,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class GrantDecision:
    """What the exchange may return: ``fields`` = requested ∩ granted (all granted when none asked)."""

    grant_id: str
    consumer_code: str
    provider_code: str
    resource_code: str
    matter_code: str
    fields: tuple[str, ...]
    consent_required: bool
    valid_until: datetime
    quota_per_day: int | None
    calls_today: int | None  # after this call, once the caller has spent its unit; None before or without a quota
    revision: int


# ----------------------------------------------------------------------------- generation


def read_generation(session: Session) -> int:
    value = session.scalar(select(CatalogGeneration.value).where(CatalogGeneration.name == GENERATION))
    return int(value or 0)


def note_grants_changed(session: Session) -> int:
    """Bump ``CatalogGeneration('grants')`` in the caller's transaction; returns the new value.

    Call it in every transaction that changes a grant (or anything the decision reads). The caches of
    this process are invalidated right after that transaction commits; until then this session reads
    grants from the database, bypassing every cache (its changes are not committed yet).
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(CatalogGeneration)
        .values(name=GENERATION, value=1)
        .on_conflict_do_update(index_elements=["name"], set_={"value": CatalogGeneration.value + 1})
        .returning(CatalogGeneration.value)
    )
    value = int(session.execute(stmt).scalar_one())
    database, before = session.info.get(_PENDING, (database_key(session), 0))
    session.info[_PENDING] = (database, max(value, before))
    return value


def database_key(session: Session) -> str:
    """Which database a session talks to: a cache hears only of changes to its own database's grants."""
    return session.get_bind().engine.url.render_as_string(hide_password=True)


_caches: weakref.WeakSet[GrantCache] = weakref.WeakSet()
_caches_lock = threading.Lock()


@event.listens_for(Session, "after_commit")
def _invalidate_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released (SQLAlchemy fires after_commit for it too); the change is not durable
    pending = session.info.pop(_PENDING, None)
    if pending is not None:
        database, value = pending
        with _caches_lock:
            caches = list(_caches)
        for cache in caches:
            cache.invalidate(value, database=database)


@event.listens_for(Session, "after_transaction_end")
def _forget_after_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's outermost transaction ended (commit already handled)
        session.info.pop(_PENDING, None)


# ----------------------------------------------------------------------------- cache


class GrantCache:
    """Grant snapshots per (consumer, resource), labelled with the generation they are valid for.

    Thread-safe: mutations happen under one lock; the warm path reads a dict (atomic in CPython) of
    immutable tuples and takes no lock. ``enabled=False`` reads the database on every call (the
    benchmark's baseline). ``monotonic`` is injectable so tests can move time without sleeping;
    ``follow_local_changes=False`` makes a cache that, like one in another process, learns of changes
    only through the generation counter.
    """

    def __init__(
        self,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        enabled: bool = True,
        follow_local_changes: bool = True,
    ) -> None:
        self.refresh_seconds = refresh_seconds
        self.enabled = enabled
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[GrantSnapshot, ...]] = {}
        self._generation: int | None = None  # label of the entries; None = unknown, re-read
        self._checked_at = -math.inf
        self._epoch = 0  # bumped whenever entries are dropped; a load started before never lands
        self._database: str | None = None  # database_key of the first session that used the cache
        self.loads = 0  # database loads (misses), for tests and the benchmark
        if follow_local_changes:
            with _caches_lock:
                _caches.add(self)

    def invalidate(self, generation: int | None = None, *, database: str | None = None) -> None:
        """Drop every entry; ``generation`` (a just-committed value) becomes the label if it is newer.

        ``database`` names where that value was committed; a cache bound to another database ignores it.
        """
        if database is not None and self._database is not None and database != self._database:
            return
        with self._lock:
            self._entries = {}
            self._epoch += 1
            if generation is not None and (self._generation is None or generation > self._generation):
                self._generation = generation
                self._checked_at = self._monotonic()
            elif generation is None:
                self._generation, self._checked_at = None, -math.inf

    def grants(self, session: Session, consumer_code: str, resource_code: str) -> tuple[GrantSnapshot, ...]:
        """The snapshots of every grant (any status) of ``consumer_code`` on ``resource_code``."""
        if not self.enabled or _PENDING in session.info:
            return _load(session, consumer_code, resource_code)
        if self._monotonic() - self._checked_at >= self.refresh_seconds:
            self._refresh(session)
        key = (consumer_code, resource_code)
        cached = self._entries.get(key)
        if cached is not None:
            return cached
        return self._fill(session, key)

    def _refresh(self, session: Session) -> None:
        if self._database is None:
            self._database = database_key(session)
        seen = read_generation(session)
        with self._lock:
            if self._generation is None or seen > self._generation:
                self._entries = {}
                self._epoch += 1
                self._generation = seen
            if seen >= (self._generation or 0):
                # An older value comes from a transaction with an old snapshot: keep re-reading.
                self._checked_at = self._monotonic()

    def _fill(self, session: Session, key: tuple[str, str]) -> tuple[GrantSnapshot, ...]:
        epoch, label = self._epoch, self._generation
        seen = read_generation(session)  # same transaction as the rows, read first
        rows = _load(session, *key)
        self.loads += 1
        with self._lock:
            if epoch == self._epoch and seen == label == self._generation:
                if len(self._entries) >= MAX_KEYS:
                    self._entries = {}
                    self._epoch += 1
                else:
                    self._entries[key] = rows
        return rows


_COLUMNS = (
    Grant.id, Grant.consumer_code, Grant.provider_code, Grant.resource_code, Grant.items, Grant.matter_codes,
    Grant.consent_required, Grant.valid_from, Grant.valid_until, Grant.quota_per_day, Grant.status, Grant.revision,
)  # fmt: skip


def _load(session: Session, consumer_code: str, resource_code: str) -> tuple[GrantSnapshot, ...]:
    # Columns, not ORM objects: a long-lived session (expire_on_commit=False) would hand back its
    # identity map's older copy of a grant instead of the row just read.
    stmt = (
        select(*_COLUMNS)
        .where(Grant.consumer_code == consumer_code, Grant.resource_code == resource_code)
        .order_by(Grant.valid_until.desc(), Grant.id)
    )
    return tuple(GrantSnapshot.of(row) for row in session.execute(stmt))


_registry: dict[int, GrantCache] = {}
_registry_lock = threading.Lock()


def cache_for(runtime: object) -> GrantCache:
    """The process's cache for ``runtime`` (kept while the runtime lives)."""
    key = id(runtime)
    cache = _registry.get(key)
    if cache is None:
        with _registry_lock:
            cache = _registry.get(key)
            if cache is None:
                cache = _registry[key] = GrantCache()
                weakref.finalize(runtime, _registry.pop, key, None)
    return cache


# ----------------------------------------------------------------------------- decision


def check_grant(
    session: Session,
    cache: GrantCache,
    *,
    consumer_code: str,
    resource_code: str,
    matter_code: str,
    fields: Sequence[str] | None,
    at: datetime,
) -> GrantDecision:
    """Decide one call (module docstring for the order of refusals and the cache's staleness bound); counts nothing."""
    snapshots = cache.grants(session, consumer_code, resource_code)
    if not snapshots:
        raise GrantMissing(f"department {consumer_code} holds no grant for resource {resource_code}")
    for_matter = [g for g in snapshots if matter_code in g.matter_codes]
    if not for_matter:
        raise GrantMatterMismatch(f"no grant for resource {resource_code} covers matter {matter_code}")
    in_window = [g for g in for_matter if g.valid_from <= at < g.valid_until and g.status != EXPIRED]
    if not in_window:
        if any(g.valid_from > at for g in for_matter if g.status != EXPIRED):
            raise GrantNotYetValid("the grant's validity window has not started", **_ids(for_matter))
        raise GrantExpired("the grant's validity window has ended", **_ids(for_matter))
    usable = [g for g in in_window if g.status == ACTIVE]
    if not usable:
        if any(g.status == SUSPENDED for g in in_window):
            raise GrantSuspended("the grant is suspended", **_ids(in_window))
        raise GrantRevoked("the grant has been revoked", **_ids(in_window))
    grant, granted = _choose(usable, fields)
    return GrantDecision(
        grant_id=grant.id, consumer_code=grant.consumer_code, provider_code=grant.provider_code,
        resource_code=grant.resource_code, matter_code=matter_code, fields=granted,
        consent_required=grant.consent_required, valid_until=grant.valid_until, quota_per_day=grant.quota_per_day,
        calls_today=None, revision=grant.revision,
    )  # fmt: skip


def _ids(grants: Sequence[GrantSnapshot]) -> dict[str, Any]:
    return {"grant_ids": [g.id for g in grants]}


def _choose(usable: Sequence[GrantSnapshot], fields: Sequence[str] | None) -> tuple[GrantSnapshot, tuple[str, ...]]:
    """The grant to use: without fields the widest; else the latest-ending one granting every field."""
    if fields is None:
        best = max(usable, key=lambda g: len(g.items))  # max keeps the first of equals: load order
        return best, best.items
    wanted = tuple(dict.fromkeys(fields))
    best = max(usable, key=lambda g: (g.item_set.issuperset(wanted), len(g.item_set.intersection(wanted))))
    missing = [f for f in wanted if f not in best.item_set]
    if missing:
        raise GrantFieldNotGranted(f"not granted: {', '.join(missing)}", fields_not_granted=missing, **_ids(usable))
    return best, wanted


# ----------------------------------------------------------------------------- quota


def seconds_to_local_midnight(at: datetime) -> int:
    """Seconds from ``at`` to the next Asia/Shanghai midnight, when a daily quota starts afresh."""
    local = at.astimezone(LOCAL_TZ)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), LOCAL_TZ)
    return max(1, math.ceil((midnight - local).total_seconds()))


def lock_usage(session: Session, grant_ids: Collection[str], day: date) -> dict[str, int]:
    """Calls counted today under each of ``grant_ids``, their rows locked until the caller's transaction ends.

    For a batch of calls decided together (the exchange's fetches): missing rows are created at zero,
    then all are read ``FOR UPDATE`` in id order, so two processes' batches queue on the rows instead of
    deadlocking (SQLite's transactions here already hold its one write lock). The caller decides which
    calls fit and writes the new counts with :func:`set_usage` in the same transaction.
    """
    if not grant_ids:
        return {}
    ids = sorted(set(grant_ids))
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(GrantUsage).on_conflict_do_nothing(index_elements=["grant_id", "day"]),
        [{"grant_id": grant_id, "day": day, "calls": 0} for grant_id in ids],
    )
    stmt = (
        select(GrantUsage.grant_id, GrantUsage.calls)
        .where(GrantUsage.day == day, GrantUsage.grant_id.in_(ids))
        .order_by(GrantUsage.grant_id)
        .with_for_update()
    )
    return {grant_id: int(calls) for grant_id, calls in session.execute(stmt)}


def set_usage(session: Session, calls: dict[str, int], day: date) -> None:
    """Store the day's new counts of rows :func:`lock_usage` locked."""
    if not calls:
        return
    # ORM bulk UPDATE by primary key: one executemany.
    session.execute(update(GrantUsage), [{"grant_id": g, "day": day, "calls": n} for g, n in sorted(calls.items())])


def usage(session: Session, grant_id: str, day: date) -> int:
    """Calls counted under ``grant_id`` on local ``day``."""
    stmt = select(GrantUsage.calls).where(GrantUsage.grant_id == grant_id, GrantUsage.day == day)
    return int(session.scalar(stmt) or 0)
