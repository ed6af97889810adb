"""Admission control: at most N requests at a time inside the application, the rest wait on the event loop.

Sync endpoints and dependencies run on a shared pool of 40 threads and each unit of work holds one pooled
database connection from its first query until its commit, which FastAPI runs after serialising the answer
(on that thread pool again). Without a gate, a burst larger than the connection pool fills every thread
with requests waiting for a connection while the requests that hold the connections wait for a thread to
finish on: the exchange benchmark at 64 clients ran at a few dozen calls a second that way, with latencies
of seconds. Requests waiting here hold neither a thread nor a connection, so the ones admitted always
finish. A slot is given back when the answer starts (the unit of work has committed by then), so slow
readers of a response do not keep others out.

Routes that never touch the thread pool (the QR scan and exchange verify: checked on the event loop, their
reads and audit entries made by the audit committer for a whole batch) have a lane of their own with a
larger limit: they hold no connection while they wait, and the group committer needs many of them in
flight to fill its batches (with the common limit of 10, scans were committed 5 at a time).

No library offers this for ASGI as far as we found (uvicorn's ``--limit-concurrency`` answers 503 instead
of queueing), and it is a semaphore and a wrapped ``send``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AdmissionGate:
    def __init__(
        self, app: ASGIApp, limit: int, *, light: Callable[[str], bool] | None = None, light_limit: int = 256
    ) -> None:
        """``light`` tells by its path whether a request takes the pool-free lane (``light_limit`` at once)."""
        self.app = app
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._light = light
        self._light_slots = asyncio.Semaphore(light_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        light = self._light is not None and self._light(scope["path"])
        slots = self._light_slots if light else self._slots
        await slots.acquire()
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def send_and_release(message: Message) -> None:
            if message["type"] == "http.response.start":
                give_back()
            await send(message)

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            give_back()
