"""One place that turns every failure into RFC 9457 problem+json: never a stack trace, never a secret."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hub.codes import mask_id_numbers
from hub.errors import DomainError, InvalidInput, ServiceUnavailable, StorageFull

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = "5"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    title = "The database is unavailable; retry later"


class ValueNotStorable(InvalidInput):
    code = "value_not_storable"
    title = "A value in the request cannot be stored or searched (for example a NUL character)"


class InternalError(DomainError):
    status = 500
    code = "internal_error"
    title = "Internal error"


class RequestInvalid(InvalidInput):
    code = "request_invalid"
    title = "The request does not match the API schema"


def problem_response(error: DomainError, request: Request) -> JSONResponse:
    body = error.problem()
    body["instance"] = request.url.path
    for key in ("detail", "instance"):  # both may echo the caller's input
        if isinstance(body.get(key), str):
            body[key] = mask_id_numbers(body[key])
    if (rid := getattr(request.state, "request_id", None)) is not None:
        body["request_id"] = rid
    headers = dict(error.headers)
    if error.status == 503:
        headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
    return JSONResponse(body, status_code=error.status, headers=headers, media_type=PROBLEM_JSON)


HTTP_CODES = {
    400: "request_malformed",  # FastAPI: a body that cannot be read as its media type (e.g. not UTF-8 JSON)
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _http_code(status: int) -> str:
    return HTTP_CODES.get(status, f"http_{status}")


def http_problem_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """An HTTP-level refusal (404, 405, 413, ...) as problem+json; also used by middleware outside the handlers."""
    return problem_response(_http_problem(request, exc), request)


def _http_problem(request: Request, exc: StarletteHTTPException) -> DomainError:
    error = DomainError(str(exc.detail))
    error.status = exc.status_code  # type: ignore[misc]
    error.code = _http_code(exc.status_code)  # type: ignore[misc]
    error.title = str(exc.detail)  # type: ignore[misc]
    error.headers.update(exc.headers or {})
    if exc.status_code == 405 and "Allow" in error.headers:  # a route's 405 (StaticFiles sends none)
        error.headers["Allow"] = _allowed_methods(request)
    return error


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 §15.5.6); Starlette names only the first route's."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    )


def _outage(cause: BaseException) -> DomainError:
    """What a database error that is not the request's fault tells the caller."""
    if "disk is full" in str(cause):  # SQLITE_FULL: the embedded database's disk is full
        log.error("storage full", extra={"error": type(cause).__name__})
        return StorageFull()
    log.warning("database unavailable", extra={"error": type(cause).__name__})
    return DatabaseUnavailable()


def database_problem(exc: BaseException) -> DomainError | None:
    """What a database failure tells the caller; None for an error that is not the database's.

    Shared by the HTTP handlers and the audit process (hub.audit_process), whose batches fail the same ways.
    """
    if isinstance(exc, OperationalError | psycopg.OperationalError):
        return _outage(exc.orig if isinstance(exc, OperationalError) and exc.orig is not None else exc)
    if isinstance(exc, DataError):
        # The database refused a value (NUL in text, out-of-range number); nothing was written.
        log.info("value refused by the database", extra={"error": type(exc.orig).__name__})
        return ValueNotStorable()
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return DatabaseUnavailable()
        log.error("database error", exc_info=exc)
        return InternalError("the request could not be completed")
    return None


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        if exc.status >= 500:
            log.error("domain error", extra={"code": exc.code, "detail": exc.detail})
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Keep where and why, drop pydantic's "input" echo: it may contain secrets or ID numbers.
        errors: list[dict[str, Any]] = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"])
        return problem_response(RequestInvalid(f"{where}: {first['msg']}", errors=errors), request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_problem_response(request, exc)

    async def database_failed(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(database_problem(exc) or InternalError("the request could not be completed"), request)

    # The audit group committer writes through its own psycopg connection (not SQLAlchemy's): the same outage
    # reaches the request as psycopg's error. The entry was not written, so nor is the answer.
    for kind in (OperationalError, psycopg.OperationalError, DataError, DBAPIError):
        app.add_exception_handler(kind, database_failed)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return problem_response(InternalError("the request could not be completed"), request)
