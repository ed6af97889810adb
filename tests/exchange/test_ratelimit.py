"""Per-client burst limits: token buckets in the process and in Redis, and the audited 429 on the exchange."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from factories import department
from fastapi.testclient import TestClient

from audit.models import AuditEntry
from hub.api.app import create_app
from hub.exchange.ratelimit import MemoryLimiter, RedisLimiter
from tests.licences.licencekit import department_client

REDIS_URL = "redis://127.0.0.1:6379/15"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_memory_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = MemoryLimiter(burst=2, rate=2.0, clock=clock)
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)  # one token comes back in 1 / rate seconds
    assert limiter.take("b") == 0.0  # buckets are per client
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    clock.now += 100
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(0.5)]  # never more than the burst


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"licence-hub-test:{secrets.token_hex(4)}:"
    yield name
    server = redis.Redis.from_url(REDIS_URL)
    for key in server.scan_iter(f"{name}*"):
        server.delete(key)


def test_two_processes_draw_from_one_redis_bucket(prefix: str) -> None:
    first = RedisLimiter(REDIS_URL, burst=3, rate=0.01, prefix=prefix)
    second = RedisLimiter(REDIS_URL, burst=3, rate=0.01, prefix=prefix)  # another API process
    assert [first.take("client"), second.take("client"), first.take("client")] == [0.0, 0.0, 0.0]
    wait = second.take("client")
    assert wait > 90  # 1 / 0.01 s, less what has refilled since
    assert first.take("other-client") == 0.0


def test_an_unreachable_redis_fails_open() -> None:
    limiter = RedisLimiter("redis://127.0.0.1:1/0", burst=1, rate=1.0)
    assert limiter.take("client") == 0.0


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "redis"])
def test_the_exchange_answers_429_with_retry_after_and_audits_it(
    make_runtime: Any, make_settings: Any, prefix: str, shared: bool
) -> None:
    """Both limiters through the route: Redis's is asked on a worker thread (verify runs on the event loop)."""
    runtime = make_runtime(make_settings(exchange_client_burst=2, exchange_client_rate_per_second=0.01))
    if shared:
        runtime.__dict__["client_limiter"] = RedisLimiter(REDIS_URL, burst=2, rate=0.01, prefix=prefix)
        assert runtime.client_limiter.blocking
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        with runtime.session_scope() as session:
            code = department(session, "临江市人力资源和社会保障局").code
        caller = department_client(client, runtime, code, "exchange:verify")
        body = {"certificate_identifier": "unknown"}
        for _ in range(2):
            assert client.post("/v1/exchange/verify", json=body, headers=caller.headers).status_code == 404
        limited = client.post("/v1/exchange/verify", json=body, headers=caller.headers)
        assert limited.status_code == 429, limited.text
        problem = limited.json()
        assert problem["code"] == "client_rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        with runtime.session_scope() as session:
            entry = session.get(AuditEntry, problem["receipt"]["leaf_index"])
            assert entry is not None
            assert (entry.action, entry.outcome, entry.error_code) == (
                "exchange.licence.verified", "denied", "client_rate_limited",
            )  # fmt: skip
            assert entry.department_code == code
        other = department_client(client, runtime, code, "exchange:verify")  # another system of the department
        assert client.post("/v1/exchange/verify", json=body, headers=other.headers).status_code == 404
