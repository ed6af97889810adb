"""The hub's public RFC 3161 time-stamping service over HTTP (RFC 3161 §3.4)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from hub.api.deps import RuntimeDep
from hub.db import begin_read_only
from hub.runtime import Runtime
from seals import service as pki
from seals.errors import TimestampQueryMediaTypeUnsupported, TimestampQueryTooLarge

router = APIRouter(tags=["pki"])

TIMESTAMP_QUERY = "application/timestamp-query"  # RFC 3161 §3.4
TIMESTAMP_REPLY = "application/timestamp-reply"
MAX_QUERY_BYTES = 16 * 1024  # a TimeStampReq is ~60 bytes plus a policy and a nonce; leave room, no more


def _respond(runtime: Runtime, query: bytes) -> bytes:
    # Nothing is written, so the unit of work is read-only: on SQLite it must not take the single
    # write lock (hub.db.begin_read_only), and a time-stamp discloses no licence data to audit.
    with runtime.session_scope() as session:
        begin_read_only(session)
        stamper = pki.get_timestamper(session, runtime.master_keys)
    return stamper.respond(query)


@router.post(
    "/v1/tsa",
    response_class=Response,
    responses={
        200: {"content": {TIMESTAMP_REPLY: {}}, "description": "DER TimeStampResp, granted or rejection"},
        413: {"description": "The query is over 16 KiB"},
        415: {"description": "The body is not application/timestamp-query"},
    },
)
async def timestamp(request: Request, runtime: RuntimeDep) -> Response:
    """RFC 3161 time-stamping: POST a DER TimeStampReq as ``application/timestamp-query``.

    No authentication: the TSA is a public service, and a token reveals only the digest it was
    sent. Every well-formed HTTP exchange gets HTTP 200 with a TimeStampResp, refusals included:
    RFC 3161 §3.4 lets the server answer a valid response or an HTTP error, and only the
    TimeStampResp (§2.4.2) carries the PKIFailureInfo a client needs to know why (badAlg,
    badDataFormat, unacceptedPolicy, unacceptedExtension). HTTP errors are for what never reached
    the protocol: another media type (415) or an oversized body (413).
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != TIMESTAMP_QUERY:
        raise TimestampQueryMediaTypeUnsupported(f"send the DER TimeStampReq as {TIMESTAMP_QUERY}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_QUERY_BYTES:
        raise TimestampQueryTooLarge(f"a TimeStampReq is at most {MAX_QUERY_BYTES} bytes")
    query = bytearray()
    async for chunk in request.stream():  # counted as it arrives, so a chunked upload is capped too
        query += chunk
        if len(query) > MAX_QUERY_BYTES:
            raise TimestampQueryTooLarge(f"a TimeStampReq is at most {MAX_QUERY_BYTES} bytes")
    reply = await run_in_threadpool(_respond, runtime, bytes(query))
    # Each token is unique (serial, time): never cache one for another request.
    return Response(reply, media_type=TIMESTAMP_REPLY, headers={"Cache-Control": "no-store"})
