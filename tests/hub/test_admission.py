"""The admission gate: at most N requests inside the application; the rest wait their turn, none is lost."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from hub.api.admission import AdmissionGate


class Inside:
    """An ASGI app that records how many requests are inside it at once; ``/boom`` raises."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002 - ASGI signature
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.02)
            if scope["path"] == "/boom":
                raise RuntimeError("boom")
        finally:
            self.now -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _client(app: AdmissionGate) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gate")


def test_no_more_than_the_limit_are_inside_and_every_request_is_answered() -> None:
    inside = Inside()
    gate = AdmissionGate(inside, limit=3)

    async def run() -> list[int]:
        async with _client(gate) as client:
            answers = await asyncio.gather(*(client.get(f"/{n}") for n in range(20)))
        return [a.status_code for a in answers]

    assert asyncio.run(run()) == [200] * 20
    assert inside.most == 3


def test_a_failing_request_gives_its_slot_back() -> None:
    inside = Inside()
    gate = AdmissionGate(inside, limit=1)

    async def run() -> int:
        async with _client(gate) as client:
            for _ in range(3):
                with pytest.raises(RuntimeError):
                    await client.get("/boom")
            return (await client.get("/fine")).status_code  # would wait forever had a slot leaked

    assert asyncio.run(asyncio.wait_for(run(), timeout=5)) == 200


def test_pool_free_routes_have_their_own_lane_with_its_own_limit() -> None:
    """QR scans hold no thread or connection: they neither wait behind nor crowd out the pooled requests."""
    inside = Inside()
    gate = AdmissionGate(inside, limit=2, light=lambda path: path.startswith("/v/"), light_limit=5)

    async def run() -> list[int]:
        async with _client(gate) as client:
            answers = await asyncio.gather(
                *(client.get(f"/v/{n}") for n in range(15)), *(client.get(f"/v1/x/{n}") for n in range(6))
            )
        return [a.status_code for a in answers]

    assert asyncio.run(run()) == [200] * 21
    assert inside.most == 5 + 2  # both lanes full at once, never more


def test_the_light_lane_is_bounded_too() -> None:
    inside = Inside()
    gate = AdmissionGate(inside, limit=10, light=lambda path: path.startswith("/v/"), light_limit=2)

    async def run() -> None:
        async with _client(gate) as client:
            await asyncio.gather(*(client.get(f"/v/{n}") for n in range(12)))

    asyncio.run(run())
    assert inside.most == 2
