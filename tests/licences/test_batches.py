"""Batch issuance: per-row errors, good rows issued exactly once, restart after a crash without duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from hub.runtime import Runtime
from licences import batches
from licences.models import Licence, LicenceBatch, LicenceBatchRow
from tests.licences.licencekit import LicenceKit


def _jsonl(kit: LicenceKit, good: int) -> tuple[bytes, list[int]]:
    """``good`` valid rows with malformed ones between them; returns the body and the bad line numbers."""
    lines: list[bytes] = []
    bad: list[int] = []
    for n in range(good):
        lines.append(json.dumps(kit.request("营业执照", serial=n + 1), ensure_ascii=False).encode())
        if n == 1:
            lines.append(b'{"certificate_type_code": "broken json')
            bad.append(len(lines))
        if n == 2:
            lines.append(b"[1, 2, 3]")
            bad.append(len(lines))
        if n == 3:
            row = kit.request("营业执照", serial=99)
            row["face"]["registered_capital"] = ""  # violates the schema: refused by issuance itself
            row["face"]["legal_representative"] = "x" * 500
            lines.append(json.dumps(row, ensure_ascii=False).encode())
            bad.append(len(lines))
        if n == 4:
            lines.append(json.dumps({"certificate_type_code": "x"}).encode())  # fails the request model
            bad.append(len(lines))
    return b"\n".join(lines) + b"\n", bad


def test_batch_reports_bad_rows_and_issues_good_ones_once(kit: LicenceKit, runtime: Runtime) -> None:
    body, bad = _jsonl(kit, 8)
    response = kit.client.post(
        "/v1/licences/batches", content=body, headers={**kit.issuer.headers, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 202, response.text
    batch_id = response.json()["batch_id"]
    # inline jobs in tests: the chunks ran after the upload committed
    status = kit.client.get(f"/v1/licences/batches/{batch_id}", headers=kit.issuer.headers).json()
    assert status["status"] == "completed"
    assert (status["total"], status["issued"], status["failed"], status["pending"]) == (12, 8, 4, 0)
    assert [e["line"] for e in status["errors"]] == bad
    codes = {e["line"]: e["code"] for e in status["errors"]}
    assert codes[bad[0]] == "batch_row_malformed" and codes[bad[1]] == "batch_row_malformed"
    assert codes[bad[2]] == "licence_face_invalid" and codes[bad[3]] == "batch_row_invalid"
    assert "x" * 50 not in response.text + json.dumps(status)  # row values are never echoed
    with runtime.session_scope() as session:
        issued = session.scalar(select(func.count()).select_from(Licence).where(Licence.batch_id == batch_id))
    assert issued == 8

    # running a chunk again (a redelivered task) issues nothing more
    assert batches.issue_chunk(runtime.session_scope, runtime.licence_context, batch_id, 1, 12) == 0
    with runtime.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Licence).where(Licence.batch_id == batch_id)) == 8


def test_batch_restarts_after_a_crash_without_duplicates(kit: LicenceKit, runtime: Runtime) -> None:
    body, _ = _jsonl(kit, 6)
    with runtime.session_scope() as session:
        batch = batches.create_batch(
            session, department_code=kit.issuer.code, client_id=None, body=[body[:50], body[50:]], max_rows=100
        )
        batch_id = batch.id

    calls = 0

    def crash_after_three(_line: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt  # a worker killed mid-chunk: the open transaction never commits

    with pytest.raises(KeyboardInterrupt):
        batches.issue_chunk(runtime.session_scope, runtime.licence_context, batch_id, 1, 100, on_row=crash_after_three)
    with runtime.session_scope() as session:
        done = batches.progress(session, batch_id)
        # the first transaction group holds up to 20 rows, so nothing of the interrupted group survived
        assert done["issued"] == 0 and session.scalar(select(func.count()).select_from(Licence)) == 0
        # the redrive job finds it once it looks stalled
        session.execute(
            update(LicenceBatch)
            .where(LicenceBatch.id == batch_id)
            .values(updated_at=batch.created_at.replace(year=2020))
        )
    assert batch_id in _stalled(runtime)
    assert batches.issue_chunk(runtime.session_scope, runtime.licence_context, batch_id, 1, 100) == 7
    with runtime.session_scope() as session:
        done = batches.progress(session, batch_id)
        assert (done["issued"], done["failed"], done["pending"]) == (6, 4, 0)
        identifiers = session.scalars(
            select(LicenceBatchRow.licence_identifier).where(LicenceBatchRow.status == "issued")
        ).all()
        assert len(set(identifiers)) == 6
        assert session.get(LicenceBatch, batch_id).status == "completed"  # type: ignore[union-attr]


def _stalled(runtime: Runtime) -> list[str]:
    with runtime.session_scope() as session:
        return batches.stalled(session)


def test_batch_limits_and_ownership(kit: LicenceKit, runtime: Runtime) -> None:
    headers = {**kit.issuer.headers, "Content-Type": "application/x-ndjson"}
    response = kit.client.post("/v1/licences/batches", content=b"\n\n", headers=headers)
    assert response.status_code == 422 and response.json()["code"] == "licence_batch_empty"
    runtime.settings.batch_max_rows = 2
    response = kit.client.post("/v1/licences/batches", content=b"{}\n{}\n{}\n", headers=headers)
    assert response.status_code == 413 and response.json()["code"] == "licence_batch_too_large"
    with runtime.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(LicenceBatch)) == 0  # nothing half-written
    assert kit.client.get("/v1/licences/batches/" + "0" * 32, headers=kit.issuer.headers).status_code == 404


def test_cli_import_with_progress(kit: LicenceKit, runtime: Runtime, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hub.cli import app
    from hub.runtime import set_runtime

    body, bad = _jsonl(kit, 5)
    path = tmp_path / "licences.jsonl"
    path.write_bytes(body)
    set_runtime(runtime)
    try:
        result = CliRunner().invoke(app, ["licences", "import", str(path), "--department", kit.issuer.code, "--json"])
    finally:
        set_runtime(None)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["issued"] == 5 and report["failed"] == len(bad) and report["status"] == "completed"
