"""The demo's exchange scenarios work end to end: token, materials check (免证办), fetch, the stamped copy."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.demo import seed_demo
from hub.runtime import Runtime


def test_every_demo_scenario_checks_fetches_and_downloads(client: TestClient, runtime: Runtime) -> None:
    runtime.settings.data_dir.mkdir(parents=True, exist_ok=True)
    credentials, created = seed_demo(runtime)
    assert created
    departments = {d["code"]: d for d in credentials["departments"]}
    assert credentials["scenarios"]
    for scenario in credentials["scenarios"]:
        consumer = departments[scenario["department_code"]]
        token = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"},
            auth=(consumer["client_id"], consumer["client_secret"]),
        )  # fmt: skip
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        checked = client.post(
            "/v1/exchange/materials-check",
            json={"matter_code": scenario["matter_code"], "holder": scenario["holder"]}, headers=headers,
        )  # fmt: skip
        assert checked.status_code == 200, checked.text
        required = [m for m in checked.json()["materials"] if m["required"]]
        assert required and all(m["reason"] == "satisfied" for m in required), checked.text
        for material in required:
            fetched = client.post(
                "/v1/exchange/fetch",
                json={"matter_code": scenario["matter_code"], "case_number": "DEMO-0001", "officer_id": "demo-officer",
                      "holder": scenario["holder"],
                      "certificate_identifier": material["satisfied_by"]["certificate_identifier"]},
                headers=headers,
            )  # fmt: skip
            assert fetched.status_code == 200, fetched.text
            body = fetched.json()
            assert body["licence"]["face"]
            copy = client.get(body["file_url"].removeprefix("http://testserver"), headers=headers)
            assert copy.status_code == 200, copy.text
            assert copy.content.startswith(b"%PDF-")
