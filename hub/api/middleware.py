"""ASGI middleware: request ids, access logs and Prometheus metrics for every request."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.observability import request_id_var

log = logging.getLogger("hub.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "hub_http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "hub_http_request_duration_seconds", "HTTP request latency by route", ["method", "route"], registry=registry
        )
        # Each (method, route, status)'s two series, looked up once: ``labels()`` checks and locks on every call.
        # Bounded: routes are the app's path templates ("unmatched" for any other path).
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            series = self.requests.labels(method, route, str(status)), self.latency.labels(method, route)
            self._series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)


class GroupCommitMetrics:
    """The audit group committer's counters (batches, entries), read at scrape time; nothing until it starts."""

    def __init__(self, counters: Callable[[], tuple[int, int] | None]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        found = self.counters()
        if found is None:
            return
        batches, entries = found
        yield CounterMetricFamily(
            "hub_audit_group_commits", "Durable commits made by the audit group committer", batches
        )
        yield CounterMetricFamily("hub_audit_group_commit_entries", "Audit entries those commits carried", entries)


class RequestContextMiddleware:
    """Takes a caller's X-Request-ID if well formed (else makes one) and echoes it back."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                supplied = value.decode("latin-1")  # the last one wins, as in a dict of the headers
        request_id = supplied if _SAFE_ID.match(supplied) else secrets.token_hex(8)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route: Any = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.observe(scope["method"], path, status, elapsed)
            log.info(
                "request",
                extra={"method": scope["method"], "route": path, "status": status, "ms": round(elapsed * 1000, 2)},
            )
            request_id_var.reset(token)
