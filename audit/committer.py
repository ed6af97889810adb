"""Group commit: audit entries of concurrent requests committed together, each caller released when durable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

import psycopg
from sqlalchemy.orm import Session, sessionmaker

from audit.append import AuditSigner, Sequenced, append, append_direct
from audit.entries import AuditEvent, Receipt
from hub.db import begin_read_only
from hub.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class CommitterClosed(ServiceUnavailable):
    code = "audit_unavailable"
    title = "The audit log is shutting down; retry on another instance"


class AuditNotDurable(ServiceUnavailable):
    code = "audit_unavailable"
    title = "The audit log did not confirm the entry in time; nothing was disclosed, retry later"

    @classmethod
    def after(cls, seconds: float) -> AuditNotDurable:
        return cls(f"the audit batch was not durable within {seconds:g} s")


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
            raise AuditNotDurable.after(timeout)
        if self.error is not None:
            raise self.error
        return self.result


class AsyncWaiter:
    """A caller on an event loop: its future is settled on the loop, once per batch for all its callers."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


Sink = Callable[[list[tuple[Any, Any, BaseException | None]]], None]
"""Takes a batch's outcomes, ``(key, result, error)`` each, on the committer's thread (hub.audit_process)."""


class SinkWaiter:
    """A caller in another process: its answer goes, with the batch's others, to a sink under its ``key``."""

    __slots__ = ("key", "sink")

    def __init__(self, sink: Sink, key: Any) -> None:
        self.sink = sink
        self.key = key


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """Runs on the event loop: hand every waiting request its answer (or the batch's error)."""
    for future, result, error in outcomes:
        if future.done():  # the request was cancelled or timed out meanwhile
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


A = TypeVar("A")
R = TypeVar("R")
BatchRead = Callable[[Any, Session, list[A]], list[tuple[R, AuditEvent]]]
"""Reads a batch of requests in one read-only session: per request, its answer and the entry that records it.

Called as ``read(context, session, arguments)`` with the committer's ``context`` (the hub's runtime), so a
request carries only its own plain values: the same request can be read by a committer in another process.
The same shape serves :meth:`GroupCommitter.write_and_record`, whose batch runs in a read-write session.
"""


class AuditCommitter(Protocol):
    """What the hub needs of a group committer: :class:`GroupCommitter`, or hub.audit_process's child process."""

    batches: int
    entries: int

    def record(self, events: Sequence[AuditEvent]) -> list[Receipt]: ...
    async def record_async(self, events: Sequence[AuditEvent]) -> list[Receipt]: ...
    async def read_and_record(self, read: BatchRead[A, R], argument: A) -> tuple[R, Receipt]: ...
    async def write_and_record(self, write: BatchRead[A, R], argument: A) -> tuple[R, Receipt]: ...
    def close(self) -> None: ...


class Job(Generic[A, R]):
    """One caller's part of a batch: entries to append, or a read that yields its answer and entry."""

    __slots__ = ("answer", "answers", "argument", "error", "events", "read", "waiter")

    def __init__(
        self,
        waiter: Waiter | AsyncWaiter | SinkWaiter,
        events: Sequence[AuditEvent] = (),
        read: BatchRead[A, R] | None = None,
        argument: A | None = None,
    ) -> None:
        self.waiter = waiter
        self.events = events
        self.read = read  # on the writer thread; or, for a write job, on the write thread (then None there)
        self.argument = argument
        self.answers = read is not None  # the caller awaits (answer, receipt), not receipts
        self.answer: R | None = None
        self.error: BaseException | None = None


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
        read_sessions: sessionmaker[Session] | None = None,
        context: Any = None,
    ) -> None:
        """Batches append through ``session_factory``, or through a plain connection when ``dsn`` is given.

        ``dsn`` is a PostgreSQL connection string: the writer thread then keeps one psycopg connection of
        its own and appends with :func:`audit.append.append_direct`. ``read_sessions`` serves the reads of
        :meth:`read_and_record` (default: ``session_factory``); ``context`` is what every read gets first.
        """
        self._sessions = session_factory
        self._read_sessions = read_sessions or session_factory
        self._dsn = dsn
        self._connection: psycopg.Connection[Any] | None = None
        self._signer = signer
        self._context = context
        self._max_batch = max_batch
        self._wait = wait_seconds
        self._queue: queue.SimpleQueue[Job[Any, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._writes: queue.SimpleQueue[Job[Any, Any] | None] = queue.SimpleQueue()
        self._write_thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self.batches = 0  # for tests and metrics: how many commits served how many entries
        self.entries = 0

    def record(self, events: Sequence[AuditEvent]) -> list[Receipt]:
        """Append ``events`` in their own durable transaction (shared with concurrent callers)."""
        waiter = Waiter()
        self._submit(Job(waiter, events))
        sequenced = waiter.wait(self._wait)
        signer = self._signer()
        return [signer.receipt(s.leaf_index, s.leaf_hash, s.integrated_time) for s in sequenced]

    async def read_and_record(self, read: BatchRead[A, R], argument: A) -> tuple[R, Receipt]:
        """From an event loop: ``read`` this request with the batch's others, record its entry, then answer.

        The read runs on the writer thread, in one read-only session for every request of the batch
        that shares ``read`` (one query for all of them, not one session and query each); the answer
        comes back only once its entry is durable. The loop never blocks: it awaits a future that the
        writer thread settles, one loop wake-up per batch. A request that does not wait for the
        answer (cancelled, timed out) leaves its entry recorded: the read happened.
        """
        waiter = AsyncWaiter(asyncio.get_running_loop())
        answer: tuple[R, Receipt] = await self._settled(waiter, Job(waiter, read=read, argument=argument))
        return answer

    async def write_and_record(self, write: BatchRead[A, R], argument: A) -> tuple[R, Receipt]:
        """:meth:`read_and_record` for a request that also writes (a fetch: its quota, its copy).

        A second thread runs ``write`` for every queued request that shares it, in one read-write session,
        and commits; then it hands the batch's entries to the writer thread, and the answers leave once
        those are durable. While one batch's entries commit, the next batch is written: the two commits
        overlap instead of adding up. Data is disclosed only after both commits; if the audit commit
        fails, the callers get the error and nothing (what was written stays, disclosed to no one).
        """
        waiter = AsyncWaiter(asyncio.get_running_loop())
        answer: tuple[R, Receipt] = await self._settled(waiter, Job(waiter, read=write, argument=argument), write=True)
        return answer

    async def record_async(self, events: Sequence[AuditEvent]) -> list[Receipt]:
        """:meth:`record` for a caller on an event loop (a refusal decided there): awaits instead of blocking."""
        waiter = AsyncWaiter(asyncio.get_running_loop())
        receipts: list[Receipt] = await self._settled(waiter, Job(waiter, events))
        return receipts

    def submit(
        self,
        sink: Sink,
        key: Any,
        events: Sequence[AuditEvent] = (),
        *,
        read: BatchRead[Any, Any] | None = None,
        argument: Any = None,
        write: bool = False,
    ) -> None:
        """Queue a call whose outcome goes to ``sink`` under ``key``, once per batch with its batch's others.

        For a committer that answers another process (hub.audit_process): the outcome is what an awaiting
        caller would get (its answer and receipt, or its receipts) or the error.
        """
        self._submit(Job(SinkWaiter(sink, key), events, read, argument), write=write)

    async def _settled(self, waiter: AsyncWaiter, job: Job[Any, Any], *, write: bool = False) -> Any:
        """Queue ``job`` and await what the writer thread settles ``waiter`` (the job's) with."""
        self._submit(job, write=write)
        try:
            async with asyncio.timeout(self._wait):
                return await waiter.future
        except TimeoutError:
            raise AuditNotDurable.after(self._wait) from None

    def _submit(self, job: Job[Any, Any], *, write: bool = False) -> None:
        with self._start_lock:
            if self._closed:
                raise CommitterClosed
            self._ensure_thread()
            if write:
                if self._write_thread is None or not self._write_thread.is_alive():
                    name = "audit-batch-write"
                    self._write_thread = threading.Thread(target=self._run_writes, name=name, daemon=True)
                    self._write_thread.start()
                self._writes.put(job)
            else:
                self._queue.put(job)

    def close(self) -> None:
        """Write and commit what is queued, then refuse new entries (shutdown)."""
        with self._start_lock:
            self._closed = True
            writes = self._write_thread
            if writes is not None and writes.is_alive():
                self._writes.put(None)
        if writes is not None:
            writes.join(timeout=10)  # its last batches go to the writer thread before the stop below
        with self._start_lock:
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

    def _gather(
        self, first: Job[Any, Any], source: queue.SimpleQueue[Job[Any, Any] | None] | None = None
    ) -> tuple[list[Job[Any, Any]], bool]:
        """The first item and whatever else is already queued; after the stop sentinel, everything left."""
        source = source or self._queue
        batch, count, stop = [first], len(first.events) or 1, False
        while count < self._max_batch or stop:
            try:
                item = source.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                continue
            batch.append(item)
            count += len(item.events) or 1
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

    def _read(self, batch: list[Job[Any, Any]], *, write: bool = False) -> None:
        """Run the batch's reads (or writes), one call per function; a failed one fails only its own jobs."""
        groups: defaultdict[BatchRead[Any, Any], list[Job[Any, Any]]] = defaultdict(list)
        for job in batch:
            if job.read is not None:
                groups[job.read].append(job)
        for read, jobs in groups.items():
            try:
                # Closing the session (not rolling it back) detaches what was read with its values intact.
                with self._read_sessions() as session:
                    if not write:
                        begin_read_only(session)
                    answers = read(self._context, session, [job.argument for job in jobs])
                    if write:
                        session.commit()
            except Exception as exc:  # those callers get the error, the others go on; the trace goes to the log
                extra = {"requests": len(jobs), "error": type(exc).__name__}
                log.warning("audited batch failed", extra=extra, exc_info=exc)
                for job in jobs:
                    job.error = exc
                continue
            for job, (answer, event) in zip(jobs, answers, strict=True):
                job.answer, job.events, job.read = answer, (event,), None

    def _run_writes(self) -> None:
        """The write thread: run queued write jobs in batches, then queue their entries for the writer thread."""
        stop = False
        while not stop:
            first = self._writes.get()
            if first is None:
                return
            batch, stop = self._gather(first, self._writes)
            self._read(batch, write=True)
            failed = [job for job in batch if job.error is not None]
            if failed:
                self._release(failed, [])
            for job in batch:
                if job.error is None:
                    self._queue.put(job)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._release(batch, self._run_batch(batch))

    def _run_batch(self, batch: list[Job[Any, Any]]) -> list[Sequenced]:
        """Read the batch, append its entries in one durable commit; a job that failed carries its error.

        Returns the entries' places in batch order, for the jobs without an error (all of them fail if
        the commit does).
        """
        try:
            self._read(batch)
            batch_events = [event for job in batch if job.error is None for event in job.events]
            sequenced = self._commit(batch_events) if batch_events else []
        except Exception as exc:  # every waiting caller learns the batch failed; the trace goes to the log
            extra = {"entries": len(batch), "error": type(exc).__name__}
            log.warning("audit batch failed", extra=extra, exc_info=exc)
            for job in batch:
                job.error = job.error or exc
            return []
        self.batches += 1
        self.entries += len(batch_events)
        return sequenced

    def _placed(
        self, batch: list[Job[Any, Any]], sequenced: list[Sequenced]
    ) -> Iterator[tuple[Job[Any, Any], list[Sequenced]]]:
        """Each job of a batch :meth:`_run_batch` ran, with its own entries' places (none if it failed)."""
        offset = 0
        for job in batch:
            mine: list[Sequenced] = []
            if job.error is None:
                mine = sequenced[offset : offset + len(job.events)]
                offset += len(job.events)
            yield job, mine

    def _release(self, batch: list[Job[Any, Any]], sequenced: list[Sequenced]) -> None:
        """Wake every caller of the batch: threads one by one, each event loop and each sink once with all of theirs."""
        settled: defaultdict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]] = defaultdict(list)
        sunk: defaultdict[Sink, list[tuple[Any, Any, BaseException | None]]] = defaultdict(list)
        signer = self._signer() if any(not isinstance(job.waiter, Waiter) for job in batch) else None
        for job, mine in self._placed(batch, sequenced):
            waiter = job.waiter
            if isinstance(waiter, Waiter):
                if job.error is None:
                    waiter.set_result(mine)
                else:
                    waiter.set_exception(job.error)
                continue
            result: Any = None
            if job.error is None and signer is not None:
                receipts = [signer.receipt(s.leaf_index, s.leaf_hash, s.integrated_time) for s in mine]
                result = (job.answer, receipts[0]) if job.answers else receipts
            if isinstance(waiter, SinkWaiter):
                sunk[waiter.sink].append((waiter.key, result, job.error))
            else:
                settled[waiter.loop].append((waiter.future, result, job.error))
        for loop, outcomes in settled.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, outcomes)
        for sink, sunk_outcomes in sunk.items():
            try:
                sink(sunk_outcomes)
            except Exception:  # a sink that failed must not stop this thread; its callers time out with 503
                log.exception("audit batch outcomes could not be delivered")
