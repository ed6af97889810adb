"""Builds the FastAPI application from a Runtime."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from hub.api.admission import AdmissionGate
from hub.api.body_limit import BodyLimit, body_limits
from hub.api.middleware import GroupCommitMetrics, RequestContextMiddleware, RequestMetrics
from hub.api.openapi import install as install_openapi
from hub.api.problems import install_problem_handlers
from hub.api.routes import (
    admin,
    audit,
    audit_console,
    catalog_access,
    catalog_dcat,
    catalog_matters,
    catalog_objections,
    catalog_resources,
    clients,
    console,
    devidp,
    exchange,
    licences,
    me,
    oauth,
    ops,
    pages,
    pki,
    portal,
    scan,
    seals,
    staff,
    tsa,
    verify,
    webhooks,
)
from hub.audit_process import ProcessCommitter
from hub.observability import configure_logging
from hub.runtime import Runtime, build_runtime, set_runtime
from hub.scheduler import InProcessScheduler
from hub.settings import Settings


def create_app(runtime: Runtime, *, start_scheduler: bool = False, served: bool = False) -> FastAPI:
    """The API app on ``runtime``; ``served``: run by ``licence-hub serve`` (its audit committer a process on auto)."""
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        scheduler = InProcessScheduler() if start_scheduler else None
        async with _audit_committer(runtime, served=served):
            if scheduler is not None:
                scheduler.start()
            try:
                yield
            finally:
                if scheduler is not None:
                    scheduler.stop()

    app = FastAPI(
        title="licence-hub",
        summary="政务数据共享与电子证照交换中心 — government data-sharing and e-licence exchange hub",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    set_runtime(runtime)  # in-process jobs (embedded mode, tests) run with the app's own runtime
    registry = _metrics_registry(runtime)
    app.state.metrics_registry = registry
    # The last added runs first: request context, then the body limit (an oversized request is refused before
    # it waits for a slot), then the admission gate.
    app.add_middleware(
        AdmissionGate,
        limit=settings.max_concurrent_requests,
        light=_pool_free,
        light_limit=settings.max_concurrent_scans,
    )
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        paths=body_limits(settings),
        pages={"/verify": pages.verify_page_too_large},
    )
    app.add_middleware(RequestContextMiddleware, metrics=RequestMetrics(registry))
    install_problem_handlers(app)
    install_openapi(app)
    # Routes are matched in order, one pattern at a time: the calls made most often come first.
    for router in (
        exchange.calls,
        exchange.router,
        scan.router,
        ops.router,
        oauth.router,
        clients.router,
        admin.router,
        audit.router,
        pki.router,
        tsa.router,
        seals.router,
        verify.router,
        pages.router,
        portal.router,
        staff.router,
        audit_console.router,
        console.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parents[1] / "static"), name="static")
    for router in (
        licences.router,
        me.router,
        webhooks.router,
        catalog_resources.router,
        catalog_matters.router,
        catalog_access.router,
        catalog_objections.router,
        catalog_dcat.router,
    ):
        app.include_router(router)
    if settings.is_development:
        app.include_router(devidp.router)
    return app


@asynccontextmanager
async def _audit_committer(runtime: Runtime, *, served: bool) -> AsyncIterator[None]:
    """The app's audit committer: a child process (started before the first request) or a thread; drained at the end."""
    choice = runtime.settings.audit_committer
    if choice == "thread" or (choice == "auto" and not served):
        try:
            yield
        finally:
            if "audit" in vars(runtime):  # the group committer was started: drain and stop it
                runtime.audit.close()
        return
    process = ProcessCommitter(runtime.settings)
    await process.start()
    runtime.audit = process
    try:
        yield
    finally:
        await process.aclose()  # the calls in flight are answered, then the child stops


def _pool_free(path: str) -> bool:
    """Routes that never wait on the thread pool or hold a connection (hub.api.admission)."""
    return path.startswith(scan.POOL_FREE_PREFIXES) or path in exchange.POOL_FREE_PATHS


def _metrics_registry(runtime: Runtime) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(GroupCommitMetrics(lambda: _committer_counters(runtime)))
    return registry


def _committer_counters(runtime: Runtime) -> tuple[int, int] | None:
    if "audit" not in vars(runtime):  # not started yet: a scrape must not start it
        return None
    return runtime.audit.batches, runtime.audit.entries


def create_app_from_env() -> FastAPI:
    """The uvicorn factory (``licence-hub serve``): settings from the environment."""
    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    runtime = build_runtime(settings)
    set_runtime(runtime)
    app = create_app(runtime, start_scheduler=settings.is_eager and settings.scheduler_enabled, served=True)
    tune_gc()
    return app


GC_THRESHOLDS = (20_000, 20, 50)  # CPython's defaults are (700, 10, 10)


def tune_gc() -> None:
    """Fewer and cheaper garbage collections for a long-running API process.

    With CPython's defaults a young collection ran every 700 allocations and each older one walked again
    every object made at start-up (mapped classes, routes, schemas, caches). Under 64 clients that cost
    the QR scan about 15 % of its throughput and doubled its p99 (1,275 → 1,549 req/s, p99 152 → 68 ms,
    docs/DESIGN-NOTES.md). What exists once the app is built is frozen (never scanned again); cycles made
    by requests are still collected, less often. Only the uvicorn factory does this, not tests' apps.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
