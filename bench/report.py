"""Machine description and the Markdown report (bench/RESULTS.md)."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.cpu import load_average
from bench.loadgen import wrk_version

RESULTS_MD = Path(__file__).parent / "RESULTS.md"
_PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "sqlalchemy", "psycopg", "pyjwt", "argon2-cffi")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_run_head(wrk: str, *, quick: bool, wrk_line: str) -> dict[str, Any]:
    """The opening fields of an HTTP load benchmark's summary: when, where, how hard."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(wrk_version(wrk)),
        "quick": quick,
        "wrk": wrk_line,
        "load_average_start": load_average(),
    }


def machine_info(wrk_version: str) -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "wrk": wrk_version,
        "packages": {name: _version(name) for name in _PACKAGES},
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _results_rows(summary: dict[str, Any]) -> list[str]:
    header = ["backend", "scenario", "req/s", "× bare_get", "p50 ms", "p99 ms", "errors", "server CPU ms/req"]
    header.append("other load (cores)")
    rows = [_row(header), _row(["---"] * 2 + ["---:"] * 7)]
    groups = {"bare": summary["baseline"]["scenarios"], **summary["results"]}
    for backend, scenarios in groups.items():
        if "skipped" in scenarios:
            rows.append(_row([backend, f"skipped: {scenarios['skipped']}", *[""] * 7]))
            continue
        for name, r in scenarios.items():
            cells = [r["rps"], f"{r['ratio_to_bare']:.3f}", r["p50_ms"], r["p99_ms"], r["errors"]]
            rows.append(_row([backend, f"`{name}`", *cells, r["server_cpu_ms_per_req"], r["other_cpu_cores"]]))
    return rows


def render_markdown(summary: dict[str, Any]) -> str:
    machine = summary["machine"]
    argon2 = summary["argon2id"]
    baseline = summary["baseline"]
    drift = (
        f"{baseline['bare_get_rps']} req/s = mean of opening {baseline['bare_get_rps_opening']} and closing "
        f"{baseline['bare_get_rps_closing']} ({baseline['bare_get_drift_pct']:+.1f} %)"
    )
    load = f"{summary['load_average_start']} at start, {summary['load_average_end']} at end"
    lines = [
        "# licence-hub HTTP benchmark",
        "",
        "Token issuance and validation rate through the full HTTP stack (uvicorn, one worker) measured with",
        f"`wrk -t1 -c{summary['connections']} -d{summary['duration_s']}s --latency` against 127.0.0.1, next to a",
        "bare FastAPI endpoint served the same way in the same run. Ratios (× bare_get) are to the mean of the",
        "opening and closing `bare_get` runs of this invocation.",
        "Regenerate with `.venv/bin/python -m bench` (`--quick` for 3 s runs).",
        "",
        _row(["", ""]),
        _row(["---", "---"]),
        _row(["date", summary["date"]]),
        _row(["machine: nproc", machine["nproc"]]),
        _row(["machine: CPU", machine["cpu_model"]]),
        _row(["Python", machine["python"]]),
        _row(["wrk", machine["wrk"]]),
        _row(["PostgreSQL", summary.get("postgresql_server", "n/a")]),
        _row(["packages", ", ".join(f"{k} {v}" for k, v in machine["packages"].items())]),
        _row(["bare_get baseline", drift]),
        _row(["load average (1/5/15 min)", load]),
        _row(["whole run", f"{summary['elapsed_s']} s"]),
        "",
        *_results_rows(summary),
        "",
        "Notes:",
        "",
        (
            "- `token_secret_basic` is dominated by Argon2id by design "
            f"(m={argon2['memory_kib']} KiB, t={argon2['time_cost']}, p={argon2['parallelism']}): one verify takes "
            f"{argon2['verify_wall_ms']} ms wall / {argon2['verify_cpu_ms']} ms CPU in-process on this machine."
        ),
        "- `token_private_key_jwt` posts a fresh single-use ES256 assertion per request (pre-signed pool).",
        "- `validate_token` is GET /v1/whoami: signature and claims check plus one database query.",
        "- `hub_healthz` is the hub's framework and middleware cost without authentication.",
        "- wrk and the server share the same cores. Server CPU is user+system time of the server process;",
        "  other load is machine CPU used by neither server nor wrk during the run (other processes: noise).",
        "",
    ]
    return "\n".join(lines)


def write_markdown(summary: dict[str, Any], path: Path = RESULTS_MD) -> None:
    path.write_text(render_markdown(summary), encoding="utf-8")
