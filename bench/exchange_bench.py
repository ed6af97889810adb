"""Exchange benchmark (issue 7): ``POST /v1/exchange/verify`` and ``/fetch`` under 64 concurrent clients.

Run through ``python -m bench --only exchange`` (``--quick``: 3 s wrk runs). One hub on a throwaway PostgreSQL
database, seeded with the demo (departments, the 营业执照 type, the consumer's matter and grant, the platform
seal), then 100,000 营业执照 licences of distinct companies written with COPY (the calls under test read
licences; issuing them one by one through the sealer is the licence benchmark's business). wrk keeps 64
connections busy, each request naming a different licence taken from a shuffled sample, against:

- a bare FastAPI ``POST /json-async`` (parses and validates a JSON body, answers JSON, on the event loop like
  the hub's exchange routes) served with the same uvicorn settings, measured before and after the hub in the
  same run: the ratios' denominator. Its ``def`` twin ``POST /json``, which pays a thread-pool hop per
  request and was the denominator until 2026-12-04, is measured beside it and its ratios reported too;
- verify by identifier and fetch by identifier (matter, case number, officer, holder), every call durably
  audited; after each run the audit log must hold at least one ``ok`` entry per 2xx answer.

Then the log grows to 1,000,000 licences and verify and fetch run again; the p50 must not grow more than 20 %.
Every cell (bare included) is the median of ``REPEATS`` wrk runs by throughput.
Targets: verify ≥ 0.5 and fetch ≥ 0.3 of bare (``async def``), p99 < 50 ms.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Engine, func, insert, select

from audit.models import AuditEntry
from bench import hub_setup, report
from bench.cpu import load_average
from bench.licence_bench import _settings_from, floor_entries, floor_server
from bench.loadgen import ensure_wrk
from bench.scan_floor import FLOOR_LICENCES, SHAPES, VERIFY_PREFIX
from bench.scenarios import Measurement, Run, log, measure
from bench.servers import free_port, hub_command, serving, uvicorn_bare_command
from hub.db import make_engine
from licences.models import Licence

HEADING = "# licence-hub exchange benchmark"
CONNECTIONS = 64
THREADS = 2
FIRST_SIZE = 100_000
SECOND_SIZE = 1_000_000
SAMPLE = 20_000  # request bodies per run (distinct licences), cycled by wrk
WARM = 300
# wrk runs per cell; the median by throughput is reported, with every run's req/s beside it. On the 2-core
# machines the bare endpoint drifted by 15 % between two runs a few minutes apart, one run per cell made the
# p50-growth comparison (100 k vs 1 M) a coin toss.
REPEATS = 3
TARGETS = {"verify_ratio": 0.5, "fetch_ratio": 0.3, "p99_ms": 50.0, "p50_growth": 0.20}
VERIFIED, FETCHED = "exchange.licence.verified", "exchange.licence.fetched"
JSON = "application/json"
CONSUMER = "临江市人力资源和社会保障局"
ISSUER = "临江市市场监督管理局"
MATTER_SUFFIX = "ZYDJ-001"  # hub/demo.py: 用人单位就业登记, satisfied by 营业执照 under a grant without consent
COPY_BATCH = 50_000


@dataclass(frozen=True)
class Seeded:
    database_url: str  # SQLAlchemy form: sqlite:///… (embedded) or postgresql+psycopg://…
    client_id: str
    client_secret: str
    matter_code: str
    template: dict[str, Any]  # the demo 营业执照 row the bulk licences are modelled on
    issuer_client_id: str  # 临江市市场监督管理局 (licence:issue), for the whole-system benchmark's batch
    issuer_client_secret: str


def seed(env: dict[str, str]) -> Seeded:
    """The demo seeded in-process: departments, clients, types, matters, grants and the platform seal."""
    from hub.demo import seed_demo  # noqa: PLC0415
    from hub.runtime import build_runtime  # noqa: PLC0415

    settings = _settings_from(env)
    runtime = build_runtime(settings)
    try:
        credentials, _ = seed_demo(runtime)
    finally:
        runtime.close()
    consumer = next(d for d in credentials["departments"] if d["name"] == CONSUMER)
    issuer = next(d for d in credentials["departments"] if d["name"] == ISSUER)
    matter = next(s["matter_code"] for s in credentials["scenarios"] if s["matter_code"].endswith(MATTER_SUFFIX))
    url = settings.resolved_database_url
    table = Licence.__table__
    query = (
        select(table).where(table.c.issuer_code == issuer["code"], table.c.type_name == "营业执照").order_by(table.c.pk)
    )
    with engine_for(url) as engine, engine.connect() as conn:
        template = conn.execute(query.limit(1)).mappings().first()
    if template is None:
        raise RuntimeError("the demo issued no 营业执照")
    return Seeded(
        url, consumer["client_id"], consumer["client_secret"], matter, dict(template),
        issuer["client_id"], issuer["client_secret"],
    )  # fmt: skip


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def _company(n: int) -> tuple[str, str]:
    from hub.codes import make_uscc  # noqa: PLC0415

    return make_uscc("9", "1", "330100", f"B{n:07d}"), f"临江市交换基准第{n}商贸有限公司"


def _identifier(template: dict[str, Any], n: int) -> str:
    from licences.identifiers import make_identifier  # noqa: PLC0415

    return str(make_identifier(template["type_code"], template["issuer_code"], f"9{n:09d}"))


def _rows(template: dict[str, Any], first: int, count: int) -> Iterator[tuple[Any, ...]]:
    now = dt.datetime.now(dt.UTC)
    face = dict(template["face"])
    for n in range(first, first + count):
        code, name = _company(n)
        row_face = face | {"unified_social_credit_code": code, "name": name}
        yield (
            secrets.token_hex(16), _identifier(template, n), f"9{n:09d}", "001", template["type_code"],
            template["issuer_code"], template["certificate_name"], template["type_name"], template["issuer_name"],
            f"BENCH{n:010d}", "001", code, name, template["area_code"], template["issue_date"],
            template["validity_start"], template["validity_end"], row_face, "valid",
            template["file_sha256"], template["seal_id"], now, now,
        )  # fmt: skip


_COLUMNS = (
    "id, identifier, serial, version, type_code, issuer_code, certificate_name, type_name, issuer_name, "
    "certificate_number, holder_type, holder_code, holder_name, area_code, issue_date, validity_start, "
    "validity_end, face, status, file_sha256, seal_id, created_at, updated_at"
)


def bulk_licences(seeded: Seeded, first: int, count: int) -> float:
    """Write ``count`` valid 营业执照 rows (numbers ``first``…) in 50k-row transactions; then ANALYZE. Seconds.

    PostgreSQL gets COPY, then ``VACUUM (ANALYZE)``: with ``ANALYZE`` alone, the insert-triggered autovacuum of
    the 900,000 new rows ran during the 1 M cells and took CPU from the hub (as the audit benchmark found for
    its proofs). SQLite (the embedded configuration) gets an executemany through SQLAlchemy.
    """
    started = time.perf_counter()
    if seeded.database_url.startswith("sqlite"):
        names = [name.strip() for name in _COLUMNS.split(",")]
        with engine_for(seeded.database_url) as engine:
            for start in range(first, first + count, COPY_BATCH):
                rows = _rows(seeded.template, start, min(COPY_BATCH, first + count - start))
                with engine.begin() as conn:
                    conn.execute(insert(Licence), [dict(zip(names, row, strict=True)) for row in rows])
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE licences")
        return time.perf_counter() - started
    with psycopg.connect(_psycopg_url(seeded.database_url)) as conn:
        for start in range(first, first + count, COPY_BATCH):
            size = min(COPY_BATCH, first + count - start)
            with conn.cursor() as cur, cur.copy(f"COPY licences ({_COLUMNS}) FROM STDIN") as copy:
                for row in _rows(seeded.template, start, size):
                    copy.write_row([json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v for v in row])
            conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) licences")
    return time.perf_counter() - started


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def request_bodies(seeded: Seeded, size: int, path: Path, kind: str) -> Path:
    """SAMPLE request bodies over licences 0…size-1, shuffled, one JSON document a line."""
    rng = random.Random(f"{kind}-{size}")  # noqa: S311 - a reproducible sample, not a secret
    numbers = rng.sample(range(size), SAMPLE)
    with path.open("w") as fh:
        for i, n in enumerate(numbers):
            identifier = _identifier(seeded.template, n)
            if kind == "verify":
                body: dict[str, Any] = {"certificate_identifier": identifier}
            else:
                body = {
                    "matter_code": seeded.matter_code, "case_number": f"LJ-BENCH-{size}-{i:06d}",
                    "officer_id": "bench-officer-01", "holder": {"type": "001", "code": _company(n)[0]},
                    "certificate_identifier": identifier,
                }  # fmt: skip
            fh.write(json.dumps(body, ensure_ascii=False) + "\n")
    return path


def _token(base_url: str, seeded: Seeded) -> str:
    basic = base64.b64encode(f"{seeded.client_id}:{seeded.client_secret}".encode()).decode()
    answer = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "exchange:fetch exchange:verify"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def _warm(base_url: str, path: str, bodies: Path, headers: dict[str, str]) -> None:
    """A few hundred calls first: every one must be 200 (the grant, the licences and the token all work)."""
    with httpx.Client(base_url=base_url, headers=headers | {"Content-Type": JSON}, timeout=30) as client:
        for line in bodies.read_text().splitlines()[:WARM]:
            answer = client.post(path, content=line.encode())
            if answer.status_code != 200:
                raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:500]}")


def audited_ok(seeded: Seeded, action: str) -> int:
    table = AuditEntry.__table__
    query = select(func.count()).where(table.c.action == action, table.c.outcome == "ok")
    with engine_for(seeded.database_url) as engine, engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def load_calls(run: Run, server: Any, path: str, bodies: Path, headers: dict[str, str]) -> Measurement:
    return measure(
        run, server, path, headers=headers | {"Content-Type": JSON}, script="post_lines.lua",
        script_args=[str(bodies)], connections=CONNECTIONS, threads=THREADS,
    )  # fmt: skip


def _bare(run: Run, tmp: Path, name: str) -> tuple[Measurement, Measurement]:
    """The median runs of the bare ``def`` ``POST /json`` and of its ``async def`` twin, in one server."""
    bodies = tmp / "bare-bodies.jsonl"
    if not bodies.exists():
        with bodies.open("w") as fh:
            for n in range(SAMPLE):
                fh.write(json.dumps({"certificate_identifier": f"1.2.156.3005.2.BARE.{n}"}) + "\n")
    port = free_port()
    env = dict(os.environ)
    with serving(name, uvicorn_bare_command(port), port=port, env=env, log_dir=tmp, ready_path="/ping") as server:
        medians = []
        for path in ("/json", "/json-async"):
            _warm(server.base_url, path, bodies, {})
            medians.append(median_calls(run, server, path, bodies, {})[0])
        return medians[0], medians[1]


def _floor(run: Run, shape: str) -> tuple[Measurement, int, int]:
    """The verify floor (bench/scan_floor.py, SQLite) in one shape: its median run, 2xx answers, ok entries."""
    bodies = run.tmp / "floor-bodies.jsonl"
    if not bodies.exists():
        with bodies.open("w") as fh:
            for n in range(SAMPLE):
                number = 2 + n % (FLOOR_LICENCES - 1)
                fh.write(json.dumps({"certificate_identifier": f"{VERIFY_PREFIX}{number}"}) + "\n")
    with floor_server(run, shape) as (server, database):
        answer = httpx.post(f"{server.base_url}/floor/verify", json={"certificate_identifier": f"{VERIFY_PREFIX}2"})
        if answer.raise_for_status().json()["status"] != "valid":
            raise RuntimeError(f"floor-{shape} verify answered {answer.text[:300]}")
        _warm(server.base_url, "/floor/verify", bodies, {})
        measured, answered = median_calls(run, server, "/floor/verify", bodies, {})
    return measured, 1 + WARM + answered, floor_entries(database, "ok")


def median_calls(run: Run, server: Any, path: str, bodies: Path, headers: dict[str, str]) -> tuple[Measurement, int]:
    """``REPEATS`` wrk runs: the median one by req/s (all runs' req/s in its extra), and all runs' 2xx answers."""
    runs = [load_calls(run, server, path, bodies, headers) for _ in range(REPEATS)]
    chosen = sorted(runs, key=lambda m: m.rps)[len(runs) // 2]
    chosen.extra["runs_rps"] = [round(m.rps, 1) for m in runs]
    return chosen, sum(m.wrk.requests - m.wrk.non_2xx for m in runs)


@dataclass
class Call:
    name: str
    path: str
    action: str


CALLS = (Call("verify", "/v1/exchange/verify", VERIFIED), Call("fetch", "/v1/exchange/fetch", FETCHED))


def measure_size(
    run: Run, server: Any, seeded: Seeded, size: int, headers: dict[str, str]
) -> dict[str, tuple[Measurement, int, int]]:
    """Verify and fetch at one log size: (measurement, 2xx answers, ok audit entries written meanwhile)."""
    out = {}
    for call in CALLS:
        bodies = request_bodies(seeded, size, run.tmp / f"{call.name}-{size}.jsonl", call.name)
        before = audited_ok(seeded, call.action)
        _warm(server.base_url, call.path, bodies, headers)
        measured, answered_2xx = median_calls(run, server, call.path, bodies, headers)
        audited = audited_ok(seeded, call.action) - before
        answered = WARM + answered_2xx
        out[call.name] = (measured, answered, audited)
        if server.process.poll() is not None:
            raise RuntimeError(f"the hub died during {call.name}:\n{server.log_tail()}")
    return out


def _row(measured: Measurement, bare: tuple[float, float], answered: int, audited: int) -> dict[str, Any]:
    bare_def, bare_async = bare
    counts = {"answered_2xx": answered, "audited_ok": audited, "unaudited": max(0, answered - audited)}
    return measured.as_dict(bare_def, bare_async_rps=bare_async) | counts


def run_exchange(run: Run, database_url: str) -> dict[str, Any]:
    opening, opening_async = _bare(run, run.tmp, "bare-exchange")
    port = free_port()
    env = hub_setup.hub_environment(run.tmp / "data", port, database_url) | {
        # the burst limiter would answer 429 to one client at 64 connections; the grant has no daily quota
        "HUB_EXCHANGE_CLIENT_BURST": "100000", "HUB_EXCHANGE_CLIENT_RATE_PER_SECOND": "100000",
    }  # fmt: skip
    hub_setup.run_init(env, run.tmp)
    log("exchange: seeding the demo")
    seeded = seed(env)
    log(f"exchange: COPY {FIRST_SIZE:,} licences")
    loads = {"first_s": round(bulk_licences(seeded, 0, FIRST_SIZE), 1)}
    sizes: dict[int, dict[str, tuple[Measurement, int, int]]] = {}
    # The shape before the audit process (HUB_AUDIT_COMMITTER=thread), same database and run, for comparison.
    thread_env = env | {"HUB_AUDIT_COMMITTER": "thread"}
    with serving(
        "hub-thread", hub_command(port), port=port, env=thread_env, log_dir=run.tmp, ready_path="/readyz"
    ) as hub:
        headers = {"Authorization": f"Bearer {_token(hub.base_url, seeded)}"}
        thread = measure_size(run, hub, seeded, FIRST_SIZE, headers)
    with serving("hub-exchange", hub_command(port), port=port, env=env, log_dir=run.tmp, ready_path="/readyz") as hub:
        headers = {"Authorization": f"Bearer {_token(hub.base_url, seeded)}"}
        sizes[FIRST_SIZE] = measure_size(run, hub, seeded, FIRST_SIZE, headers)
        log(f"exchange: COPY {SECOND_SIZE - FIRST_SIZE:,} more licences")
        loads["second_s"] = round(bulk_licences(seeded, FIRST_SIZE, SECOND_SIZE - FIRST_SIZE), 1)
        sizes[SECOND_SIZE] = measure_size(run, hub, seeded, SECOND_SIZE, headers)
    floors = {shape: _floor(run, shape) for shape in SHAPES}
    closing, closing_async = _bare(run, run.tmp, "bare-exchange-closing")
    bare = (opening.rps + closing.rps) / 2
    bare_async = (opening_async.rps + closing_async.rps) / 2
    results: dict[str, Any] = {
        f"licences_{size}": {
            name: _row(m, (bare, bare_async), answered, audited) for name, (m, answered, audited) in calls.items()
        }
        for size, calls in sizes.items()
    }
    first, second = sizes[FIRST_SIZE], sizes[SECOND_SIZE]
    growth = {name: round(second[name][0].wrk.p50_ms / first[name][0].wrk.p50_ms - 1, 3) for name in first}
    ratios = {name: round(first[name][0].rps / bare_async, 3) for name in first}
    ratios_def = {name: round(first[name][0].rps / bare, 3) for name in first}
    p99 = max(m.wrk.p99_ms for calls in sizes.values() for m, _, _ in calls.values())
    met = {
        "verify_ratio": ratios["verify"] >= TARGETS["verify_ratio"],
        "fetch_ratio": ratios["fetch"] >= TARGETS["fetch_ratio"],
        "p99_ms": p99 < TARGETS["p99_ms"],
        "p50_growth": all(g <= TARGETS["p50_growth"] for g in growth.values()),
    }
    errors = sum(m.wrk.errors for calls in sizes.values() for m, _, _ in calls.values())
    unaudited = sum(max(0, a - b) for calls in sizes.values() for _, a, b in calls.values())
    unaudited += sum(max(0, a - b) for _, a, b in [*floors.values(), *thread.values()])
    return {
        "bare_json_rps": round(bare, 1),
        "bare_json_async_rps": round(bare_async, 1),
        "bare": {
            "opening": opening.as_dict(bare),
            "closing": closing.as_dict(bare),
            "opening_async": opening_async.as_dict(bare_async),
            "closing_async": closing_async.as_dict(bare_async),
        },
        "bulk_load_s": loads,
        **results,
        "thread_at_100k": {
            name: _row(m, (bare, bare_async), answered, audited) for name, (m, answered, audited) in thread.items()
        },
        "floor_verify": {
            shape: _row(m, (bare, bare_async), answered, audited) for shape, (m, answered, audited) in floors.items()
        },
        "target_baseline": "bare POST /json-async (async def)",
        "ratios_at_100k": ratios,
        "ratios_at_100k_to_def_baseline": ratios_def,
        "ratio_targets_met_against_def_baseline": {
            name: ratios_def[name] >= TARGETS[f"{name}_ratio"] for name in ratios_def
        },
        "p50_growth_100k_to_1m": growth,
        "worst_p99_ms": p99,
        "targets": TARGETS,
        "target_met": met,
        "errors": errors,
        "unaudited": unaudited,
    }


def run(*, quick: bool, duration_s: int, skip_postgresql: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    wrk = ensure_wrk()
    line = f"{THREADS} threads, {CONNECTIONS} connections, {duration_s} s per run, median of {REPEATS} runs a cell"
    summary = report.load_run_head(wrk, quick=quick, wrk_line=line)
    up, detail = hub_setup.postgres_available()
    if skip_postgresql or not up:
        summary["skipped"] = "--skip-postgresql" if skip_postgresql else f"PostgreSQL: {detail}"
        summary["failures"] = 0
        return summary
    summary["postgresql_server"] = detail
    with tempfile.TemporaryDirectory(prefix="licencehub-exchange-bench-") as tmp, hub_setup.throwaway_database() as url:
        summary |= run_exchange(Run(wrk, duration_s, Path(tmp)), url)
    summary["failures"] = summary["errors"] + summary["unaudited"]
    summary["load_average_end"] = load_average()
    summary["elapsed_s"] = round(time.perf_counter() - started, 1)
    return summary


def _bare_runs(summary: dict[str, Any], suffix: str = "") -> str:
    opening, closing = summary["bare"]["opening" + suffix], summary["bare"]["closing" + suffix]
    return (
        f"opening {opening['rps']} (runs {opening.get('runs_rps')}), closing {closing['rps']} (runs "
        f"{closing.get('runs_rps')}); its own p99: {opening['p99_ms']} / {closing['p99_ms']} ms"
    )


def render(summary: dict[str, Any]) -> str:
    """The Markdown section of bench/RESULTS.md."""
    intro = (
        "Verify and fetch through the whole HTTP stack (uvicorn, one worker, PostgreSQL; the audit committer in a "
        "child process as `licence-hub serve` runs it, and for comparison as a thread in the API process, same "
        "database, same run), every call durably audited, "
        f"{CONNECTIONS} wrk connections, against a bare FastAPI `POST /json-async` (`async def`, on the event loop "
        "like the hub's exchange routes) served the same way in the same run (ratios to the mean of its opening and "
        "closing runs; the targets are judged on these). The `def` twin `POST /json` pays a thread-pool hop per "
        "request; it was the denominator before 2026-12-04 and its ratios are listed beside. "
        f"Each cell is the median of {REPEATS} wrk runs by req/s (all runs listed). At 64 closed-loop clients the "
        "p50 is at least 64 / throughput, so a p99 under "
        "50 ms needs more than 1,280 req/s: compare with the bare endpoint's own p99. Regenerate with "
        "`.venv/bin/python -m bench --only exchange`."
    )
    lines = [HEADING, "", intro, ""]
    if "skipped" in summary:
        return "\n".join([*lines, f"Skipped: {summary['skipped']}", ""])
    lines += [
        f"- date {summary['date']}, PostgreSQL {summary['postgresql_server']}, {summary['wrk']}",
        f"- bare `POST /json-async`: {summary['bare_json_async_rps']} req/s ({_bare_runs(summary, '_async')})",
        f"- bare `POST /json` (def): {summary['bare_json_rps']} req/s ({_bare_runs(summary)})",
        f"- bulk load: {summary['bulk_load_s']}", "",
        ("| licences | call | req/s | runs req/s | × bare async | × bare def | p50 ms | p99 ms | errors | 2xx "
         "| ok entries | server CPU ms/req |"),
        "| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for size in (FIRST_SIZE, SECOND_SIZE):
        for name, row in summary[f"licences_{size}"].items():
            lines.append(
                f"| {size:,} | {name} | {row['rps']} | {row.get('runs_rps')} | {row['ratio_to_bare_async']} | "
                f"{row['ratio_to_bare']} | "
                f"{row['p50_ms']} | {row['p99_ms']} | {row['errors']} | {row['answered_2xx']} | {row['audited_ok']} | "
                f"{row['server_cpu_ms_per_req']} |"
            )
    for name, row in summary.get("thread_at_100k", {}).items():
        lines.append(
            f"| {FIRST_SIZE:,}, committer thread | {name} | {row['rps']} | {row.get('runs_rps')} | "
            f"{row['ratio_to_bare_async']} | {row['ratio_to_bare']} | {row['p50_ms']} | {row['p99_ms']} | "
            f"{row['errors']} | {row['answered_2xx']} | {row['audited_ok']} | {row['server_cpu_ms_per_req']} |"
        )
    for shape, row in summary.get("floor_verify", {}).items():
        lines.append(
            f"| floor, committer {shape} | `POST /floor/verify` | {row['rps']} | {row.get('runs_rps')} | "
            f"{row['ratio_to_bare_async']} | {row['ratio_to_bare']} | {row['p50_ms']} | {row['p99_ms']} | "
            f"{row['errors']} | {row['answered_2xx']} | {row['audited_ok']} | {row['server_cpu_ms_per_req']} |"
        )
    met = summary["target_met"]
    lines += [
        "",
        (
            "- Floor rows (bench/scan_floor.py, SQLite with `synchronous=FULL`, 1,000 licences): the work no "
            "audited verify can skip (one licence read by identifier, one audit entry in a group commit, an "
            "Ed25519 receipt, the answer after the commit) in minimal Python, served like the bare app; with "
            "a committer thread (the hub's shape) and with a committer process. They show how much of the gap "
            "is our code and how much is the machine."
        ),
        f"- targets {summary['targets']}: {met}",
        f"- ratios at 100k: {summary['ratios_at_100k']}; p50 growth 100k → 1M: {summary['p50_growth_100k_to_1m']}",
        (
            f"- ratios at 100k to the `def` baseline: {summary['ratios_at_100k_to_def_baseline']}, targets met "
            f"against it: {summary['ratio_targets_met_against_def_baseline']}"
        ),
        "",
    ]
    return "\n".join(lines)
