"""Group commit on a real database with real connections: concurrent callers, one durable batch, no gaps."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest
from factories import random_uscc
from fastapi.testclient import TestClient
from sqlalchemy import select

from audit.committer import GroupCommitter
from audit.entries import AuditEvent, Receipt
from audit.models import AuditEntry
from hub.api.app import create_app
from hub.clock import utcnow
from hub.identity import service as identity
from hub.runtime import Runtime


def make_event(i: int) -> AuditEvent:
    return AuditEvent(
        action="exchange.licence.verified",
        outcome="ok",
        actor_type="department",
        actor="11330100002010066Q",
        request_id=f"r{i}",
        time=utcnow(),
    )


def test_concurrent_callers_share_commits_and_get_gap_free_indexes(live_runtime: Runtime) -> None:
    writers, each = 16, 20
    results: list[list[Receipt]] = [[] for _ in range(writers)]
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                results[n].extend(live_runtime.audit.record([make_event(n * 1000 + i)]))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    indexes = sorted(r.leaf_index for rs in results for r in rs)
    assert indexes == list(range(writers * each))
    committer = live_runtime.audit
    assert committer.entries == writers * each
    assert committer.batches < writers * each  # callers really shared commits
    public = live_runtime.audit_signer.private_key.public_key()
    for receipts in results:
        for receipt in receipts:
            receipt.verify(public, live_runtime.audit_signer.origin)
    # Durable means visible to a brand-new connection.
    with live_runtime.engine.connect() as conn:
        stored = dict(conn.execute(select(AuditEntry.leaf_index, AuditEntry.leaf_hash)).all())
    assert all(stored[r.leaf_index] == r.leaf_hash for rs in results for r in rs)


def test_a_failed_batch_fails_every_caller_and_leaves_no_entry(live_runtime: Runtime) -> None:
    def broken_sessions() -> Any:
        raise ConnectionError("database went away")

    committer = GroupCommitter(broken_sessions, lambda: live_runtime.audit_signer)  # type: ignore[arg-type]
    try:
        with pytest.raises(ConnectionError):
            committer.record([make_event(1)])
    finally:
        committer.close()
    with live_runtime.engine.connect() as conn:
        assert conn.execute(select(AuditEntry.leaf_index)).first() is None
    # The real committer still works afterwards, from index 0: nothing was half-written.
    assert live_runtime.audit.record([make_event(2)])[0].leaf_index == 0


def test_a_closed_committer_refuses_new_entries_after_draining(live_runtime: Runtime) -> None:
    from audit.committer import CommitterClosed

    committer = live_runtime.audit
    (receipt,) = committer.record([make_event(1)])
    committer.close()
    with pytest.raises(CommitterClosed):
        committer.record([make_event(2)])
    with live_runtime.engine.connect() as conn:
        assert conn.execute(select(AuditEntry.leaf_index)).scalars().all() == [receipt.leaf_index]


def test_a_dead_committer_connection_fails_one_batch_then_is_replaced(live_runtime: Runtime) -> None:
    if live_runtime.audit_dsn is None:
        pytest.skip("PostgreSQL only: SQLite's committer appends through sessions")
    committer = live_runtime.audit
    (first,) = committer.record([make_event(1)])
    with live_runtime.engine.connect() as conn:  # an operator (or a failover) kills the committer's backend
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalars()
        for pid in pids:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    with pytest.raises(psycopg.OperationalError):
        committer.record([make_event(2)])  # the caller learns its entry is not durable: it must not answer
    (second,) = committer.record([make_event(3)])  # a new connection, and no gap
    assert (first.leaf_index, second.leaf_index) == (0, 1)
    with live_runtime.engine.connect() as conn:
        assert conn.execute(select(AuditEntry.leaf_index)).scalars().all() == [0, 1]


def test_without_pre_ping_a_dead_pool_answers_503_once_then_recovers(live_runtime: Runtime) -> None:
    """A database restart kills every pooled connection: one 503 with Retry-After, then service resumes."""
    if live_runtime.audit_dsn is None:
        pytest.skip("PostgreSQL only: SQLite has no server connection to lose")
    with live_runtime.session_scope() as session:
        dept = identity.create_department(session, code=random_uscc(), name="临江市测试局", level="municipal",
                                          area_code="330100")  # fmt: skip
        api_client, secret = identity.create_client(session, department_code=dept.code, scopes="licence:read")
    with TestClient(create_app(live_runtime), raise_server_exceptions=False) as client:
        token = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(api_client.client_id, secret or "")
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/whoami", headers=headers).status_code == 200
        with psycopg.connect(live_runtime.audit_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        down = client.get("/v1/whoami", headers=headers)
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] and down.json()["code"] == "database_unavailable"
        assert client.get("/v1/whoami", headers=headers).status_code == 200  # the pool was invalidated, not stuck


def _numbered(n: int) -> AuditEvent:
    return AuditEvent(
        action="licence.presentation.scanned", outcome="ok", actor_type="public", actor="anonymous",
        request_id=f"r{n}", time=utcnow(), case_number=f"c{n}",
    )  # fmt: skip


def _read_squares(_context: Any, session: Any, numbers: list[int]) -> list[tuple[int, AuditEvent]]:
    """A batched read: one query for every request of the batch, each answer with the entry that records it."""
    _read_squares.calls.append(len(numbers))  # type: ignore[attr-defined]
    assert session.execute(select(AuditEntry.leaf_index).limit(1)).all() is not None  # a real read-only session
    return [(n * n, _numbered(n)) for n in numbers]


_read_squares.calls = []  # type: ignore[attr-defined]


def _read_broken(_context: Any, _session: Any, numbers: list[int]) -> list[tuple[int, AuditEvent]]:
    raise LookupError(f"cannot read {numbers}")


def test_async_reads_share_one_read_per_batch_and_answer_only_when_durable(live_runtime: Runtime) -> None:
    """Requests on an event loop: answers and receipts come back together, the reads were batched, no gaps."""
    committer = live_runtime.audit
    _read_squares.calls.clear()  # type: ignore[attr-defined]

    async def many() -> list[tuple[int, Receipt]]:
        return list(await asyncio.gather(*(committer.read_and_record(_read_squares, n) for n in range(50))))

    answers = asyncio.run(many())
    assert [answer for answer, _ in answers] == [n * n for n in range(50)]
    assert sorted(receipt.leaf_index for _, receipt in answers) == list(range(50))
    assert sum(_read_squares.calls) == 50  # type: ignore[attr-defined]
    assert len(_read_squares.calls) < 50  # type: ignore[attr-defined] # the reads really were shared
    public = live_runtime.audit_signer.private_key.public_key()
    with live_runtime.engine.connect() as conn:
        stored = dict(conn.execute(select(AuditEntry.leaf_index, AuditEntry.case_number)).all())
    for n, (_, receipt) in enumerate(answers):
        receipt.verify(public, live_runtime.audit_signer.origin)
        assert stored[receipt.leaf_index] == f"c{n}"  # each answer carries its own entry's receipt


def test_a_failed_read_fails_only_its_own_requests(live_runtime: Runtime) -> None:
    committer = live_runtime.audit

    async def both() -> list[Any]:
        return list(
            await asyncio.gather(
                committer.read_and_record(_read_broken, 1),
                committer.read_and_record(_read_squares, 7),
                asyncio.to_thread(committer.record, [_numbered(8)]),
                return_exceptions=True,
            )
        )

    broken, fine, threaded = asyncio.run(both())
    assert isinstance(broken, LookupError)
    assert fine[0] == 49
    assert isinstance(threaded[0], Receipt)
    with live_runtime.engine.connect() as conn:  # the refused read wrote nothing; the other two did
        assert sorted(conn.execute(select(AuditEntry.case_number)).scalars()) == ["c7", "c8"]


def test_an_async_read_the_log_cannot_confirm_in_time_is_refused_with_503(live_runtime: Runtime) -> None:
    from audit.committer import AuditNotDurable

    hold = threading.Event()

    def slow(_context: Any, _session: Any, numbers: list[int]) -> list[tuple[int, AuditEvent]]:
        hold.wait(10)
        return [(n, make_event(n)) for n in numbers]

    committer = GroupCommitter(live_runtime.session_factory, lambda: live_runtime.audit_signer, wait_seconds=0.2)
    try:
        with pytest.raises(AuditNotDurable) as refused:
            asyncio.run(committer.read_and_record(slow, 1))
        assert refused.value.status == 503 and refused.value.code == "audit_unavailable"
    finally:
        hold.set()
        committer.close()


def test_a_closed_committer_refuses_async_reads(live_runtime: Runtime) -> None:
    from audit.committer import CommitterClosed

    committer = live_runtime.audit
    committer.close()
    with pytest.raises(CommitterClosed):
        asyncio.run(committer.read_and_record(_read_squares, 1))
