"""Operations surface: health, readiness, metrics, request ids, OpenAPI, and errors as problem+json."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.runtime import Runtime
from hub.storage import open_blob_store


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}


def test_readyz_reports_each_backing_service(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "storage": "ok", "broker": "ok"}


def test_readyz_is_503_when_a_service_is_down(make_settings: Any, make_runtime: Any) -> None:
    runtime: Runtime = make_runtime(make_settings(broker_url="redis://127.0.0.1:1/0"))
    runtime.storage = open_blob_store("s3://k:s@127.0.0.1:1/none?secure=false")
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["storage"].startswith("unavailable")
    assert checks["broker"].startswith("unavailable")
    assert "k:s" not in response.text


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "case-42"}).headers["x-request-id"] == "case-42"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"}).headers["x-request-id"]
    assert len(made) == 16


def test_metrics_count_requests_by_route(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert 'hub_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "hub_http_request_duration_seconds_bucket" in text


def test_metrics_behind_a_scrape_token_when_one_is_set(make_settings: Any, make_runtime: Any) -> None:
    runtime = make_runtime(make_settings(metrics_token="scrape-me-0123456789"))
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer scrape-me-012345678"}):
            refused = client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["code"] == "unauthenticated"
            assert "scrape-me" not in refused.text
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
        assert scraped.status_code == 200
        assert "hub_http_requests_total" in scraped.text


def test_openapi_is_3_1_and_declares_bearer_security(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/oauth/token" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_unknown_path_is_problem_json(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_wrong_method_is_problem_json(client: TestClient) -> None:
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_validation_errors_do_not_echo_input(client: TestClient) -> None:
    secret_looking = "330102198503121236-and-a-password"
    response = client.post("/dev/idp/token", json={"holder_type": secret_looking, "holder_code": "x", "name": "y"})
    assert response.status_code == 422
    assert response.json()["code"] == "request_invalid"
    assert secret_looking not in response.text


def test_malformed_json_is_a_422_problem(client: TestClient) -> None:
    response = client.post("/dev/idp/token", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
