"""Whole-system benchmark (issue 9): the hub's hot calls on both configurations a province can deploy.

Run through ``python -m bench --only system`` (``--quick``: 20,000 licences, 400 batch rows, 3 s wrk runs).

- **embedded**: SQLite, local files, in-process jobs, one API process (``licence-hub serve``, the README's
  one-command start);
- **distributed**: PostgreSQL (a throwaway database), a Redis broker, a ``moto_server`` S3 endpoint in its
  own process (MinIO's place), two Celery workers and two API processes (``licence-hub serve --workers 2``).

Each configuration is seeded with the demo (departments, types, matters, the consumer's grant, seals) and
100,000 营业执照 of distinct companies, then measured under 64 wrk connections:

- ``GET /v/{token}`` (scan a QR presentation, JSON) against a bare FastAPI ``GET /ping``;
- ``POST /v1/exchange/verify`` and ``/fetch`` against a bare FastAPI ``POST /json``;
- a batch of 营业执照 uploaded as JSON Lines through ``POST /v1/licences/batches`` (validate, identifier,
  render, seal, store, commit), timed until ``GET /v1/licences/batches/{id}`` shows no pending row.

The bare endpoints are served with the same uvicorn settings and the same number of processes as the hub,
before and after it in the same run (ratios to their mean). Every 2xx answer of a measured call must have its
``ok`` audit entry afterwards, and every batch row must be issued exactly once.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import exchange_bench, hub_setup, licence_bench, report
from bench.cpu import load_average
from bench.loadgen import TIMEOUT_S, ensure_wrk
from bench.scenarios import Measurement, Run, log, measure
from bench.servers import Server, free_port, hub_command, serving, uvicorn_bare_command

HEADING = "# licence-hub whole-system benchmark"
LICENCES, QUICK_LICENCES = 100_000, 20_000
BATCH_ROWS, QUICK_BATCH_ROWS = 1_000, 400  # HUB_BATCH_CHUNK_ROWS is 200: 2 chunks or more
BATCH_FIRST_HOLDER = 7_000_000  # far from every other benchmark's and the demo's companies
BATCH_TIMEOUT_S = 1_800.0
SCANNED = "licence.presentation.scanned"
ACCEPT_JSON = licence_bench.ACCEPT_JSON
# The burst limiter would answer 429 to one client at 64 connections; the demo grant has no daily quota.
UNLIMITED = {"HUB_EXCHANGE_CLIENT_BURST": "100000", "HUB_EXCHANGE_CLIENT_RATE_PER_SECOND": "100000"}
TARGETS = {"scan": 0.5, "verify": 0.5, "fetch": 0.3}  # × bare (issues 5 and 7)
RAMP = (64, 512, 2048)  # concurrent fetch clients on the distributed configuration: what gives first?


@dataclass(frozen=True)
class Config:
    name: str
    api_processes: int
    distributed: bool

    def describe(self) -> str:
        if self.distributed:
            return (
                f"PostgreSQL + Redis broker + moto S3 + {licence_bench.WORKERS} Celery workers + "
                f"{self.api_processes} API processes"
            )
        return "SQLite + local files + in-process jobs, 1 API process"


CONFIGS = (Config("embedded", 1, distributed=False), Config("distributed", 2, distributed=True))


@dataclass
class Call:
    """One measured call, its 2xx answers and the ``ok`` audit entries written meanwhile."""

    measured: Measurement
    answered: int
    audited: int

    def as_dict(self, bare_rps: float, bare_async_rps: float, target: float) -> dict[str, Any]:
        """Ratios to both bare twins; the target is judged against the ``async def`` one (the like-for-like floor)."""
        ratio, ratio_def = self.measured.rps / bare_async_rps, self.measured.rps / bare_rps
        unaudited = max(0, self.answered - self.audited)
        return self.measured.as_dict(bare_rps, bare_async_rps=bare_async_rps) | {
            "answered_2xx": self.answered, "audited_ok": self.audited, "unaudited": unaudited,
            "target_ratio": target, "target_met": ratio >= target,
            "target_met_against_def_baseline": ratio_def >= target,
        }  # fmt: skip


# --------------------------------------------------------------------------------------------- the bare


def _bare(run: Run, config: Config, label: str) -> dict[str, Measurement]:
    """Bare ``GET /ping`` and ``POST /json`` and their ``async def`` twins, with the configuration's processes."""
    port = free_port()
    command = uvicorn_bare_command(port, config.api_processes)
    bodies = run.tmp / "bare-bodies.jsonl"
    if not bodies.exists():
        lines = (json.dumps({"certificate_identifier": f"1.2.156.3005.2.BARE.{n}"}) for n in range(1_000))
        bodies.write_text("\n".join(lines) + "\n")
    name = f"bare-{config.name}-{label}"
    with serving(name, command, port=port, env=dict(os.environ), log_dir=run.tmp, ready_path="/ping") as server:
        with httpx.Client(base_url=server.base_url) as client:
            for _ in range(200):
                client.get("/ping").raise_for_status()
                client.post("/json", json={"certificate_identifier": "x"}).raise_for_status()
                client.get("/ping-async").raise_for_status()
                client.post("/json-async", json={"certificate_identifier": "x"}).raise_for_status()
        connections, threads = exchange_bench.CONNECTIONS, exchange_bench.THREADS
        return {
            "get": measure(run, server, "/ping", connections=connections, threads=threads),
            "post": exchange_bench.load_calls(run, server, "/json", bodies, {}),
            "get_async": measure(run, server, "/ping-async", connections=connections, threads=threads),
            "post_async": exchange_bench.load_calls(run, server, "/json-async", bodies, {}),
        }


# ------------------------------------------------------------------------------------------ the hub side


def _client_token(base_url: str, client_id: str, secret: str, scope: str) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    answer = httpx.post(
        f"{base_url}/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
        headers={"Authorization": f"Basic {basic}"}, timeout=30,
    )  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def _scan(run: Run, hub: Server, seeded: exchange_bench.Seeded) -> Call:
    template = seeded.template
    holder = {"holder_type": template["holder_type"], "holder_code": template["holder_code"],
              "name": template["holder_name"]}  # fmt: skip
    shown = licence_bench.Seeded(template["id"], template["identifier"], holder)
    warm = 200
    before = exchange_bench.audited_ok(seeded, SCANNED)
    with httpx.Client(base_url=hub.base_url, timeout=30) as client:
        token = licence_bench.presentation_token(client, shown)  # valid 300 s: longer than the wrk run
        licence_bench.check_scan(client, f"/v/{token}", warm)
    measured = measure(
        run, hub, f"/v/{token}", headers=ACCEPT_JSON, connections=exchange_bench.CONNECTIONS,
        threads=exchange_bench.THREADS,
    )  # fmt: skip
    answered = warm + measured.wrk.requests - measured.wrk.non_2xx
    return Call(measured, answered, exchange_bench.audited_ok(seeded, SCANNED) - before)


def _exchange(run: Run, hub: Server, seeded: exchange_bench.Seeded, size: int) -> dict[str, Call]:
    token = _client_token(hub.base_url, seeded.client_id, seeded.client_secret, "exchange:fetch exchange:verify")
    headers = {"Authorization": f"Bearer {token}"}
    calls = exchange_bench.measure_size(run, hub, seeded, size, headers)
    return {name: Call(measured, answered, audited) for name, (measured, answered, audited) in calls.items()}


def _ramp(run: Run, hub: Server, seeded: exchange_bench.Seeded, size: int) -> list[dict[str, Any]]:
    """Fetch under more and more clients until something gives: throughput, latency, errors, audit.

    wrk counts an answer slower than its timeout as a socket error; the audit column shows that every answer
    the hub did send had its entry (timed-out requests may still be answered, and audited, after wrk gave up).
    """
    token = _client_token(hub.base_url, seeded.client_id, seeded.client_secret, "exchange:fetch exchange:verify")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies = exchange_bench.request_bodies(seeded, size, run.tmp / f"ramp-{size}.jsonl", "fetch")
    steps = []
    for connections in RAMP:
        before = exchange_bench.audited_ok(seeded, exchange_bench.FETCHED)
        measured = measure(
            run, hub, "/v1/exchange/fetch", headers=headers, script="post_lines.lua", script_args=[str(bodies)],
            connections=connections, threads=exchange_bench.THREADS,
        )  # fmt: skip
        time.sleep(2 * run.duration_s if connections > RAMP[0] else 0)  # let queued requests drain
        answered = measured.wrk.requests - measured.wrk.non_2xx
        audited = exchange_bench.audited_ok(seeded, exchange_bench.FETCHED) - before
        steps.append({
            "connections": connections, "rps": round(measured.rps, 1), "p50_ms": round(measured.wrk.p50_ms, 1),
            "p99_ms": round(measured.wrk.p99_ms, 1), "non_2xx": measured.wrk.non_2xx,
            "socket_errors_or_timeouts": measured.wrk.socket_errors, "answered_2xx": answered,
            "audited_ok": audited, "unaudited": max(0, answered - audited),
            "server_cpu_ms_per_req": round(1000 * measured.server_cpu_s / max(1, measured.wrk.requests), 3),
        })  # fmt: skip
        if hub.process.poll() is not None:
            raise RuntimeError(f"the hub died at {connections} clients:\n{hub.log_tail()}")
    return steps


def _batch(hub: Server, seeded: exchange_bench.Seeded, rows: int) -> dict[str, Any]:
    """Upload ``rows`` 营业执照 as JSON Lines and wait until none is pending; every row issued exactly once."""
    token = _client_token(hub.base_url, seeded.issuer_client_id, seeded.issuer_client_secret, "licence:issue")
    body = b"".join(
        json.dumps(licence_bench.business_request(BATCH_FIRST_HOLDER + n), ensure_ascii=False).encode() + b"\n"
        for n in range(rows)
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    with httpx.Client(base_url=hub.base_url, headers=headers, timeout=120) as client:
        started = time.perf_counter()
        accepted = client.post("/v1/licences/batches", content=body)
        if accepted.status_code != 202:
            raise RuntimeError(f"batch refused ({accepted.status_code}): {accepted.text[:500]}")
        batch_id = accepted.json()["batch_id"]
        state = accepted.json()
        while state["pending"] > 0:
            if time.perf_counter() - started > BATCH_TIMEOUT_S:
                raise RuntimeError(f"batch {batch_id} still pending after {BATCH_TIMEOUT_S} s: {state}")
            time.sleep(0.5)
            answer = client.get(f"/v1/licences/batches/{batch_id}")
            answer.raise_for_status()
            state = answer.json()
        elapsed = time.perf_counter() - started
    issued = _distinct_batch_licences(seeded, rows)
    return {
        "rows": rows, "seconds": round(elapsed, 1), "licences_per_s": round(rows / elapsed, 1),
        "issued": state["issued"], "failed": state["failed"], "distinct_licences_in_db": issued,
        "exactly_once": state["issued"] == rows and state["failed"] == 0 and issued == rows,
    }  # fmt: skip


def _distinct_batch_licences(seeded: exchange_bench.Seeded, rows: int) -> int:
    """Licence rows of the batch's holders (distinct companies, so one row each when issued exactly once)."""
    from sqlalchemy import func, select  # noqa: PLC0415

    from licences.models import Licence  # noqa: PLC0415

    codes = [licence_bench.company(BATCH_FIRST_HOLDER + n)[0] for n in range(rows)]
    with exchange_bench.engine_for(seeded.database_url) as engine, engine.connect() as conn:
        total = 0
        for at in range(0, len(codes), 500):
            query = select(func.count()).where(Licence.holder_code.in_(codes[at : at + 500]))
            total += int(conn.scalar(query) or 0)
    return total


# ---------------------------------------------------------------------------------------- one configuration


def _services(stack: ExitStack, config: Config, work: Path, port: int) -> dict[str, str]:
    """The hub environment of ``config``, with its PostgreSQL database, S3 endpoint and broker started."""
    if not config.distributed:
        return hub_setup.hub_environment(work / "data", port, None)
    url = stack.enter_context(hub_setup.throwaway_database())
    s3 = stack.enter_context(licence_bench.moto_s3(work))
    stack.enter_context(licence_bench.redis_broker(licence_bench.BROKER_URL))
    s3_host = s3.base_url.removeprefix("http://")
    return hub_setup.hub_environment(work / "data", port, url) | {
        "HUB_BROKER_URL": licence_bench.BROKER_URL,
        "HUB_STORAGE_URL": f"s3://bench:bench@{s3_host}/licence-hub?secure=false",
    }


def run_config(run: Run, config: Config, *, licences: int, batch_rows: int) -> dict[str, Any]:
    work = run.tmp / config.name
    work.mkdir()
    port = free_port()
    with ExitStack() as stack:
        env = _services(stack, config, work, port) | UNLIMITED | {"HUB_PRESENTATION_TTL_SECONDS": "300"}
        hub_setup.run_init(env, work)
        log(f"system/{config.name}: seeding the demo and {licences:,} licences")
        seeded = exchange_bench.seed(env)
        load_s = exchange_bench.bulk_licences(seeded, 0, licences)
        if config.distributed:
            stack.enter_context(licence_bench.celery_workers(env, work, licence_bench.WORKERS))
        opening = _bare(run, config, "opening")
        command = hub_command(port, config.api_processes)
        with serving(f"hub-{config.name}", command, port=port, env=env, log_dir=work, ready_path="/readyz") as hub:
            calls = {"scan": _scan(run, hub, seeded), **_exchange(run, hub, seeded, licences)}
            ramp = _ramp(run, hub, seeded, licences) if config.distributed else []
            log(f"system/{config.name}: batch of {batch_rows:,} licences")
            batch = _batch(hub, seeded, batch_rows)
            if hub.process.poll() is not None:
                raise RuntimeError(f"the hub died:\n{hub.log_tail()}")
        closing = _bare(run, config, "closing")
    bare = {kind: (opening[kind].rps + closing[kind].rps) / 2 for kind in opening}
    kind_for = {"scan": "get", "verify": "post", "fetch": "post"}
    results = {
        name: call.as_dict(bare[kind_for[name]], bare[kind_for[name] + "_async"], TARGETS[name])
        for name, call in calls.items()
    }
    return {
        "configuration": config.describe(),
        "api_processes": config.api_processes,
        "licences": licences,
        "bulk_load_s": round(load_s, 1),
        "bare_get_rps": round(bare["get"], 1),
        "bare_post_json_rps": round(bare["post"], 1),
        "bare_get_async_rps": round(bare["get_async"], 1),
        "bare_post_json_async_rps": round(bare["post_async"], 1),
        "bare": {
            f"{label}_{kind}": measured.as_dict(bare[kind])
            for label, runs in (("opening", opening), ("closing", closing))
            for kind, measured in runs.items()
        },
        "calls": results,
        "batch": batch,
        "fetch_ramp": ramp,
        "errors": sum(call.measured.wrk.errors for call in calls.values()),
        "unaudited": sum(row["unaudited"] for row in results.values()) + sum(step["unaudited"] for step in ramp),
        "batch_failures": 0 if batch["exactly_once"] else 1,
    }


def _configs(skip_postgresql: bool) -> Iterator[tuple[Config, str | None]]:
    """Each configuration and why it is skipped (None: it runs)."""
    up, detail = hub_setup.postgres_available()
    for config in CONFIGS:
        if config.distributed and (skip_postgresql or not up):
            yield config, "--skip-postgresql" if skip_postgresql else f"PostgreSQL: {detail}"
        else:
            yield config, None


def run(*, quick: bool, duration_s: int, skip_postgresql: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    wrk = ensure_wrk()
    licences, rows = (QUICK_LICENCES, QUICK_BATCH_ROWS) if quick else (LICENCES, BATCH_ROWS)
    wrk_line = f"{exchange_bench.THREADS} threads, {exchange_bench.CONNECTIONS} connections, {duration_s} s per run"
    summary = report.load_run_head(wrk, quick=quick, wrk_line=wrk_line) | {"configurations": {}}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="licencehub-system-bench-") as tmp:
        for config, skipped in _configs(skip_postgresql):
            if skipped:
                summary["configurations"][config.name] = {"skipped": skipped}
                continue
            result = run_config(Run(wrk, duration_s, Path(tmp)), config, licences=licences, batch_rows=rows)
            summary["configurations"][config.name] = result
            failures += result["errors"] + result["unaudited"] + result["batch_failures"]
    summary["failures"] = failures
    summary["load_average_end"] = load_average()
    summary["elapsed_s"] = round(time.perf_counter() - started, 1)
    return summary


# ---------------------------------------------------------------------------------------------- report


def _ramp_lines(ramp: list[dict[str, Any]]) -> list[str]:
    if not ramp:
        return []
    lines = [
        "", ("Fetch under a growing number of clients (distributed configuration; wrk gives up after "
        f"{TIMEOUT_S} s and counts a timeout):"), "",
        "| clients | req/s | p50 ms | p99 ms | non-2xx | timeouts / socket errors | 2xx | unaudited | CPU ms/req |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    lines += [
        f"| {s['connections']} | {s['rps']} | {s['p50_ms']} | {s['p99_ms']} | {s['non_2xx']} | "
        f"{s['socket_errors_or_timeouts']} | {s['answered_2xx']} | {s['unaudited']} | {s['server_cpu_ms_per_req']} |"
        for s in ramp
    ]
    return lines


def render(summary: dict[str, Any]) -> str:
    """The Markdown section of bench/RESULTS.md."""
    intro = (
        "The hub's hot calls and a batch issuance on both configurations, each against a bare FastAPI endpoint "
        "served with the same uvicorn settings and number of processes in the same run (mean of the runs before "
        "and after the hub). The baseline is the `async def` endpoint (on the event loop, like the hub's hot "
        "routes); the `def` twin, which pays a thread-pool hop per request and was the baseline before "
        "2026-12-04, is in the last ratio column. Regenerate with `.venv/bin/python -m bench --only system`."
    )
    lines = [HEADING, "", intro, "", f"- date {summary['date']}, {summary['wrk']}", ""]
    columns = ("configuration", "call", "req/s", "baseline", "baseline req/s", "× baseline", "target", "p50 ms",
               "p99 ms", "errors", "2xx", "unaudited", "server CPU ms/req", "× def baseline")  # fmt: skip
    lines += ["| " + " | ".join(columns) + " |", "| --- | --- | ---: | --- |" + " ---: |" * 10]
    notes = []
    for name, result in summary["configurations"].items():
        if "skipped" in result:
            notes.append(f"- {name}: skipped ({result['skipped']})")
            continue
        for call, row in result["calls"].items():
            baseline = ("bare `GET /ping-async`", result.get("bare_get_async_rps")) if call == "scan" else (
                "bare `POST /json-async`", result.get("bare_post_json_async_rps"))  # fmt: skip
            lines.append(
                f"| {name} | {call} | {row['rps']} | {baseline[0]} | {baseline[1]} | "
                f"{row['ratio_to_bare_async']} | ≥ {row['target_ratio']} | {row['p50_ms']} | {row['p99_ms']} | "
                f"{row['errors']} | {row['answered_2xx']} | {row['unaudited']} | {row['server_cpu_ms_per_req']} | "
                f"{row['ratio_to_bare']} |"
            )
        batch = result["batch"]
        notes.append(
            f"- {name} ({result['configuration']}; {result['licences']:,} licences loaded in "
            f"{result['bulk_load_s']} s): batch of {batch['rows']:,} 营业执照 through the API in {batch['seconds']} s "
            f"= **{batch['licences_per_s']} licences/s**, issued exactly once: {batch['exactly_once']}"
        )
    embedded, distributed = (summary["configurations"].get(name, {}) for name in ("embedded", "distributed"))
    if "batch" in embedded and "batch" in distributed:
        ratio = distributed["batch"]["licences_per_s"] / embedded["batch"]["licences_per_s"]
        notes.append(f"- batch issuance, distributed ÷ embedded: {ratio:.2f}×")
    return "\n".join([*lines, "", *notes, *_ramp_lines(distributed.get("fetch_ramp", [])), ""])
