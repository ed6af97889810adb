"""In-process scheduler for the embedded default: runs PERIODIC_JOBS on a daemon thread."""

from __future__ import annotations

import logging
import threading
import time

from hub.jobs import PERIODIC_JOBS, registered

log = logging.getLogger(__name__)


class InProcessScheduler:
    """What Celery beat does in distributed mode, without a broker: eager tasks on a timer."""

    def __init__(self, jobs: dict[str, float] | None = None, tick_seconds: float = 1.0) -> None:
        self.jobs = dict(PERIODIC_JOBS if jobs is None else jobs)
        self.tick = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs: dict[str, int] = dict.fromkeys(self.jobs, 0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="hub-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        due = dict.fromkeys(self.jobs, time.monotonic())
        while not self._stop.is_set():
            now = time.monotonic()
            for name, every in self.jobs.items():
                if now >= due[name]:
                    due[name] = now + every
                    self._run(name)
            self._stop.wait(self.tick)

    def _run(self, name: str) -> None:
        try:
            registered(name).apply_async()  # a fresh API process has not imported hub.tasks yet
            self.runs[name] += 1
        except Exception:
            # A failing periodic job must not kill the scheduler; it is logged and retried next tick.
            log.exception("periodic job failed", extra={"job": name})
