"""Refuses request bodies over their path's limit with 413 problem+json, before the application reads them.

A request that declares a ``Content-Length`` over the limit is answered here, with nothing of its body read:
outside the admission gate (it never waits for a slot), inside the request context (it has its request id,
access log line and metrics). A body without a length (chunked) is counted as it streams through ``receive``;
the read that goes over raises ``BodyTooLarge`` instead of returning, and every later read raises again, so
the application never takes a cut-off body for a whole one. ``BodyTooLarge`` is an HTTPException because
FastAPI passes those on from reading a body (any other error there becomes a 400), so the application's own
handler (hub.api.problems) renders the 413; if it escapes anyway, it is rendered here, or, once an answer has
started, the connection is dropped. RFC 9110 §15.5.14: the 413 carries ``Connection: close``, so the server
stops reading what the client may still be sending.

Not audited: the refusal comes before authentication, from what the client merely declared, and an anonymous
refusal that wrote an entry would let anyone write to the log for free (a 429 ``client_rate_limited`` is
audited because the client is known by then). The access log and metrics count it.

Starlette's ``RequestBodyLimitMiddleware`` (FastAPI's ``max_body_size``) refuses only when the application
first reads the body, after the admission gate has queued the request, answers in text/plain when it answers
itself, and spreads per-route limits over the routers; the table below is the one place for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.problems import http_problem_response
from hub.settings import Settings
from seals.image import MAX_UPLOAD_BYTES as MAX_SEAL_IMAGE_BYTES
from seals.verify import MAX_FILE_BYTES as MAX_VERIFY_FILE_BYTES

# Room for the multipart framing and the form's other fields around the file, and then some: a file a little
# over its limit still reaches the route, which names the limit in its own words (``file_too_large``, or the
# /verify page's 文件太大); anything bigger is refused here before Starlette's parser spools it to disk.
MULTIPART_ROOM = 2 << 20
JSON_ROOM = 256 << 10  # a JSON body's other members, and escapes (some encoders write base64's "/" as "\/")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"The request body is over this endpoint's limit of {limit} bytes", headers={"Connection": "close"}
        )


def body_limits(settings: Settings) -> dict[str, int]:
    """Paths whose bodies may be larger than ``HUB_MAX_BODY_BYTES`` (every other path), and their limits.

    The RFC 3161 TSA keeps its own 16 KiB check (hub/api/routes/tsa.py), under the default.
    """
    verify_upload = MAX_VERIFY_FILE_BYTES + MULTIPART_ROOM
    return {
        "/v1/licences/batches": settings.max_batch_body_bytes,  # JSON Lines, streamed by the route
        "/v1/verify/file": verify_upload,
        "/verify": verify_upload,  # the page's form posts the same file
        "/v1/seals": 4 * MAX_SEAL_IMAGE_BYTES // 3 + 4 + JSON_ROOM,  # the image in base64 (RFC 4648 §4), in JSON
    }


# A page a browser posts a form to answers a refusal as a page (the form again, saying why), not as JSON.
PageRefusal = Callable[[Request], Response]


class BodyLimit:
    def __init__(
        self, app: ASGIApp, *, default: int, paths: Mapping[str, int], pages: Mapping[str, PageRefusal] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.paths = dict(paths)
        self.pages = dict(pages or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"], self.default)
        declared, chunked = _framing(scope)
        if declared is None and not chunked:
            # RFC 9112 §6.3: neither Content-Length nor Transfer-Encoding means no body at all (a GET, say).
            await self.app(scope, receive, send)
            return
        if declared is not None:
            if declared > limit:
                await self._refuse(scope, receive, send, limit)
                return
            # RFC 9112 §6.3: the server delivers exactly Content-Length bytes (more would be the next request).
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        over = False
        started = False

        async def receive_counted() -> Message:
            nonlocal received, over
            if over:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge(limit)
            return message

        async def send_watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_counted, send_watched)
        except BodyTooLarge:
            if started:
                raise  # the answer is under way: the server drops the connection
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        request = Request(scope)
        page = self.pages.get(scope["path"])
        response: Response
        if page is None:
            response = http_problem_response(request, BodyTooLarge(limit))
        else:
            response = page(request)
            response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length (None if absent or not a number) and whether a Transfer-Encoding is sent."""
    length, encoded = None, False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else -1
        elif name == b"transfer-encoding":
            encoded = True
    if length == -1:  # present but unreadable: count what actually arrives
        return None, True
    return length, encoded
