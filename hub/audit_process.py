"""The audit group committer in a process of its own, beside one API process (``HUB_AUDIT_COMMITTER=process``).

Why: an audited call's irreducible work (checking a presentation code, reading the licence, appending and
committing its entry, signing its receipt) and the HTTP work around it all ran under one GIL, so one API
process used one core however many it had. ``bench/scan_floor.py`` measured the two shapes side by side on
a 2-core VM: with the committer as a thread even the least possible scan stayed near 0.3× a bare FastAPI
endpoint; with the committer as a child process it reached 0.5–0.6×. This module is that second shape for
the hub's own committer (``audit.committer.GroupCommitter``), unchanged in what it does.

How: the API process's event loop gathers the requests of one loop turn (scans, verifies, fetches, plain
entries) and writes them to the child in one frame over a private socket pair. The child's main thread hands
each request to the same ``GroupCommitter`` the thread shape uses, whose threads batch them (reads and
writes through the child's own connections, one durable commit, one receipt per entry; a batch's fetches are
written while the previous batch's entries commit) and write each batch's answers back in one frame
(``GroupCommitter.submit`` with a sink). "No audit, no data" holds as before: an answer crosses the socket
only after its entry's commit.

Requests and answers are plain values (``pickle``): both ends are this code, the socket pair is created by
the parent and never listens, so nothing else can write to it. If the child dies, every call waiting on it
gets 503 ``audit_unavailable`` (nothing was disclosed) and the next call starts a new child. At shutdown the
parent waits for the calls in flight, then closes the socket; the child finishes its batch and exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import multiprocessing
import pickle
import signal
import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from audit.committer import AuditNotDurable, BatchRead, CommitterClosed, GroupCommitter
from audit.entries import AuditEvent, Receipt
from hub.errors import DomainError
from hub.settings import Settings

log = logging.getLogger(__name__)

A = TypeVar("A")
R = TypeVar("R")
_FRAME = struct.Struct("!I")  # every frame: its length, then one pickle
_SWEEP_SECONDS = 1.0  # how often calls past their deadline are failed: a call waits at most this much longer
READ, WRITE, EVENTS = "r", "w", "e"
# A request: (id, kind, read function or None, its argument or the entries). An answer: (id, result, error).
Request = tuple[int, str, BatchRead[Any, Any] | None, Any]
Answer = tuple[int, Any, BaseException | None]


class AuditProcessGone(AuditNotDurable):
    title = "The audit process stopped before confirming the entry; nothing was disclosed, retry"


class AuditProcessFailed(AuditNotDurable):
    title = "The audit log could not record this call; nothing was disclosed, retry later"


def _frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME.pack(len(data)) + data


async def _receive(reader: asyncio.StreamReader) -> Any:
    """The next frame's value; IncompleteReadError once the other end has closed."""
    (size,) = _FRAME.unpack(await reader.readexactly(_FRAME.size))
    return pickle.loads(await reader.readexactly(size))  # noqa: S301 - our own child, see the module's docstring


class ProcessCommitter:
    """The API process's side: one child process running the group committer, and the calls waiting on it.

    The same interface as ``GroupCommitter``. Its async methods run on the event loop that called
    :meth:`start`; :meth:`record`, for handlers on the thread pool, hands its call to that loop and waits.
    """

    def __init__(self, settings: Settings, *, wait_seconds: float = 30.0, start_seconds: float = 60.0) -> None:
        self._settings = settings
        self._wait = wait_seconds
        self._start_seconds = start_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Lock | None = None
        self._child: BaseProcess | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        # (deadline, call id) in call order: one watchdog task fails the calls that waited too long. Not an
        # ``asyncio.timeout`` per call: entering and leaving one was 4 % of the API process's time per verify.
        self._deadlines: collections.deque[tuple[float, int]] = collections.deque()
        self._watchdog: asyncio.Task[None] | None = None
        self._outgoing: list[Request] = []
        self._ids = itertools.count(1)
        self._closed = False
        self.batches = 0  # the child's counters, as of its latest answer (for metrics and tests)
        self.entries = 0
        self.started = 0  # how many children this committer has started

    @property
    def pid(self) -> int | None:
        """The running child's process id (None before the first start or after it stopped)."""
        child = self._child
        return child.pid if child is not None and child.is_alive() else None

    async def start(self) -> None:
        """Bind to the running loop and start the child; returns once it is ready to commit."""
        self._loop = asyncio.get_running_loop()
        self._starting = asyncio.Lock()
        self._watchdog = self._loop.create_task(self._expire())
        await self._ensure_child()

    async def read_and_record(self, read: BatchRead[A, R], argument: A) -> tuple[R, Receipt]:
        """As ``GroupCommitter.read_and_record``; ``read`` must be a module-level function, ``argument`` plain."""
        answer: tuple[R, Receipt] = await self._call(READ, read, argument)
        return answer

    async def write_and_record(self, write: BatchRead[A, R], argument: A) -> tuple[R, Receipt]:
        """As ``GroupCommitter.write_and_record``: the child runs the batch's writes and commits them first."""
        answer: tuple[R, Receipt] = await self._call(WRITE, write, argument)
        return answer

    async def record_async(self, events: Sequence[AuditEvent]) -> list[Receipt]:
        receipts: list[Receipt] = await self._call(EVENTS, None, list(events))
        return receipts

    def record(self, events: Sequence[AuditEvent]) -> list[Receipt]:
        """For a caller on another thread (a sync handler): blocks until the entries are durable."""
        loop = self._loop
        if loop is None or self._closed:
            raise CommitterClosed("the audit process is not running (not started, or shut down)")
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: the usual case
            running = None
        if running is loop:  # blocking here would stop the loop that must carry the answer back
            msg = "record() called on the audit process's own event loop; await record_async()"
            raise RuntimeError(msg)
        future = asyncio.run_coroutine_threadsafe(self.record_async(events), loop)
        try:
            return future.result(timeout=self._wait + 5)
        except TimeoutError:
            future.cancel()
            raise AuditNotDurable.after(self._wait) from None

    async def _call(self, kind: str, read: BatchRead[Any, Any] | None, argument: Any) -> Any:
        if self._closed or self._loop is None:
            raise CommitterClosed
        if self._writer is None:
            await self._ensure_child()
        loop = self._loop
        call_id = next(self._ids)
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting[call_id] = future
        if not self._outgoing:  # the first call of this loop turn: all of the turn's calls go in one write
            loop.call_soon(self._flush)
        self._outgoing.append((call_id, kind, read, argument))
        self._deadlines.append((loop.time() + self._wait, call_id))
        try:
            return await future
        finally:
            self._waiting.pop(call_id, None)

    async def _expire(self) -> None:
        """Once a second: each call still waiting past its deadline gets 503 (its entry may yet be recorded)."""
        loop = asyncio.get_running_loop()
        deadlines = self._deadlines
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            now = loop.time()
            while deadlines and deadlines[0][0] <= now:
                _, call_id = deadlines.popleft()
                future = self._waiting.get(call_id)
                if future is not None and not future.done():
                    future.set_exception(AuditNotDurable.after(self._wait))

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        writer = self._writer
        error: DomainError | None = None
        if writer is None or writer.is_closing():
            error = AuditProcessGone("the audit process is not running")
        else:
            try:
                writer.write(_frame(outgoing))
            except Exception:  # an argument that cannot be sent (a bug): the trace to our log, 503 to the callers
                log.exception("audited calls could not be sent to the audit process")
                error = AuditProcessFailed()
        if error is not None:  # nothing was sent, nothing disclosed
            for call_id, *_ in outgoing:
                future = self._waiting.get(call_id)
                if future is not None and not future.done():
                    future.set_exception(error)

    async def _ensure_child(self) -> None:
        assert self._starting is not None  # noqa: S101 - start() set it
        async with self._starting:
            if self._writer is not None and not self._writer.is_closing():
                return
            if self._closed:
                raise CommitterClosed
            parent_end, child_end = socket.socketpair()
            # spawn, not fork: the API process has threads (the thread pool, uvicorn's) and open connections.
            context = multiprocessing.get_context("spawn")
            child = context.Process(
                target=serve, args=(self._settings, child_end), name="licence-hub-audit", daemon=True
            )
            await asyncio.to_thread(child.start)
            child_end.close()
            reader, writer = await asyncio.open_unix_connection(sock=parent_end)
            try:
                async with asyncio.timeout(self._start_seconds):
                    ready = await _receive(reader)
            except (TimeoutError, asyncio.IncompleteReadError, OSError) as exc:
                writer.close()
                await asyncio.to_thread(_stop, child, 5.0)
                raise AuditProcessGone("the audit process did not start; see its log") from exc
            log.info("audit process started", extra={"pid": child.pid, "ready": ready})
            self._child, self._writer, self.started = child, writer, self.started + 1
            self._reading = asyncio.get_running_loop().create_task(self._read(reader, writer, child))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, child: BaseProcess) -> None:
        """Hand each answer to its caller; when the child is gone, every caller still waiting gets 503."""
        try:
            while True:
                batches, entries, answers = await _receive(reader)
                self.batches, self.entries = batches, entries
                for call_id, result, error in answers:
                    future = self._waiting.get(call_id)
                    if future is None or future.done():  # timed out meanwhile: its entry is recorded anyway
                        continue
                    if error is None:
                        future.set_result(result)
                    else:
                        future.set_exception(error)
        except (asyncio.IncompleteReadError, OSError, pickle.UnpicklingError) as exc:
            if not self._closed:
                # The trace would only show the socket closing; the child logs its own failure.
                log.error("audit process stopped", extra={"pid": child.pid, "error": type(exc).__name__})  # noqa: TRY400
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()
            gone = AuditProcessGone("the audit process stopped; the next call starts a new one")
            for future in list(self._waiting.values()):
                if not future.done():
                    future.set_exception(gone)
            await asyncio.to_thread(_stop, child, 5.0)

    async def aclose(self) -> None:
        """Shutdown: refuse new calls, let the ones in flight be answered, then stop the child."""
        self._closed = True
        pending = [future for future in self._waiting.values() if not future.done()]
        if pending:
            await asyncio.wait(pending, timeout=self._wait)
        writer, reading = self._writer, self._reading
        if writer is not None:
            writer.close()  # the child sees the end of its input, finishes its batch and exits
        if reading is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        if self._watchdog is not None:
            self._watchdog.cancel()

    def close(self) -> None:
        """Runtime.close() outside a loop (CLI, tests): stop the child if ``aclose`` did not."""
        self._closed = True
        child = self._child
        if child is not None:
            _stop(child, 5.0)


def _stop(child: BaseProcess, timeout: float) -> None:
    """Wait for the child to exit on its own (its input has ended), then make sure it has."""
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join(timeout)


# ------------------------------------------------------------------------------------------------ the child


def serve(settings: Settings, channel: socket.socket) -> None:
    """The child's main: build a runtime, then feed its group committer until the parent closes its end.

    This thread only receives; the committer's own threads batch, commit and answer (through ``sink``), so
    a batch's writes (the fetches') overlap the previous batch's audit commit, as in the thread shape.
    """
    from hub.api.app import tune_gc  # noqa: PLC0415 - the API app (and its routes' read functions) import this module
    from hub.observability import configure_logging  # noqa: PLC0415
    from hub.runtime import build_runtime  # noqa: PLC0415 - hub.runtime imports this module

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides when to stop
    configure_logging(settings.log_level, json_lines=settings.log_json)
    runtime = build_runtime(settings)
    committer = runtime.thread_committer()
    signer = runtime.audit_signer  # decrypted once, before the first call waits on it
    tune_gc()
    sending = threading.Lock()

    def sink(outcomes: list[Answer]) -> None:
        """On a committer thread: one batch's answers in one frame."""
        answers = [(key, result, None if error is None else _portable(error)) for key, result, error in outcomes]
        frame = _answers_frame(committer, answers)
        with sending, contextlib.suppress(OSError):  # the parent is gone: nobody waits for these answers
            channel.sendall(frame)

    channel.sendall(_frame({"origin": signer.origin}))
    try:
        for call_id, kind, read, argument in _requests(channel):
            if kind == EVENTS:
                committer.submit(sink, call_id, argument)
            else:
                committer.submit(sink, call_id, read=read, argument=argument, write=kind == WRITE)
    except (ConnectionResetError, EOFError, pickle.UnpicklingError):
        pass  # the parent is gone, perhaps in the middle of a frame
    finally:
        committer.close()  # what was queued is committed (and answered, if anyone still listens)
        runtime.close()


def _answers_frame(committer: GroupCommitter, answers: list[Answer]) -> bytes:
    """The batch's answers in one frame; one that cannot cross (a bug) becomes that caller's 503, not everyone's."""
    try:
        return _frame((committer.batches, committer.entries, answers))
    except Exception:  # find which ones, below
        log.exception("an audited answer could not be sent to the API process")
    portable: list[Answer] = []
    for call_id, result, error in answers:
        try:
            pickle.dumps((result, error))
        except Exception:  # noqa: BLE001 - its entry is recorded; its caller is told nothing was disclosed
            portable.append((call_id, None, AuditProcessFailed()))
        else:
            portable.append((call_id, result, error))
    return _frame((committer.batches, committer.entries, portable))


def _requests(channel: socket.socket) -> Iterator[Request]:
    """Each request in arrival order, until the parent closes its end (the committer's threads batch them)."""
    stream = channel.makefile("rb")
    while len(header := stream.read(_FRAME.size)) == _FRAME.size:
        (size,) = _FRAME.unpack(header)
        yield from pickle.loads(stream.read(size))  # noqa: S301 - our own parent, see the module's docstring


def _portable(error: BaseException) -> BaseException:
    """What the caller may see of a failure: a refusal as it is, a database failure as the API says it.

    An outage is 503 ``database_unavailable``, as in the API process; anything else is 503
    ``audit_unavailable``, its trace in this process's log.
    """
    from hub.api.problems import database_problem  # noqa: PLC0415 - the API package imports this module

    if isinstance(error, DomainError):
        return error
    problem = database_problem(error)
    if problem is not None:
        return problem
    log.error("audited call failed", exc_info=error)
    return AuditProcessFailed()
