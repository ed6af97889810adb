"""The audit committer in a child process (HUB_AUDIT_COMMITTER=process): real child, real database, real crypto."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import hub.schema  # noqa: F401 - every package's errors are loaded with its models
from audit.committer import AuditNotDurable, CommitterClosed
from audit.entries import AuditEvent, Receipt
from audit.models import AuditEntry
from hub.api.app import create_app
from hub.audit_process import ProcessCommitter
from hub.clock import utcnow
from hub.errors import DomainError
from hub.runtime import Runtime, build_runtime
from tests.exchange.exchangekit import MATTER, OTHER_MATTER, ExchangeKit, make_exchange_kit
from tests.licences.licencekit import make_licence_kit


@pytest.fixture
def process_runtime(live_runtime: Runtime) -> Iterator[Runtime]:
    """A second runtime on the live (committed) database whose API app runs its committer as a child process."""
    runtime = build_runtime(live_runtime.settings.model_copy(update={"audit_committer": "process"}))
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def process_client(process_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(process_runtime), raise_server_exceptions=False) as client:
        yield client


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        action="licence.presentation.scanned", outcome="ok", actor_type="public", actor="anonymous",
        request_id=f"r{n}", time=utcnow(), case_number=f"c{n}",
    )  # fmt: skip


def _stored(runtime: Runtime) -> dict[int, tuple[bytes, str, str, str | None]]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.leaf_index, AuditEntry.leaf_hash, AuditEntry.action, AuditEntry.outcome,
                   AuditEntry.error_code)
        ).all()  # fmt: skip
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def _checked(runtime: Runtime, receipt: dict[str, Any]) -> Receipt:
    parsed = Receipt.from_json(receipt)
    parsed.verify(runtime.audit_signer.private_key.public_key(), runtime.audit_signer.origin)
    return parsed


def test_scan_verify_and_fetch_are_audited_by_the_child_process(
    process_runtime: Runtime, process_client: TestClient
) -> None:
    committer = process_runtime.audit
    assert isinstance(committer, ProcessCommitter)
    assert committer.pid is not None and committer.pid != os.getpid()
    ex: ExchangeKit = make_exchange_kit(make_licence_kit(process_client, process_runtime))
    kit = ex.kit
    identifier = ex.company_licence["certificate_identifier"]
    before = set(_stored(process_runtime))
    answers: list[tuple[str, dict[str, Any]]] = []  # (what, body) of every audited call below

    shown = kit.client.post(
        f"/v1/me/licences/{identifier}/presentations", json={}, headers=kit.holder_headers(ex.company)
    )
    assert shown.status_code == 201, shown.text
    token = shown.json()["token"]
    scan = kit.client.get(f"/v/{token}", headers={"Accept": "application/json"})
    assert scan.status_code == 200, scan.text
    assert scan.json()["verdict"] == "valid" and scan.json()["certificate_identifier"] == identifier
    answers.append(("licence.presentation.scanned ok", scan.json()))
    page = kit.client.get(f"/v/{token}")  # the HTML page, same answer
    assert page.status_code == 200 and "verdict ok" in page.text and "营业执照" in page.text
    head, payload, signature = token.split(".")
    forged = kit.client.get(f"/v/{head}.{payload}.{signature[::-1]}", headers={"Accept": "application/json"})
    assert forged.status_code == 200 and forged.json()["verdict"] == "not_genuine"
    answers.append(("licence.presentation.scanned denied", forged.json()))

    verified = kit.client.post(
        "/v1/exchange/verify", json={"certificate_identifier": identifier}, headers=ex.consumer.headers
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "valid" and "face" not in verified.json()
    answers.append(("exchange.licence.verified ok", verified.json()))
    unknown = kit.client.post(
        "/v1/exchange/verify", json={"certificate_identifier": identifier[:-3] + "999"}, headers=ex.consumer.headers
    )
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["code"] == "licence_not_found"  # a refusal crossed the process boundary intact
    answers.append(("exchange.licence.verified denied", unknown.json()))

    fetched = ex.fetch()
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["licence"]["certificate_identifier"] == identifier
    answers.append(("exchange.licence.fetched ok", fetched.json()))
    wrong = ex.fetch(matter_code=OTHER_MATTER)
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["code"] == "grant_matter_mismatch" and "licence" not in wrong.json()
    answers.append(("exchange.licence.fetched denied", wrong.json()))

    # A sync handler on the thread pool records through the child too (ProcessCommitter.record).
    checked = kit.client.post(
        "/v1/exchange/materials-check", json={"matter_code": MATTER, "holder": ex.fetch_body()["holder"]},
        headers=ex.consumer.headers,
    )  # fmt: skip
    assert checked.status_code == 200, checked.text
    answers.append(("exchange.materials.checked ok", checked.json()))

    stored = _stored(process_runtime)
    for what, body in answers:
        receipt = _checked(process_runtime, body["receipt"])
        leaf_hash, action, outcome, _ = stored[receipt.leaf_index]
        assert f"{action} {outcome}" == what
        assert leaf_hash == receipt.leaf_hash
    new = sorted(set(stored) - before)
    assert new == list(range(new[0], new[0] + len(new)))  # no gaps, whatever else was recorded meanwhile
    assert committer.entries >= len(answers)


def test_many_concurrent_calls_share_the_child_s_commits(process_runtime: Runtime) -> None:
    committer = ProcessCommitter(process_runtime.settings)

    async def many() -> list[list[Receipt]]:
        await committer.start()
        try:
            return list(await asyncio.gather(*(committer.record_async([_event(n)]) for n in range(200))))
        finally:
            await committer.aclose()

    receipts = [r for rs in asyncio.run(many()) for r in rs]
    for receipt in receipts:
        _checked(process_runtime, receipt.to_json())
    assert sorted(r.leaf_index for r in receipts) == list(range(200))
    assert committer.entries == 200
    assert committer.batches < 200  # the calls really were batched


def test_a_killed_child_fails_the_waiting_call_with_503_and_the_next_call_starts_a_new_one(
    process_runtime: Runtime, process_client: TestClient
) -> None:
    committer = process_runtime.audit
    assert isinstance(committer, ProcessCommitter) and committer.pid is not None
    first_pid = committer.pid
    ex: ExchangeKit = make_exchange_kit(make_licence_kit(process_client, process_runtime))
    body = {"certificate_identifier": ex.company_licence["certificate_identifier"]}
    os.kill(first_pid, signal.SIGSTOP)  # the call below reaches the child, which never answers it
    answered: list[Any] = []
    call = threading.Thread(
        target=lambda: answered.append(
            process_client.post("/v1/exchange/verify", json=body, headers=ex.consumer.headers)
        )
    )
    call.start()
    time.sleep(0.5)
    assert not answered  # still waiting for its entry
    before = _stored(process_runtime)
    os.kill(first_pid, signal.SIGKILL)
    call.join(timeout=30)
    (refused,) = answered
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "audit_unavailable" and refused.headers["retry-after"]
    assert "valid_from" not in refused.json() and "status" not in refused.json().get("licence", {})  # nothing shown
    assert _stored(process_runtime) == before  # and nothing recorded: the child never read the call
    again = process_client.post("/v1/exchange/verify", json=body, headers=ex.consumer.headers)
    assert again.status_code == 200, again.text
    assert committer.pid not in (None, first_pid) and committer.started == 2
    leaf = _checked(process_runtime, again.json()["receipt"]).leaf_index
    assert leaf == max(before) + 1  # the new child continues the log with no gap


def test_shutdown_answers_the_calls_in_flight_then_stops_the_child(process_runtime: Runtime) -> None:
    committer = ProcessCommitter(process_runtime.settings)

    async def run() -> tuple[list[Any], Any]:
        await committer.start()
        calls = [asyncio.ensure_future(committer.record_async([_event(n)])) for n in range(50)]
        await asyncio.sleep(0)  # the calls are sent
        await committer.aclose()
        after = await asyncio.gather(committer.record_async([_event(99)]), return_exceptions=True)
        return list(await asyncio.gather(*calls, return_exceptions=True)), after[0]

    answered, late = asyncio.run(run())
    assert all(isinstance(receipts, list) for receipts in answered), answered
    assert isinstance(late, CommitterClosed)
    assert committer.pid is None  # the child has exited
    assert sorted(_stored(process_runtime)) == list(range(50))


def test_a_call_the_child_does_not_answer_in_time_gets_503_and_the_next_one_works(process_runtime: Runtime) -> None:
    committer = ProcessCommitter(process_runtime.settings, wait_seconds=0.5)

    async def run() -> tuple[object, float, list[Receipt]]:
        await committer.start()
        pid = committer.pid
        assert pid is not None
        try:
            os.kill(pid, signal.SIGSTOP)  # alive, reading nothing: only the deadline can end the call
            started = time.monotonic()
            (late,) = await asyncio.gather(committer.record_async([_event(1)]), return_exceptions=True)
            waited = time.monotonic() - started
            os.kill(pid, signal.SIGCONT)
            return late, waited, await committer.record_async([_event(2)])
        finally:
            await committer.aclose()

    late, waited, receipts = asyncio.run(run())
    assert isinstance(late, AuditNotDurable) and late.problem()["code"] == "audit_unavailable"
    assert 0.5 <= waited < 3  # its deadline, plus at most one sweep
    assert committer.started == 1  # the same child answered the next call
    # The late call's entry was recorded once the child ran again (the read happened); the next one follows it.
    assert [r.leaf_index for r in receipts] == [1] and sorted(_stored(process_runtime)) == [0, 1]


def _domain_errors() -> list[type[DomainError]]:
    found, todo = [], [DomainError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", _domain_errors(), ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_every_refusal_crosses_the_process_boundary_intact(cls: type[DomainError]) -> None:
    error = cls.__new__(cls)
    DomainError.__init__(error, "what is allowed", limit=3)
    error.headers["Retry-After"] = "7"
    error.receipt = {"leaf_index": 1}
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is cls
    assert copy.problem() == error.problem() and copy.headers == error.headers and str(copy) == str(error)


def test_record_refuses_to_block_its_own_event_loop(process_runtime: Runtime) -> None:
    committer = ProcessCommitter(process_runtime.settings)

    async def on_the_loop() -> None:
        await committer.start()
        try:
            with pytest.raises(RuntimeError, match="own event loop"):
                committer.record([_event(1)])  # it would wait for the loop it blocks
            (receipt,) = await asyncio.to_thread(committer.record, [_event(2)])  # from another thread it works
            assert receipt.leaf_index == 0
        finally:
            await committer.aclose()

    asyncio.run(on_the_loop())
