"""Operations: liveness, readiness of every backing service, Prometheus metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from kombu.connection import Connection
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.api.deps import RuntimeDep
from hub.api.schemas import Health
from hub.errors import Unauthenticated

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


def _check(name: str, checks: dict[str, str], probe: object) -> None:
    try:
        probe()  # type: ignore[operator]
        checks[name] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure, by type only
        checks[name] = f"unavailable: {type(exc).__name__}"


@router.get("/readyz", responses={200: {"model": Health}, 503: {"model": Health}})
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: database, object storage and broker all reachable."""
    checks: dict[str, str] = {}

    def database() -> None:
        # Pooled connections are not pinged on checkout, so after a database restart the first one out is dead.
        # Using it invalidates the pool; the second attempt then answers for the database, not for the pool.
        # (With the audit committer in its own process, this probe may be the API pool's first use since.)
        for attempt in (1, 2):
            try:
                with runtime.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
                    conn.execute(text("SELECT 1"))
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
            else:
                return

    def broker() -> None:
        if runtime.settings.is_eager:
            return
        with Connection(runtime.settings.broker_url, connect_timeout=1) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)

    _check("database", checks, database)
    _check("storage", checks, runtime.storage.ping)
    _check("broker", checks, broker)
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    headers = {} if ok else {"Retry-After": "5"}
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503, headers=headers)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus text exposition of this process's metrics (behind ``HUB_METRICS_TOKEN`` when it is set)."""
    token = runtime.settings.metrics_token
    if token is not None:
        presented = request.headers.get("authorization", "").encode()
        expected = f"Bearer {token.get_secret_value()}".encode()
        if not hmac.compare_digest(presented, expected):
            raise Unauthenticated("GET /metrics needs the scrape token (HUB_METRICS_TOKEN) as a Bearer token")
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
