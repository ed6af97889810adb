"""Schemathesis against /openapi.json: no operation answers 500 or breaks its own schema."""

from __future__ import annotations

import base64
from typing import Any

import schemathesis
from factories import secret_client
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from hub.api.app import create_app
from hub.identity.scopes import SCOPES
from hub.runtime import Runtime


@schemathesis.serializer("application/x-ndjson")
def _json_lines(_ctx: Any, value: Any) -> bytes:
    """Batch uploads (POST /v1/licences/batches): whatever was generated, as text lines."""
    return (value if isinstance(value, str) else str(value)).encode()


def test_operations_never_fail_on_the_server(runtime: Runtime) -> None:
    """Every operation, with a token holding every scope, so the fuzzer gets past authentication."""
    app = create_app(runtime)
    api_client, secret = secret_client(runtime, " ".join(SCOPES))
    auth = base64.b64encode(f"{api_client.client_id}:{secret}".encode()).decode()
    # No `with`: the app's lifespan (whose shutdown closes the audit committer) must not end here.
    token = (
        TestClient(app)
        .post("/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {auth}"})
        .json()["access_token"]
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
            if response.status_code >= 400:
                assert response.headers["content-type"][0].startswith("application/problem+json")
            case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])

        check()
