"""Schemathesis against /openapi.json: every operation, stateless and stateful, on a seeded hub.

What a run shows, on each database backend: no operation answers 5xx; every answer has a documented status, a
documented media type, and a body and headers that match the documented schema; invalid input is refused;
every 4xx is application/problem+json whose ``code`` is one of the hub's declared codes; a 405 lists the
methods the path serves; along the OpenAPI links (hub/api/openapi.py) what was created can be read back and
what was deleted stays gone.

The hub is the demo city (hub/demo.py). The fuzzer calls as its market regulator (issues licences, owns seals,
provides catalogue resources) through a client holding every scope, and under ``/v1/me`` as a demo holder.
Each operation gets schemathesis' coverage cases (boundary and missing values, wrong types, undeclared
methods), then Hypothesis-generated valid and invalid cases; some valid ones use the ids the seeded hub
lists and bodies it accepts, so calls reach real licences, seals, grants and objections rather than 404.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from factories import random_uscc
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)
from schemathesis.generation.drivers import CoverageGenerator  # the coverage phase `schemathesis run` runs
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.generation.stateful.state_machine import APIStateMachine
from starlette.routing import Match

from hub.api import problems
from hub.api.app import create_app
from hub.demo import seed_demo
from hub.errors import DomainError
from hub.exchange.fetch import LicenceNotValid, PurposeMissing
from hub.identity.scopes import SCOPES
from hub.runtime import Runtime
from hub.webhooks import delivery
from licences.demo_types import DEMO_TYPES
from tests.licences.licencekit import department_client

MIN_CASES = 2_000  # issue 9: at least 2,000 generated cases in a run (the stateful scenarios come on top)
POSITIVE_EXAMPLES = 10  # Hypothesis cases per operation and mode (fewer when an operation's inputs run out)
NEGATIVE_EXAMPLES = 5
STATEFUL_EXAMPLES = 50  # scenarios, each up to STATEFUL_STEPS calls
STATEFUL_STEPS = 12
# CI draws the same cases every run, so a red build is a finding anyone can reproduce and not the luck of one
# draw; HUB_FUZZ_EXPLORE=1 draws new ones each run (do that a few times before landing a change to the API).
DERANDOMIZE = os.environ.get("HUB_FUZZ_EXPLORE") != "1"
MIN_TRANSITIONS = 80  # links hub/api/openapi.py declares
MARKET = "临江市市场监督管理局"  # the demo department the fuzzer calls as
HOLDER = "李娜"  # a demo holder with licences and a consent
PROBLEM_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

RESPONSE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]
COVERAGE_CHECKS = [missing_required_header, unsupported_method, allow_header_conformance]  # coverage cases only
STATEFUL_CHECKS = [use_after_free, ensure_resource_availability]  # scenarios only


@schemathesis.serializer("application/x-ndjson")
def _json_lines(_ctx: Any, value: Any) -> bytes:
    """Batch uploads (POST /v1/licences/batches): whatever was generated, as text lines."""
    return (value if isinstance(value, str) else json.dumps(value)).encode()


def declared_codes() -> set[str]:
    """Every ``code`` a problem may carry: each DomainError subclass's, and the HTTP layer's own."""
    codes: set[str] = set()
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    # Two refusals set their code per instance, each from a closed set (hub/exchange/fetch.py).
    codes |= {PurposeMissing(name).code for name in ("matter_code", "case_number", "officer_id")}
    codes |= {LicenceNotValid(status, "").code for status in ("suspended", "revoked", "expired", "superseded")}
    return codes | set(problems.HTTP_CODES.values())


def problem_details(codes: set[str]) -> Callable[..., bool | None]:
    """A check: every 4xx/5xx is RFC 9457 problem+json with a declared ``code`` that agrees with status and type."""

    def problem_details(_ctx: Any, response: Any, case: Any) -> bool | None:
        if response.status_code < 400:
            return None
        label = f"{case.method} {case.formatted_path} -> {response.status_code}"
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.split(";")[0].strip() == problems.PROBLEM_JSON, f"{label}: {content_type}"
        body = response.json()
        code = body.get("code")
        assert isinstance(code, str), f"{label}: no code in {body}"
        assert PROBLEM_CODE.match(code), f"{label}: code {code!r}"
        assert code in codes, f"{label}: {code!r} is not a declared problem code"
        assert body.get("status") == response.status_code, f"{label}: status {body.get('status')!r}"
        assert body.get("type", "").endswith(f"/problems/{code}"), f"{label}: type {body.get('type')!r}"
        return None

    return problem_details


@dataclass
class Caller:
    """Who the fuzzer calls as: the department (access token) or, where the holder scheme applies, the holder."""

    department: str
    holder: str

    @staticmethod
    def as_holder(operation: Any) -> bool:
        """Whether the operation takes the holder's ID token (hub/api/deps.py) rather than an access token."""
        return any("HolderIdToken" in requirement for requirement in operation.definition.raw.get("security", []))

    def authorization(self, operation: Any) -> str:
        return f"Bearer {self.holder if self.as_holder(operation) else self.department}"

    def install(self, schema: Any) -> None:
        """Schemathesis' own auth hook, so that a case that leaves out the credentials on purpose goes without."""
        caller = self

        @schema.auth(refresh_interval=None)
        class HubAuth:
            def get(self, _case: Any, context: Any) -> str:
                return caller.authorization(context.operation)

            def set(self, case: Any, data: str, _context: Any) -> None:
                case.headers = case.headers or {}
                case.headers["Authorization"] = data


@dataclass
class Tally:
    """Calls made, by operation and by status."""

    by_operation: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    def add(self, label: str, status: int) -> None:
        self.by_operation[label] += 1
        self.by_status[status] += 1

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())


@dataclass
class Hub:
    app: FastAPI
    client: TestClient
    caller: Caller
    paths: dict[str, dict[str, list[str]]]  # "department" / "holder" -> path parameter -> ids that exist
    bodies: dict[str, list[dict[str, Any]]]  # operation -> request bodies the seeded hub accepts


def _seed(runtime: Runtime) -> Hub:
    app = create_app(runtime)
    # No `with`: the app's lifespan (whose shutdown closes the audit committer) must not end here.
    client = TestClient(app, raise_server_exceptions=False)
    runtime.settings.data_dir.mkdir(parents=True, exist_ok=True)  # seed_demo writes its credentials there
    credentials, _ = seed_demo(runtime)
    market = next(d for d in credentials["departments"] if d["name"] == MARKET)
    department = department_client(client, runtime, market["code"], " ".join(sorted(SCOPES)))
    holder = next(h for h in credentials["holders"] if h["name"] == HOLDER)
    id_token = client.post(
        "/dev/idp/token", json={"holder_type": holder["type"], "holder_code": holder["code"], "name": HOLDER}
    ).json()["id_token"]
    caller = Caller(department.headers["Authorization"].removeprefix("Bearer "), id_token)
    seeder = Seeder(client, caller, credentials, market["code"])
    return Hub(app, client, caller, seeder.paths(), seeder.bodies())


@dataclass
class Seeder:
    """What the seeded hub holds, found through the API itself, plus a few things created for the fuzzer."""

    client: TestClient
    caller: Caller
    credentials: dict[str, Any]
    market: str

    def call(self, method: str, path: str, *, holder: bool = False, expect: int = 200, **kwargs: Any) -> Any:
        token = self.caller.holder if holder else self.caller.department
        response = self.client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json()

    def listed(self, path: str, key: str, *, holder: bool = False, items: str | None = None) -> list[str]:
        rows = self.call("GET", path, holder=holder)
        return [str(row[key]) for row in (rows[items] if items else rows)][:3]

    def licence_request(self, type_code: str, serial: int) -> dict[str, Any]:
        """A valid POST /v1/licences body for a new company (the market department issues both kinds)."""
        demo = next(t for t in DEMO_TYPES if t.type_code == type_code)
        code, name = random_uscc("9", "1"), f"临江市模糊测试第{serial}贸易有限公司"
        return {
            "certificate_type_code": type_code, "certificate_holder_type": "001", "certificate_holder_code": code,
            "certificate_holder_name": name, "face": demo.sample_face(name, code, serial),
        }  # fmt: skip

    def paths(self) -> dict[str, dict[str, list[str]]]:
        scenario = self.credentials["scenarios"][0]
        own = self.listed("/v1/me/licences", "certificate_identifier", holder=True)
        issued = [lic["certificate_identifier"] for lic in self.credentials["licences"] if lic["type"] in ISSUED]
        matter = self.call(
            "POST", "/v1/catalog/matters", expect=201,
            json={"code": f"{self.market}-FUZZ-001", "name": "食品经营许可", "materials": [
                {"code": "M01", "name": "营业执照", "licence_type_codes": [DEMO_TYPES[0].type_code]}]},
        )["code"]  # fmt: skip
        batch = self.client.post(
            "/v1/licences/batches",
            content=(json.dumps(self.licence_request(DEMO_TYPES[0].type_code, 1)) + "\n{}\n").encode(),
            headers={"Authorization": f"Bearer {self.caller.department}", "Content-Type": "application/x-ndjson"},
        )
        assert batch.status_code == 202, batch.text
        endpoint = self.call("POST", "/v1/webhooks", expect=201, json={"url": "https://hooks.example.invalid/hub"})
        claim = {"claimed_value": "临江市滨江区江南大道100号", "reason": "住所已变更，登记信息未更新"}
        mine = self.call("POST", "/v1/me/objections", holder=True, expect=201,
                         json={**claim, "certificate_identifier": own[0]})  # fmt: skip
        raised = self.call("POST", "/v1/catalog/objections", expect=201,
                           json={**claim, "certificate_identifier": own[0]})  # fmt: skip
        presented = self.call("POST", f"/v1/me/licences/{own[0]}/presentations", holder=True, expect=201, json={})
        shared = {"version": ["1"], "list_id": ["0"], "token": [presented["token"]]}
        return {
            "department": {
                **shared,
                "certificate_identifier": issued,
                "seal_id": self.listed("/v1/seals", "id"),
                "type_code": self.listed("/v1/licence-types", "certificate_type_code"),
                "code": [
                    *self.listed("/v1/catalog/resources", "code", items="items")[:2],
                    matter,
                    scenario["matter_code"],
                    self.market,
                ],
                "request_id": self.listed("/v1/catalog/access-requests", "id"),
                "grant_id": self.listed("/v1/catalog/grants", "id"),
                "batch_id": [batch.json()["batch_id"]],
                "endpoint_id": [endpoint["id"]],
                "objection_id": [raised["id"]],
            },
            "holder": {
                **shared,
                "certificate_identifier": own,
                "consent_id": self.listed("/v1/me/consents", "id", holder=True),
                "objection_id": [mine["id"]],
            },
        }

    def bodies(self) -> dict[str, list[dict[str, Any]]]:
        business, food = DEMO_TYPES[0].type_code, DEMO_TYPES[1].type_code
        scenario = self.credentials["scenarios"][0]
        resources = self.call("GET", "/v1/catalog/resources")["items"]
        # Another provider's resource that no path above names, so no fuzzed call withdraws it first.
        foreign = next(r for r in reversed(resources) if r["provider_code"] != self.market)
        items = [i["key"] for i in self.call("GET", f"/v1/catalog/resources/{foreign['code']}")["items"]][:2]
        issued = [lic["certificate_identifier"] for lic in self.credentials["licences"] if lic["type"] in ISSUED]
        return {
            "POST /v1/licences": [self.licence_request(business, 2), self.licence_request(food, 3)],
            "POST /v1/seals": [{"department_code": self.market, "name": "电子证照专用章（二）", "kind": "licence"}],
            "POST /v1/webhooks": [{"url": "https://hooks.example.invalid/licence-hub", "types": []}],
            "POST /v1/me/consents": [{"department_code": scenario["department_code"],
                                      "matter_code": scenario["matter_code"]}],
            "POST /v1/catalog/matters": [{"code": f"{self.market}-FUZZ-002", "name": "营业执照变更登记"}],
            "POST /v1/catalog/access-requests": [{
                "resource_code": foreign["code"], "items": items, "matter_codes": [f"{self.market}-FUZZ-001"],
                "purpose": "办理食品经营许可时核验材料", "legal_basis": "《食品经营许可和备案管理办法》第十二条"}],
            "POST /v1/exchange/verify": [{"certificate_identifier": issued[0]}],
            "POST /v1/admin/departments": [{"code": random_uscc(), "name": "临江市模糊测试局", "area_code": "330100"}],
            "POST /v1/admin/clients": [{"department_code": self.market, "scopes": "licence:read"}],
        }  # fmt: skip


ISSUED = frozenset({"营业执照", "食品经营许可证"})  # the demo licence types the market department issues


def _strategies(operation: Any, mode: schemathesis.GenerationMode, hub: Hub) -> Any:
    """Cases generated freely, plus (valid ones only) cases on the seeded hub's ids and with bodies it accepts."""
    free = operation.as_strategy(generation_mode=mode)
    if mode is not schemathesis.GenerationMode.POSITIVE:
        return free
    known = hub.paths["holder" if Caller.as_holder(operation) else "department"]
    names = [p.name for p in operation.path_parameters]
    seeded = []
    if names and all(n in known for n in names):
        seeded += [
            operation.as_strategy(generation_mode=mode, path_parameters=dict(zip(names, values, strict=True)))
            for values in itertools.product(*(known[n] for n in names))
        ]
    seeded += [operation.as_strategy(generation_mode=mode, body=body) for body in hub.bodies.get(operation.label, [])]
    return st.one_of(free, *seeded)


@pytest.fixture
def hub(make_settings: Any, make_runtime: Any, monkeypatch: pytest.MonkeyPatch) -> Hub:
    # The exchange's per-client burst limit (tests/exchange/test_ratelimit.py) would answer most fuzzed calls 429.
    runtime: Runtime = make_runtime(make_settings(exchange_client_burst=100_000))

    # Webhook endpoints the fuzzer registers get deliveries; those stay on this machine, answered at once.
    async def answered(_url: str, _body: bytes, _headers: dict[str, str]) -> int:
        return 204

    monkeypatch.setattr(delivery, "_send", answered)
    return _seed(runtime)


def _schema(hub: Hub) -> Any:
    """The served /openapi.json, every operation of which loads (none skipped as unparsable)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", hub.app)
    documented = {
        f"{method.upper()} {path}"
        for path, item in hub.app.openapi()["paths"].items()
        for method in item
        if method.upper() in METHODS
    }
    assert {result.ok().label for result in schema.get_all_operations()} == documented
    hub.caller.install(schema)
    return schema


# Request bodies whose wire form is text or bytes whatever value is generated for them: an "invalid" value goes
# out as valid text (JSON Lines of a batch, checked by the hub row by row) or as a valid file part (multipart).
TEXT_ON_THE_WIRE = frozenset({"POST /v1/licences/batches", "POST /v1/verify/file"})


def _shadowed(app: FastAPI, schema: Any) -> set[str]:
    """Operations whose path another operation's route also serves: a method undeclared here is declared there.

    ``/v1/catalog/resources/{code}`` takes codes with a slash ("105/000001"), so it also serves
    ``/v1/catalog/resources/x/versions``; ``DELETE /v1/webhooks/{endpoint_id}`` serves ``/v1/webhooks/dead-letters``.
    An undeclared method there reaches that route, not a 405, and a 405's Allow names it. OpenAPI paths cannot say
    so, so ``unsupported_method`` and ``allow_header_conformance`` do not apply to these operations.
    """
    shadowed = set()
    for path, item in schema.raw_schema["paths"].items():
        scope = {"type": "http", "path": re.sub(r"\{[^}]+\}", "x", path), "root_path": "", "query_string": b""}
        served = {
            method
            for method in METHODS
            if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in app.router.routes)
        }
        if served - {method.upper() for method in item} - {"HEAD"}:
            shadowed |= {f"{method.upper()} {path}" for method in item if method.upper() in METHODS}
    return shadowed


def _checks_for(operation: Any, checks: list[Any], shadowed: Collection[str] = ()) -> list[Any]:
    excluded: set[Any] = set()
    if operation.label in TEXT_ON_THE_WIRE:
        excluded.add(negative_data_rejection)
    if operation.label in shadowed:
        excluded |= {unsupported_method, allow_header_conformance}
    return [check for check in checks if check not in excluded]


def _report(failures: list[str], operation: Any, phase: str, exc: BaseException) -> None:
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    failures.append(f"{operation.label} ({phase}): {exc}")


def _cover(operation: Any, schema: Any, checks: list[Any], tally: Tally, failures: list[str]) -> None:
    """Schemathesis' coverage cases for one operation, valid and invalid, each called and checked."""
    cases = CoverageGenerator(
        operation=operation,
        generation_modes=list(schemathesis.GenerationMode),
        generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
        auth_storage=None,  # the schema's own auth (Caller.install) applies
        override=Override(),
        feedback=FeedbackSources(),
    )
    for case in cases:
        response = case.call()
        tally.add(operation.label, response.status_code)
        try:
            case.validate_response(response, checks=checks)
        except BaseException as exc:  # noqa: BLE001 - a FailureGroup is one; every case runs, all are reported
            _report(failures, operation, "coverage", exc)


def _fuzz(operation: Any, strategy: Any, examples: int, checks: list[Any], tally: Tally) -> Callable[[], None]:
    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=DERANDOMIZE,
    )
    def check(case: Any) -> None:
        response = case.call()
        tally.add(operation.label, response.status_code)
        case.validate_response(response, checks=checks)

    return check


def test_every_operation_conforms(hub: Hub) -> None:
    """Every operation: coverage cases, then valid (some on seeded resources) and invalid generated cases."""
    started = time.monotonic()
    schema = _schema(hub)
    operations = [result.ok() for result in schema.get_all_operations()]
    shadowed = _shadowed(hub.app, schema)
    checks = [*RESPONSE_CHECKS, problem_details(declared_codes())]
    tally = Tally()
    failures: list[str] = []
    nothing_invalid: list[str] = []  # operations with no input that can be made invalid
    modes = ((schemathesis.GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
             (schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES))  # fmt: skip

    for operation in operations:
        _cover(operation, schema, _checks_for(operation, [*checks, *COVERAGE_CHECKS], shadowed), tally, failures)
        for mode, examples in modes:
            try:
                _fuzz(operation, _strategies(operation, mode, hub), examples, _checks_for(operation, checks), tally)()
            except Unsatisfiable:
                # Nothing it takes can be made invalid: no parameters, or only free-form ones (Accept, a path).
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
                nothing_invalid.append(operation.label)
            except BaseException as exc:  # noqa: BLE001 - a FailureGroup is one; every operation runs
                _report(failures, operation, mode.value, exc)

    elapsed = time.monotonic() - started
    print(  # noqa: T201 - reported with -s
        f"\nstateless: {len(operations)} operations, {tally.total} cases in {elapsed:.1f} s, {dict(tally.by_status)};"
        f" no invalid input to generate for {nothing_invalid}; undeclared methods not probed on {sorted(shadowed)}"
    )
    assert not failures, f"{len(failures)} failures\n\n" + "\n\n".join(failures)
    assert set(tally.by_operation) == {operation.label for operation in operations}  # every operation was called
    assert tally.total >= MIN_CASES


def test_linked_operations_conform(hub: Hub) -> None:
    """Stateful: scenarios follow the OpenAPI links, e.g. list seals, then rotate one and read the new one."""
    started = time.monotonic()
    schema = _schema(hub)
    # Invalid input is the stateless test's; scenarios go as far as valid calls take them.
    schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])
    # Only the declared links, none inferred. Schemathesis infers links from list answers too, such as
    # GET /v1/webhooks -> DELETE /v1/webhooks/{endpoint_id}. Scenarios can empty that list, and then a replayed
    # step draws the id from the schema instead of taking it from the answer: Hypothesis stops with
    # FlakyStrategyDefinition (it did once in CI). The declared links read only lists that scenarios cannot
    # empty.
    schema.config.phases.stateful.inference.algorithms = []
    transitions = schema.statistic.transitions
    assert transitions.total >= MIN_TRANSITIONS, "the links of hub/api/openapi.py are in /openapi.json"
    checks = [*RESPONSE_CHECKS, problem_details(declared_codes()), *STATEFUL_CHECKS]
    tally = Tally()

    class Machine(schema.as_state_machine()):
        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            tally.add(case.operation.label, response.status_code)

        def validate_response(
            self, response: Any, case: Any, additional_checks: list[Any] | None = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response,
                checks=[*_checks_for(case.operation, checks), *(additional_checks or [])],
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    assert issubclass(Machine, APIStateMachine)
    Machine.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=DERANDOMIZE,
        )
    )
    elapsed = time.monotonic() - started
    print(  # noqa: T201 - reported with -s
        f"\nstateful: {tally.total} calls, {len(tally.by_operation)} operations, {transitions.total} links,"
        f" {elapsed:.1f} s, {dict(tally.by_status)}"
    )
    assert tally.total >= STATEFUL_EXAMPLES
