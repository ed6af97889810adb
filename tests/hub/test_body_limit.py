"""Oversized request bodies are refused early (issue 9): 413 problem+json, nothing read, nothing done."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from conftest import MASTER_KEY, free_port, stop_process
from factories import bearer
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.types import Receive, Scope, Send

from audit.models import AuditEntry
from hub.api.app import create_app
from hub.api.body_limit import BodyLimit, BodyTooLarge, body_limits
from hub.runtime import Runtime
from licences.models import Licence, LicenceBatch
from seals.verify import MAX_FILE_BYTES

MIB = 1 << 20
PROBLEM = "application/problem+json"


def assert_refused(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["connection"] == "close"
    problem = response.json()
    assert problem["code"] == "payload_too_large"
    assert problem["type"].endswith("/problems/payload_too_large")
    assert problem["status"] == 413
    assert str(limit) in problem["detail"]


# ----------------------------------------------------------------------------- the middleware alone


class Reader:
    """An ASGI app that reads its whole body (or, with ``retry``, reads on after a refusal), then answers."""

    def __init__(self, *, retry: bool = False, answer_first: bool = False) -> None:
        self.calls = 0
        self.complete = False
        self.retry = retry
        self.answer_first = answer_first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002 - ASGI signature
        self.calls += 1
        if self.answer_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        size = 0
        while True:
            try:
                message = await receive()
            except BodyTooLarge:
                if not self.retry:
                    raise
                self.retry = False  # an app that swallows the error and reads on gets it again
                continue
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
                break
        if not self.answer_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


def post(app: BodyLimit, path: str, content: bytes | AsyncIterator[bytes]) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://limit") as client:
            return await client.post(path, content=content)

    return asyncio.run(run())


def test_a_declared_length_over_the_limit_never_reaches_the_app() -> None:
    inner = Reader()
    limited = BodyLimit(inner, default=1000, paths={"/big": 5000})
    assert_refused(post(limited, "/small", b"x" * 1001), 1000)
    assert inner.calls == 0
    assert post(limited, "/small", b"x" * 1000).text == "1000"
    assert post(limited, "/big", b"x" * 5000).text == "5000"
    assert_refused(post(limited, "/big", b"x" * 5001), 5000)
    assert inner.calls == 2


def test_a_streamed_body_is_cut_off_and_never_seen_whole() -> None:
    inner = Reader()
    limited = BodyLimit(inner, default=100_000, paths={})
    assert_refused(post(limited, "/", chunks(100_001)), 100_000)
    assert (inner.calls, inner.complete) == (1, False)
    assert post(limited, "/", chunks(100_000)).text == "100000"
    assert inner.complete


def test_reading_on_after_the_refusal_is_refused_again() -> None:
    inner = Reader(retry=True)
    assert_refused(post(BodyLimit(inner, default=10, paths={}), "/", chunks(100, size=8)), 10)
    assert not inner.complete


def test_an_answer_already_under_way_is_aborted() -> None:
    inner = Reader(answer_first=True)
    with pytest.raises(BodyTooLarge):
        post(BodyLimit(inner, default=10, paths={}), "/", chunks(100, size=8))
    assert not inner.complete


# ----------------------------------------------------------------------------- the hub


def _count(runtime: Runtime, model: Any) -> int:
    with runtime.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _padded_json(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes that POST /v1/licences refuses as invalid."""
    head = b'{"pad":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def test_an_oversized_json_call_is_refused_before_anything_runs(client: TestClient, runtime: Runtime) -> None:
    limit = runtime.settings.max_body_bytes
    headers, _ = bearer(client, runtime, "licence:issue")
    headers |= {"Content-Type": "application/json", "Idempotency-Key": "body-limit-1"}
    licences, entries = _count(runtime, Licence), _count(runtime, AuditEntry)
    refused = client.post("/v1/licences", content=_padded_json(limit + 1), headers=headers)
    assert_refused(refused, limit)
    assert refused.headers["x-request-id"] == refused.json()["request_id"]
    streamed = client.post("/v1/licences", content=iter([_padded_json(limit + 1)]), headers=headers)
    assert_refused(streamed, limit)
    assert (_count(runtime, Licence), _count(runtime, AuditEntry)) == (licences, entries)
    # Exactly at the limit the body is read and checked like any other.
    at_limit = client.post("/v1/licences", content=_padded_json(limit), headers=headers)
    assert at_limit.status_code == 422, at_limit.text
    assert at_limit.json()["code"] == "request_invalid"


def test_a_verification_upload_may_be_20_mib_and_a_far_bigger_one_is_not_parsed(
    client: TestClient, runtime: Runtime
) -> None:
    def upload(path: str, size: int, **data: str) -> httpx.Response:
        files = {"file": ("licence.pdf", b"%PDF-" + b"0" * (size - 5), "application/pdf")}
        return client.post(path, files=files, data=data)

    limit = body_limits(runtime.settings)["/v1/verify/file"]
    assert MAX_FILE_BYTES + MIB < limit < 30 * MIB
    accepted = upload("/v1/verify/file", 19 * MIB)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["verdict"] == "TOTAL-FAILED"
    assert upload("/v1/verify/file", MAX_FILE_BYTES + 1).json()["code"] == "file_too_large"  # the route's own cap
    entries = _count(runtime, AuditEntry)
    assert_refused(upload("/v1/verify/file", 30 * MIB), limit)
    # The page a browser posts to answers as a page: the form again, saying the file is too big.
    page = upload("/verify", 30 * MIB, csrf_token="x" * 43)
    assert page.status_code == 413
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["connection"] == "close"
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert f"文件太大（最多 {MAX_FILE_BYTES >> 20} MiB）" in page.text
    assert 'name="csrf_token"' in page.text  # the form is there to try another file
    assert _count(runtime, AuditEntry) == entries


def test_a_batch_upload_may_be_larger_than_a_json_call(make_settings: Any, make_runtime: Any) -> None:
    runtime: Runtime = make_runtime(make_settings(max_batch_body_bytes=2 * MIB))
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        headers, _ = bearer(client, runtime, "licence:issue")
        headers["Content-Type"] = "application/x-ndjson"
        # 1.5 MiB of blank lines: past the 1 MiB default, read to the end by the route, which finds no row.
        blank = client.post("/v1/licences/batches", content=b"\n" * (3 * MIB // 2), headers=headers)
        assert blank.status_code == 422, blank.text
        assert blank.json()["code"] == "licence_batch_empty"
        assert_refused(client.post("/v1/licences/batches", content=b"\n" * (2 * MIB + 1), headers=headers), 2 * MIB)
        # Streamed (no Content-Length): rows are stored as they arrive, then rolled back at the limit.
        row = json.dumps({"certificate_type_code": "x"}).encode() + b"\n"
        rows = iter([row * 20_000] * 10)
        assert_refused(client.post("/v1/licences/batches", content=rows, headers=headers), 2 * MIB)
        assert _count(runtime, LicenceBatch) == 0


def test_every_operation_with_a_body_documents_the_413(client: TestClient) -> None:
    operations = [op for item in client.get("/openapi.json").json()["paths"].values() for op in item.values()]
    with_body = [op for op in operations if "requestBody" in op]
    assert with_body
    for operation in with_body:
        refusal = operation["responses"]["413"]
        assert refusal["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}


# ----------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """``licence-hub serve`` (uvicorn) on a fresh embedded hub; (host, port)."""
    work = tmp_path_factory.mktemp("body-limit")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {
        "HUB_ENV": "test", "HUB_DATA_DIR": str(work / "var"), "HUB_MASTER_KEY": MASTER_KEY,
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}", "HUB_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    log = work / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"licence-hub serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        stop_process(process)


def _exchange(address: tuple[str, int], head: str, body: bytes) -> tuple[bytes, float]:
    """Send a request head and part of its body, then read until the server closes; (answer, seconds)."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):  # b"" once the server has closed the connection
            answer += chunk
    return answer, time.monotonic() - started


def _problem(answer: bytes) -> dict[str, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").lower().split("\r\n")
    assert lines[0].startswith("http/1.1 413"), head
    assert f"content-type: {PROBLEM}" in lines
    assert "connection: close" in lines
    problem: dict[str, Any] = json.loads(body)
    return problem


@pytest.mark.slow
def test_a_real_server_refuses_a_10_gib_declaration_at_once(served: tuple[str, int]) -> None:
    host, port = served
    head = (
        f"POST /v1/licences HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10 << 30}\r\n"
    )
    answer, seconds = _exchange(served, head, b'{"pad":"')
    assert _problem(answer)["code"] == "payload_too_large"
    assert seconds < 3  # answered and closed without waiting for the 10 GiB (the socket would time out at 10 s)


@pytest.mark.slow
def test_a_real_server_cuts_off_a_chunked_body_at_the_limit(served: tuple[str, int]) -> None:
    host, port = served
    head = (
        f"POST /v1/licences HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
    )
    chunk = 64 * 1024
    body = (f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n") * (MIB // chunk + 1)  # no last chunk: more to come
    answer, seconds = _exchange(served, head, body)
    assert _problem(answer)["code"] == "payload_too_large"
    assert seconds < 3
