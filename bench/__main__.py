"""``python -m bench``: run every scenario, print one JSON summary and write bench/RESULTS.md.

``--only auth`` runs the HTTP token benchmark, ``--only audit`` the audit log benchmark (bench/audit_bench.py,
under the summary's "audit" key and its own RESULTS.md section), ``--only seal`` the PAdES sealing benchmark
(bench/seal_bench.py, under "seal"), ``--only licence`` batch issuance on two Celery workers and the scan
endpoint (bench/licence_bench.py, under "licence"), ``--only catalog`` catalogue search and the grant decision
(bench/catalog_bench.py, under "catalog"), ``--only exchange`` verify and fetch under 64 clients at 100 k and
1 M licences (bench/exchange_bench.py, under "exchange"), ``--only system`` scan, verify, fetch and a batch on
the embedded and the distributed configuration (bench/system_bench.py, under "system"); the default runs all
seven.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    audit_bench,
    audit_report,
    catalog_bench,
    exchange_bench,
    hub_setup,
    licence_bench,
    licence_report,
    overview,
    report,
    scenarios,
    seal_bench,
    system_bench,
)
from bench.cpu import load_average
from bench.loadgen import CONNECTIONS, ensure_wrk, wrk_version
from bench.scenarios import Measurement, Run, log

DEFAULT_DURATION_S = 8
QUICK_DURATION_S = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=int, default=DEFAULT_DURATION_S, help="seconds per wrk run (default 8)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DURATION_S} s per wrk run")
    parser.add_argument("--skip-postgresql", action="store_true", help="SQLite only, even if PostgreSQL is up")
    parser.add_argument("--output", type=Path, default=report.RESULTS_MD, help="Markdown report path")
    parser.add_argument(
        "--only",
        choices=("auth", "audit", "seal", "licence", "catalog", "exchange", "system", "all"),
        default="all",
        help="which benchmark (default all)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = QUICK_DURATION_S
    if args.duration < 1:
        parser.error("--duration must be at least 1 second")
    return args


def _as_dicts(measured: dict[str, Measurement], bare_get: float, bare_post: float) -> dict[str, Any]:
    return {name: m.as_dict(bare_get, bare_post if name.startswith("token_") else None) for name, m in measured.items()}


def _postgresql(run: Run, pool_rps: float) -> tuple[dict[str, Measurement] | str, str]:
    """Hub scenarios on a throwaway PostgreSQL database, or why they were skipped; and the server version."""
    up, detail = hub_setup.postgres_available()
    if not up:
        log(f"PostgreSQL not reachable at {hub_setup.PG_ADMIN_DSN}: {detail}; skipping")
        return f"not reachable: {detail}", "n/a"
    with hub_setup.throwaway_database() as url:
        log(f"PostgreSQL {detail}: throwaway database {url.rsplit('/', 1)[1]}")
        return scenarios.run_hub(run, "postgresql", url, pool_rps), detail


def _measure_all(run: Run, skip_postgresql: bool) -> dict[str, Any]:
    """Opening baseline, hub on SQLite, hub on PostgreSQL, closing baseline; every server fresh."""
    log(f"baseline: bare FastAPI, {run.duration_s} s per run")
    bare = scenarios.run_baseline(run)
    opening_rps = bare["bare_get"].rps
    log("hub on SQLite (embedded default)")
    hubs: dict[str, dict[str, Measurement] | str] = {"sqlite": scenarios.run_hub(run, "sqlite", None, opening_rps)}
    pg_version = "n/a"
    if skip_postgresql:
        hubs["postgresql"] = "--skip-postgresql"
    else:
        hubs["postgresql"], pg_version = _postgresql(run, opening_rps)
    log("closing baseline")
    closing = scenarios.run_baseline(run, closing=True)["bare_get"]
    return {"bare": bare, "closing": closing, "hubs": hubs, "postgresql_server": pg_version}


def _summarise(measured: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready results; ratios are to the mean of the opening and closing bare GET runs."""
    bare: dict[str, Measurement] = measured["bare"]
    opening, closing = bare["bare_get"].rps, measured["closing"].rps
    bare_get = (opening + closing) / 2
    bare_post = bare["bare_post_form"].rps
    baseline = {
        "bare_get_rps": round(bare_get, 1),
        "bare_get_rps_opening": round(opening, 1),
        "bare_get_rps_closing": round(closing, 1),
        "bare_get_drift_pct": round(100 * (closing - opening) / opening, 1),
        "bare_post_form_rps": round(bare_post, 1),
        "scenarios": _as_dicts({**bare, "bare_get_closing": measured["closing"]}, bare_get, bare_post),
    }
    results = {
        backend: {"skipped": hub} if isinstance(hub, str) else _as_dicts(hub, bare_get, bare_post)
        for backend, hub in measured["hubs"].items()
    }
    return {"baseline": baseline, "postgresql_server": measured["postgresql_server"], "results": results}


def _errors_total(summary: dict[str, Any]) -> int:
    groups = [summary["baseline"]["scenarios"], *summary["results"].values()]
    return sum(int(r.get("errors", 0)) for group in groups for r in group.values() if isinstance(r, dict))


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    if args.only in {"audit", "seal", "licence", "catalog", "exchange", "system"}:
        summary: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
        summary["machine"] = report.machine_info(f"not run (--only {args.only})")
    else:
        summary = _run_auth(args)
    if args.only in {"audit", "all"}:
        summary["audit"] = audit_bench.run(quick=args.quick, skip_postgresql=args.skip_postgresql)
    if args.only in {"seal", "all"}:
        summary["seal"] = seal_bench.run(quick=args.quick)
    if args.only in {"licence", "all"}:
        summary["licence"] = licence_bench.run(
            quick=args.quick, duration_s=args.duration, skip_postgresql=args.skip_postgresql
        )
    if args.only in {"catalog", "all"}:
        summary["catalog"] = catalog_bench.run(quick=args.quick, skip_postgresql=args.skip_postgresql)
    if args.only in {"exchange", "all"}:
        summary["exchange"] = exchange_bench.run(
            quick=args.quick, duration_s=args.duration, skip_postgresql=args.skip_postgresql
        )
    if args.only in {"system", "all"}:
        summary["system"] = system_bench.run(
            quick=args.quick, duration_s=args.duration, skip_postgresql=args.skip_postgresql
        )
    summary["elapsed_s"] = round(time.perf_counter() - started, 1)
    return summary


def _run_auth(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    wrk = ensure_wrk()
    summary: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine_info(wrk_version(wrk)),
        "duration_s": args.duration,
        "connections": CONNECTIONS,
        "workers": 1,
        "load_average_start": load_average(),
    }
    with tempfile.TemporaryDirectory(prefix="licencehub-bench-") as tmp:
        summary |= _summarise(_measure_all(Run(wrk, args.duration, Path(tmp)), args.skip_postgresql))
    summary["argon2id"] = scenarios.argon2_cost()
    summary["load_average_end"] = load_average()
    summary["errors_total"] = _errors_total(summary)
    summary["elapsed_s"] = round(time.perf_counter() - started, 1)
    return summary


PARTS = ("audit", "seal", "licence", "catalog", "exchange", "system")
AUTH_KEYS = ("baseline", "results")


def _merge_latest(summary: dict[str, Any], path: Path) -> dict[str, Any]:
    """Merge this run's parts over the latest of the others (kept in ``path``, next to RESULTS.md); save it.

    ``--only X`` reruns one part; the overview table still shows every part, each from its own latest run.
    """
    latest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    dates = latest.setdefault("dates", {})  # part -> when it last ran
    for key in (*PARTS, *AUTH_KEYS):
        if key in summary:
            latest[key] = summary[key]
            dates["auth" if key in AUTH_KEYS else key] = summary["date"]
    latest["date"], latest["machine"] = summary["date"], summary["machine"]
    path.write_text(json.dumps(latest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return latest


def _write_overview(path: Path, section: str) -> None:
    """The overview goes first in RESULTS.md, replacing the previous one."""
    old = audit_report.read_section(path, overview.HEADING)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if old is not None:
        text = text.replace(old, "", 1)
    path.write_text(section.rstrip("\n") + "\n\n" + text.lstrip("\n"), encoding="utf-8")


README = report.RESULTS_MD.resolve().parents[1] / "README.md"
README_START, README_END = "<!-- bench overview: start -->", "<!-- bench overview: end -->"


def _write_readme_table(path: Path, section: str) -> None:
    """README shows the latest overview table, between two markers (written by ``python -m bench``)."""
    text = path.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return
    table = "\n".join(line for line in section.splitlines() if not line.startswith("# "))
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    path.write_text(f"{head}{README_START}\n{table.strip()}\n{README_END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kept_audit = audit_report.read_section(args.output)  # the HTTP report rewrites the file
    kept_seal = audit_report.read_section(args.output, seal_bench.HEADING)
    kept_licence = audit_report.read_section(args.output, licence_report.HEADING)
    kept_catalog = audit_report.read_section(args.output, catalog_bench.HEADING)
    kept_exchange = audit_report.read_section(args.output, exchange_bench.HEADING)
    kept_system = audit_report.read_section(args.output, system_bench.HEADING)
    summary = run(args)
    if args.only in {"auth", "all"}:
        report.write_markdown(summary, args.output)
    audit, seal, licence = summary.get("audit"), summary.get("seal"), summary.get("licence")
    audit_report.write_section(args.output, audit_report.render(audit) if audit else kept_audit)
    audit_report.write_section(args.output, seal_bench.render(seal) if seal else kept_seal, seal_bench.HEADING)
    licence_md = licence_report.render(licence) if licence else kept_licence
    audit_report.write_section(args.output, licence_md, licence_report.HEADING)
    catalog = summary.get("catalog")
    catalog_md = catalog_bench.render(catalog) if catalog else kept_catalog
    audit_report.write_section(args.output, catalog_md, catalog_bench.HEADING)
    exchange = summary.get("exchange")
    exchange_md = exchange_bench.render(exchange) if exchange else kept_exchange
    audit_report.write_section(args.output, exchange_md, exchange_bench.HEADING)
    system = summary.get("system")
    system_md = system_bench.render(system) if system else kept_system
    audit_report.write_section(args.output, system_md, system_bench.HEADING)
    merged = _merge_latest(summary, args.output.with_suffix(".json"))
    summary["overview"] = [figure.as_dict() for figure in overview.figures(merged)]
    _write_overview(args.output, overview.render(merged))
    if args.output.resolve() == report.RESULTS_MD.resolve():
        _write_readme_table(README, overview.render(merged))
    parts = (audit, seal, licence, catalog, exchange, system)
    errors = summary.get("errors_total", 0) + sum(part["failures"] for part in parts if part)
    log(f"wrote {args.output}; whole run {summary['elapsed_s']} s, errors {errors}")
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
