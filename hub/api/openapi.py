"""The one place that completes FastAPI's OpenAPI document: problem+json errors and links between operations.

FastAPI documents only a handler's success response and a 422 in its own validation-error shape. The hub
answers every refusal as RFC 9457 problem+json (hub/api/problems.py), so this step documents those refusals
on every operation by rule, with one ``Problem`` schema, and replaces FastAPI's 422. A route documents any
other status it answers (409, 413, …) in its own ``responses=``; a refusal documented there without a body
gets the ``Problem`` body here. It also adds OpenAPI links (3.1 §4.8.20): which response value feeds which
next call, for clients and for stateful testing (tests/hub/test_openapi_fuzz.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from hub.api.problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
# A route's ``openapi_extra`` for an optional bearer token: FastAPI appends it to the route's requirement, and
# the empty requirement says an anonymous call is allowed too (OpenAPI 3.1 §4.8.30).
OPTIONAL_BEARER: dict[str, Any] = {"security": [{}]}
METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details. `code` is stable and machine-readable; `type` ends with it. "
    "Extension members: `errors` (where a request broke the schema), `receipt` (the audit receipt of an audited "
    "refusal), `error`/`error_description` (RFC 6749 §5.2, token endpoint) and others named by the refusal.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "receipt": {"$ref": "#/components/schemas/ReceiptOut"},
        "errors": {
            "description": "Each way the request broke a rule: where it broke this schema (`loc`, `msg`, `type`), "
            "or which field of a licence face or face schema broke which rule (`field`, `label`, `rule`, `message`)",
            "type": "array",
            "items": {
                "anyOf": [{"$ref": "#/components/schemas/SchemaError"}, {"$ref": "#/components/schemas/FieldError"}]
            },
        },
    },
}

SCHEMA_ERROR: dict[str, Any] = {
    "title": "SchemaError",
    "type": "object",
    "required": ["loc", "msg", "type"],
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "type": {"type": "string"},
    },
}
FIELD_ERROR: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "required": ["field", "rule", "message"],
    "properties": {
        "field": {"type": "string"},
        "label": {"type": "string"},
        "rule": {"type": "string"},
        "message": {"type": "string"},
    },
}

DESCRIPTIONS = {
    400: "Malformed request (problem+json)",
    401: "No usable credentials (problem+json, with WWW-Authenticate)",
    403: "The credentials do not allow this call (problem+json)",
    404: "No such resource, or not visible to the caller (problem+json)",
    409: "Conflicts with the current state of the resource (problem+json)",
    410: "Gone (problem+json)",
    413: "The request body is too large (problem+json)",
    415: "Unsupported request media type (problem+json)",
    422: "The request is not valid: `request_invalid` when it breaks this schema, else the rule's code (problem+json)",
    429: "Too many requests; retry after Retry-After (problem+json)",
    503: "A backing service is unavailable; retry after Retry-After (problem+json)",
}


def _problem(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or DESCRIPTIONS.get(status, "Refused (problem+json)"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def _refusals(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The refusals every operation of this shape can answer, whatever its handler does."""
    statuses = {503}  # the database (or another backing service) is down: every operation reads it
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)
    if operation.get("requestBody"):
        statuses |= {400, 404}  # a body that cannot be read at all (request_malformed); one naming a missing thing
        statuses.add(413)  # a body over the path's limit (hub.api.body_limit: payload_too_large)
    if operation.get("security"):
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    if method != "get":
        statuses.add(409)  # a change the resource's current state does not allow (suspend a revoked licence, ...)
    return statuses


# Links: (the response that creates or lists a resource, its path parameter, the RFC 6901 pointer to its value
# in that response body, the operations that take it). OpenAPI 3.1 §4.8.20; each becomes one link per target.
_LICENCE = "/v1/licences/{certificate_identifier}"
_SEAL = "/v1/seals/{seal_id}"
_RESOURCE = "/v1/catalog/resources/{code}"
_MATTER = "/v1/catalog/matters/{code}"
_ACCESS = "/v1/catalog/access-requests/{request_id}"
_GRANT = "/v1/catalog/grants/{grant_id}"
_OBJECTION = "/v1/catalog/objections/{objection_id}"
_MY_OBJECTION = "/v1/me/objections/{objection_id}"
_MY_LICENCE = "/v1/me/licences/{certificate_identifier}"


def _posts(path: str, *actions: str) -> tuple[str, ...]:
    return tuple(f"POST {path}/{action}" for action in actions)


_LICENCE_READS = (f"GET {_LICENCE}", f"GET {_LICENCE}/file")
_LICENCE_OPS = (*_LICENCE_READS, *_posts(_LICENCE, "suspend", "reinstate", "revoke", "renew", "amend"))
_SEAL_READS = (f"GET {_SEAL}", f"GET {_SEAL}/image", f"GET {_SEAL}/certificate")
_SEAL_OPS = (*_SEAL_READS, *_posts(_SEAL, "suspend", "reinstate", "revoke", "rotate"))
_RESOURCE_OPS = (f"GET {_RESOURCE}", f"PATCH {_RESOURCE}", f"GET {_RESOURCE}/versions", f"POST {_RESOURCE}/withdraw",
                 "GET /v1/catalog/dcat/datasets/{code}")  # fmt: skip
_MATTER_OPS = (f"GET {_MATTER}", f"PUT {_MATTER}")
_ACCESS_OPS = (f"GET {_ACCESS}", *_posts(_ACCESS, "approve", "reject", "withdraw"))
_GRANT_OPS = (f"GET {_GRANT}", *_posts(_GRANT, "suspend", "reinstate", "revoke", "renew"))
_OBJECTION_OPS = (f"GET {_OBJECTION}", *_posts(_OBJECTION, "accept", "reject", "flag", "verify", "correct",
                                               "uphold", "close"))  # fmt: skip
_MY_OBJECTION_OPS = (f"GET {_MY_OBJECTION}", f"POST {_MY_OBJECTION}/close")

LINKS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("POST /v1/licences 201", "certificate_identifier", "/certificate_identifier", _LICENCE_OPS),
    (f"POST {_LICENCE}/renew 201", "certificate_identifier", "/certificate_identifier", _LICENCE_READS),
    (f"POST {_LICENCE}/amend 201", "certificate_identifier", "/certificate_identifier", _LICENCE_READS),
    ("POST /v1/licences/batches 202", "batch_id", "/batch_id",
     ("GET /v1/licences/batches/{batch_id}", "GET /v1/licences/batches/{batch_id}/errors")),
    ("POST /v1/licence-types 201", "type_code", "/certificate_type_code", ("GET /v1/licence-types/{type_code}",)),
    ("GET /v1/licence-types 200", "type_code", "/0/certificate_type_code", ("GET /v1/licence-types/{type_code}",)),
    ("POST /v1/seals 201", "seal_id", "/id", _SEAL_OPS),
    ("GET /v1/seals 200", "seal_id", "/0/id", _SEAL_OPS),
    (f"POST {_SEAL}/rotate 201", "seal_id", "/id", _SEAL_READS),
    ("GET /v1/me/licences 200", "certificate_identifier", "/0/certificate_identifier",
     (f"GET {_MY_LICENCE}", f"POST {_MY_LICENCE}/presentations")),
    (f"POST {_MY_LICENCE}/presentations 201", "token", "/token", ("GET /v/{token}",)),
    ("POST /v1/me/consents 201", "consent_id", "/id", ("DELETE /v1/me/consents/{consent_id}",)),
    ("GET /v1/me/consents 200", "consent_id", "/0/id", ("DELETE /v1/me/consents/{consent_id}",)),
    ("POST /v1/webhooks 201", "endpoint_id", "/id", ("DELETE /v1/webhooks/{endpoint_id}",)),
    ("POST /v1/admin/clients 201", "client_id", "/client_id", ("POST /v1/admin/clients/{client_id}/disable",)),
    ("POST /v1/catalog/resources 201", "code", "/code", _RESOURCE_OPS),
    ("GET /v1/catalog/resources 200", "code", "/items/0/code", _RESOURCE_OPS),
    ("POST /v1/catalog/matters 201", "code", "/code", _MATTER_OPS),
    ("GET /v1/catalog/matters 200", "code", "/0/code", _MATTER_OPS),
    ("POST /v1/catalog/access-requests 201", "request_id", "/id", _ACCESS_OPS),
    ("GET /v1/catalog/access-requests 200", "request_id", "/0/id", _ACCESS_OPS),
    ("GET /v1/catalog/grants 200", "grant_id", "/0/id", _GRANT_OPS),
    ("POST /v1/catalog/objections 201", "objection_id", "/id", _OBJECTION_OPS),
    ("GET /v1/catalog/objections 200", "objection_id", "/0/id", _OBJECTION_OPS),
    ("POST /v1/me/objections 201", "objection_id", "/id", _MY_OBJECTION_OPS),
    ("GET /v1/me/objections 200", "objection_id", "/0/id", _MY_OBJECTION_OPS),
)  # fmt: skip


def _operation(schema: dict[str, Any], label: str) -> dict[str, Any]:
    method, path = label.split(" ", 1)
    try:
        operation: dict[str, Any] = schema["paths"][path][method.lower()]
    except KeyError:
        raise LookupError(f"an OpenAPI link names {label}, which the API does not have") from None
    return operation


def _add_links(schema: dict[str, Any]) -> None:
    for source, parameter, pointer, targets in LINKS:
        label, status = source.rsplit(" ", 1)
        links = _operation(schema, label)["responses"][status].setdefault("links", {})
        for target in targets:
            operation_id = _operation(schema, target)["operationId"]
            links[operation_id] = {"operationId": operation_id, "parameters": {parameter: f"$response.body#{pointer}"}}


def _is_fastapi_validation_error(response: dict[str, Any] | None) -> bool:
    schema = (response or {}).get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Complete FastAPI's document in place: the ``Problem`` schema, refusals per operation, links."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(Problem=PROBLEM_SCHEMA, SchemaError=SCHEMA_ERROR, FieldError=FIELD_ERROR)
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if _is_fastapi_validation_error(responses.get("422")):
                del responses["422"]  # the hub answers it as problem+json (request_invalid) instead
            for refusal in _refusals(path, method, operation):
                responses.setdefault(str(refusal), _problem(refusal))
            for status, response in responses.items():
                if status[0] in "45" and not response.get("content"):
                    response.update(_problem(int(status), response.get("description")))
            operation["responses"] = dict(sorted(responses.items()))
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    _add_links(schema)
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
