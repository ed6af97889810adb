"""The embedded default: a batch upload answers 202 at once and the in-process job pool issues it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MASTER_KEY
from factories import random_uscc
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import initialise
from hub.identity import service as identity
from hub.runtime import Runtime, build_runtime, set_runtime
from hub.settings import Settings
from licences.demo_types import DEMO_TYPES
from licences.types import ensure_demo_types
from seals import lifecycle as seal_lifecycle
from seals.lifecycle import SealOwner


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Runtime]:
    """A real embedded hub (SQLite file, local blobs, memory:// broker, thread-pool jobs): no test connection."""
    settings = Settings(
        env="test", data_dir=tmp_path / "var", master_key=MASTER_KEY, public_url="http://testserver", log_json=False
    )
    runtime = build_runtime(settings)
    initialise(runtime)
    try:
        yield runtime
    finally:
        set_runtime(None)
        runtime.close()


def test_batch_upload_is_issued_in_the_background(embedded: Runtime) -> None:
    business = next(t for t in DEMO_TYPES if t.name == "营业执照")
    with embedded.session_scope() as session:
        dept = identity.create_department(
            session, code=random_uscc(), name="临江市市场监督管理局", level="municipal", area_code="330100"
        )
        owner = SealOwner(code=dept.code, name=dept.name, area_code="330100")
        seal_lifecycle.create_seal(session, embedded.seal_context, owner=owner, name="电子证照专用章", kind="licence")
        ensure_demo_types(session, [dept.code], only=(business.type_code,))
        api_client, secret = identity.create_client(session, department_code=dept.code, scopes="licence:issue")
    lines = []
    for n in range(30):
        code = random_uscc("9", "1")
        name = f"临江市嵌入第{n}科技有限公司"
        row = {
            "certificate_type_code": business.type_code, "certificate_holder_type": "001",
            "certificate_holder_code": code, "certificate_holder_name": name,
            "face": business.sample_face(name, code, n),
        }  # fmt: skip
        lines.append(json.dumps(row, ensure_ascii=False))
    lines.insert(5, "not json")
    with TestClient(create_app(embedded), raise_server_exceptions=False) as client:
        token = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(api_client.client_id, secret or "")
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        started = time.monotonic()
        response = client.post("/v1/licences/batches", content="\n".join(lines).encode(), headers=headers)
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["pending"] > 0  # answered before the rows were issued
        deadline = started + 120
        while True:
            status = client.get(f"/v1/licences/batches/{accepted['batch_id']}", headers=headers).json()
            if status["status"] == "completed":
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
    assert (status["issued"], status["failed"], status["pending"]) == (30, 1, 0)
    assert status["errors"] == [{"line": 6, "code": "batch_row_malformed", "detail": status["errors"][0]["detail"]}]
