"""Group commit: audit entries of concurrent requests committed together, each caller released when durable."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from sqlalchemy.orm import Session, sessionmaker

from audit.append import AuditSigner, Sequenced, append, append_direct
from audit.entries import AuditEvent, Receipt
from hub.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class CommitterClosed(ServiceUnavailable):
    code = "audit_unavailable"
    title = "The audit log is shutting down; retry on another instance"


class Waiter:
    """One caller waiting for its batch: a lock held until the writer thread releases it.

    Lighter than ``concurrent.futures.Future`` (whose Condition, waiter list and callbacks were
    the largest single cost of the hand-off at 64 writers): one C-level lock, two slots.
    """

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.result: list[Sequenced] = []
        self.error: BaseException | None = None

    def set_result(self, result: list[Sequenced]) -> None:
        self.result = result
        self.done.release()

    def set_exception(self, error: BaseException) -> None:
        self.error = error
        self.done.release()

    def wait(self, timeout: float) -> list[Sequenced]:
        if not self.done.acquire(timeout=timeout):
            msg = f"the audit batch was not durable within {timeout} s"
            raise TimeoutError(msg)
        if self.error is not None:
            raise self.error
        return self.result


_Item = tuple[Sequence[AuditEvent], Waiter]


class GroupCommitter:
    """One writer thread per process: while one batch commits, the next one gathers.

    A request that discloses data blocks in :meth:`record` until its entry's batch is durable, so
    "no audit, no data" holds without one commit (and one fsync) per request. If the batch fails,
    every caller in it gets the exception and must not disclose anything.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        signer: Callable[[], AuditSigner],
        *,
        max_batch: int = 2000,
        wait_seconds: float = 30.0,
        dsn: str | None = None,
    ) -> None:
        """Batches append through ``session_factory``, or through a plain connection when ``dsn`` is given.

        ``dsn`` is a PostgreSQL connection string: the writer thread then keeps one psycopg connection of
        its own and appends with :func:`audit.append.append_direct`.
        """
        self._sessions = session_factory
        self._dsn = dsn
        self._connection: psycopg.Connection[Any] | None = None
        self._signer = signer
        self._max_batch = max_batch
        self._wait = wait_seconds
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self.batches = 0  # for tests and metrics: how many commits served how many entries
        self.entries = 0

    def record(self, events: Sequence[AuditEvent]) -> list[Receipt]:
        """Append ``events`` in their own durable transaction (shared with concurrent callers)."""
        waiter = Waiter()
        with self._start_lock:
            if self._closed:
                raise CommitterClosed
            self._ensure_thread()
            self._queue.put((events, waiter))
        sequenced = waiter.wait(self._wait)
        signer = self._signer()
        return [signer.receipt(s.leaf_index, s.leaf_hash, s.integrated_time) for s in sequenced]

    def close(self) -> None:
        """Commit what is queued, then refuse new entries (shutdown)."""
        with self._start_lock:
            self._closed = True
            thread = self._thread
            if thread is not None and thread.is_alive():
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout=10)
            if not thread.is_alive():
                self._discard_connection()

    def _ensure_thread(self) -> None:
        """Start the writer thread if it is not running; the caller holds ``_start_lock``."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="audit-group-commit", daemon=True)
            self._thread.start()

    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        """The first item and whatever else is already queued; after the stop sentinel, everything left."""
        batch, count, stop = [first], len(first[0]), False
        while count < self._max_batch or stop:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                continue
            batch.append(item)
            count += len(item[0])
        return batch, stop

    def _commit(self, events: list[AuditEvent]) -> list[Sequenced]:
        """Append ``events`` in one transaction and commit it; raise if it is not durable."""
        if self._dsn is None:
            with self._sessions() as session:
                sequenced = append(session, events)
                session.commit()
            return sequenced
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self._dsn, connect_timeout=5)
        connection = self._connection
        try:
            sequenced = append_direct(connection, events)
            connection.commit()
        except BaseException:
            self._discard_connection()  # a dead or aborted connection is replaced on the next batch
            raise
        return sequenced

    def _discard_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            events = [event for item in batch for event in item[0]]
            try:
                sequenced = self._commit(events)
            except Exception as exc:  # noqa: BLE001 - every waiting caller learns the batch failed
                log.warning("audit batch failed", extra={"entries": len(events), "error": type(exc).__name__})
                for _, waiter in batch:
                    waiter.set_exception(exc)
                continue
            self.batches += 1
            self.entries += len(events)
            offset = 0
            for item_events, waiter in batch:
                waiter.set_result(sequenced[offset : offset + len(item_events)])
                offset += len(item_events)
