"""The same code in distributed mode: PostgreSQL + S3 endpoint + Redis broker, two API processes."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import MASTER_KEY, create_pg_database, drop_pg_database, free_port, stop_process
from factories import random_uscc

pytestmark = pytest.mark.slow


@pytest.fixture
def distributed_env(postgres_server: str, s3_endpoint: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    name, url = create_pg_database(postgres_server)
    port = free_port()
    env = {
        **os.environ,
        "HUB_ENV": "production",
        "HUB_DATA_DIR": str(tmp_path / "var"),
        "HUB_DATABASE_URL": url,
        "HUB_STORAGE_URL": f"s3://testing:testing@{s3_endpoint}/licence-hub-{secrets.token_hex(3)}?secure=false",
        "HUB_BROKER_URL": "redis://127.0.0.1:6379/14",
        "HUB_MASTER_KEY": MASTER_KEY,
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HUB_OIDC_ISSUER": "https://idp.gov.example",
        "HUB_LOG_LEVEL": "INFO",
        "PORT": str(port),
    }
    try:
        yield env
    finally:
        drop_pg_database(postgres_server, name)


def cli(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the API exited early:\n{log.read_text()[-3000:]}")
        try:
            response = httpx.get(f"{base}/readyz", timeout=2)
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the API never became ready:\n{log.read_text()[-3000:]}")


def test_two_api_processes_share_state_through_postgres_s3_and_redis(
    distributed_env: dict[str, str], tmp_path: Path
) -> None:
    env = distributed_env
    report = cli(env, "init", "--json")
    assert report["database"].startswith("postgresql+psycopg://")
    assert report["storage"].startswith("127.0.0.1:")  # credentials are never printed
    assert "master_key_file" not in report  # the key comes from HUB_MASTER_KEY
    code = random_uscc()
    cli(env, "admin", "create-department", "--code", code, "--name", "临江市市场监督管理局", "--json")
    created = cli(env, "admin", "create-client", "--department", code, "--scopes", "licence:read", "--json")

    base = env["HUB_PUBLIC_URL"]
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--port", env["PORT"], "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = wait_ready(base, api, log)
        assert ready["checks"] == {"database": "ok", "storage": "ok", "broker": "ok"}
        assert httpx.post(f"{base}/dev/idp/token", json={}).status_code == 404  # production: no dev IdP
        # Tokens from either process verify in either process: keys live in PostgreSQL, not in memory.
        auth = (created["client_id"], created["client_secret"])
        for _ in range(12):
            with httpx.Client() as http:  # a new connection each time, so both workers are used
                token = http.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)
                assert token.status_code == 200, token.text
            with httpx.Client() as http:
                who = http.get(f"{base}/v1/whoami", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
                assert who.status_code == 200, who.text
                assert who.json()["department_code"] == code
        logs = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        access = [entry for entry in logs if entry.get("logger") == "hub.access"]
        assert len(access) >= 24
        assert all(entry["request_id"] and entry["route"] for entry in access)
        assert not any(created["client_secret"] in line for line in log.read_text().splitlines())
    finally:
        stop_process(api)
