"""No secret, key, password or full ID number in logs, error bodies, audit exports or metrics (issue 9).

``licence-hub demo`` runs as a process at log level DEBUG, and a session exercises what handles secrets and
personal data: token requests (good and bad client secrets), holder sign-ins, exchanges naming citizens,
refusals that echo input back (a wrong ID number, a forged token), the portal and console forms. Then
everything an operator or auditor gets to see is scanned for what must never be in it: the master key,
client secrets, access and ID tokens, private keys, and the citizens' 18-digit ID numbers.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import MASTER_KEY, free_port, stop_process
from test_distributed import wait_ready

pytestmark = pytest.mark.slow

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any], Path, dict[str, str]]]:
    work = tmp_path_factory.mktemp("secrets-scan")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {
        "HUB_ENV": "demo", "HUB_DATA_DIR": str(work / "var"), "HUB_MASTER_KEY": MASTER_KEY, "HUB_PUBLIC_URL": base,
        "HUB_LOG_LEVEL": "DEBUG",
    }  # fmt: skip
    credentials, log = work / "credentials.json", work / "hub.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "demo", "--port", str(port), "--credentials", str(credentials)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_ready(base, process, log)
        yield base, json.loads(credentials.read_text()), log, env
    finally:
        stop_process(process)


def _exercise(base: str, credentials: dict[str, Any], seen: list[str]) -> list[str]:
    """A session of ordinary and hostile calls; every error body is kept in ``seen``; the tokens it got."""
    tokens: list[str] = []
    departments = credentials["departments"]
    citizens = [h for h in credentials["holders"] if h["type"] == "111"]
    with httpx.Client(base_url=base, timeout=30) as http:

        def keep(answer: httpx.Response) -> httpx.Response:
            if answer.status_code >= 400:
                seen.append(f"{answer.request.method} {answer.status_code}: {answer.text}")  # the body alone is scanned
            return answer

        for dept in departments:
            good = keep(http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                  auth=(dept["client_id"], dept["client_secret"])))  # fmt: skip
            tokens.append(good.json()["access_token"])
            keep(http.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(dept["client_id"], dept["client_secret"][::-1])))  # fmt: skip
        for citizen in citizens:
            holder = {"holder_type": "111", "holder_code": citizen["code"], "name": citizen["name"]}
            id_token = keep(http.post("/dev/idp/token", json=holder)).json()["id_token"]
            tokens.append(id_token)
            me = {"Authorization": f"Bearer {id_token}"}
            keep(http.get("/v1/me/licences", headers=me))
            keep(http.get("/v1/me/access-log", headers=me))
            wrong = citizen["code"][:-1] + ("0" if citizen["code"][-1] != "0" else "1")
            keep(http.post("/dev/idp/token", json={"holder_type": "111", "holder_code": wrong, "name": "x"}))
            keep(http.get("/v1/me/licences", headers={"Authorization": f"Bearer {id_token[:-4]}AAAA"}))
        department_headers = {"Authorization": f"Bearer {tokens[0]}"}
        for scenario in credentials["scenarios"]:
            consumer = next(d for d in departments if d["code"] == scenario["department_code"])
            token = tokens[departments.index(consumer)]
            headers = {"Authorization": f"Bearer {token}"}
            keep(http.post("/v1/exchange/materials-check", headers=headers,
                           json={"matter_code": scenario["matter_code"], "holder": scenario["holder"]}))  # fmt: skip
            keep(http.post("/v1/exchange/fetch", headers=headers, json={
                "matter_code": scenario["matter_code"], "case_number": "SCAN-1", "officer_id": "scan-officer",
                "holder": scenario["holder"], "certificate_type_code": "0" * 21}))  # fmt: skip
        keep(http.post("/v1/exchange/fetch", headers=department_headers, content=b'{"holder": {"code": '))
        for citizen in citizens:
            keep(http.get("/v1/audit/entries", headers=department_headers,
                          params={"holder_type": "111", "holder_code": citizen["code"]}))  # fmt: skip
        keep(http.get(f"/v1/licences/{citizens[0]['code']}", headers=department_headers))
        keep(http.post("/me/sign-in", data={"holder_type": "111", "holder_code": citizens[0]["code"], "name": "x"}))
    return tokens


def test_no_secret_or_id_number_reaches_logs_error_bodies_exports_or_metrics(
    demo: tuple[str, dict[str, Any], Path, dict[str, str]], tmp_path: Path
) -> None:
    base, credentials, log, env = demo
    errors: list[str] = []
    tokens = _exercise(base, credentials, errors)
    metrics = httpx.get(f"{base}/metrics", timeout=30).text
    subprocess.run([sys.executable, "-m", "hub.cli", "audit", "checkpoint", "--json"], env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    export = tmp_path / "audit.jsonl"
    subprocess.run([sys.executable, "-m", "hub.cli", "audit", "export", "--out", str(export)], env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip

    secrets = {"master key": MASTER_KEY, "master key bytes": base64.b64decode(MASTER_KEY).hex()}
    for dept in credentials["departments"]:
        secrets[f"client secret of {dept['name']}"] = dept["client_secret"]
    for n, token in enumerate(tokens):
        secrets[f"token {n}"] = token
        secrets[f"token {n} signature"] = token.rsplit(".", 1)[1]
    id_numbers = {h["code"]: h["name"] for h in credentials["holders"] if h["type"] == "111"}
    # The log records (JSON lines); the demo's own banner on the terminal prints its demo credentials on purpose.
    records = "\n".join(line for line in log.read_text().splitlines() if line.startswith("{"))
    places = {"the hub's log": records, "error bodies": "\n".join(errors), "the audit export":
              export.read_text(), "metrics": metrics}  # fmt: skip
    found = []
    for where, text in places.items():
        found += [f"{what} in {where}" for what, secret in secrets.items() if secret in text]
        found += [
            f"ID number of {name} in {where}: {line[:300]}"
            for code, name in id_numbers.items() for line in text.splitlines() if code in line
        ]  # fmt: skip
        found += [f"a JWT in {where}" for _ in JWT.findall(text)[:1]]
        found += [f"a private key in {where}" for _ in PRIVATE_KEY.findall(text)[:1]]
    assert found == [], found
    assert len(errors) > 10 and export.stat().st_size > 0 and log.stat().st_size > 0  # the scan had material
    assert records.count('"hub.access"') > 30  # one record a request
