"""The Markdown section of the licence benchmark (bench/licence_bench.py) in bench/RESULTS.md."""

from __future__ import annotations

from typing import Any

HEADING = "# licence-hub licence benchmark"
LOCK_SAMPLE_INTERVAL_S = 0.05  # how often bench/licence_bench.py samples pg_stat_activity


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _issuance_lines(part: dict[str, Any]) -> list[str]:
    if "skipped" in part:
        return [f"Batch issuance skipped: {part['skipped']}.", ""]
    batch, check, steps = part["batch"], part["verification"], part["steps"]
    locks, single = batch["lock_waits"], part["single_issue_per_s"]
    ms = steps["ms_per_licence"]
    share = steps["share_of_issue"]
    table = [
        _row(["measurement", "per s", "ms each", "share of `issue()`"]),
        _row(["---", "---:", "---:", "---:"]),
        _row([f"batch, {part['workers']}", batch["licences_per_s"], round(1000 / batch["licences_per_s"], 2), ""]),
        _row(
            [
                "`issue()` in-process, 1 thread (commit per 20), after the batch",
                steps["issue_full"]["per_s"],
                ms["issue_full"],
                "1.0",
            ]
        ),
        _row(["render alone (`render_licence`)", steps["render"]["per_s"], ms["render"], share["render"]]),
        _row(
            ["seal alone (`seal_document` B-T, hub TSA)", steps["seal_b_t"]["per_s"], ms["seal_b_t"], share["seal_b_t"]]
        ),
        _row(["store alone (S3 `put`: stat + PUT)", steps["store_s3"]["per_s"], ms["store_s3"], share["store_s3"]]),
        _row(["rest of `issue()` (validation, serial, row, audit, commit)", "", ms["rest"], share["rest"]]),
    ]
    return [
        "## Batch issuance, distributed configuration",
        "",
        (
            f"{part['backend']}; {part['storage']}; broker {part['broker']}; "
            f"{part['batch_created']}. A warm-up batch of {part['warm_up']['rows']} rows ran first."
        ),
        "",
        (
            f"- {batch['rows']:,} rows in {batch['chunks']} chunks of {batch['chunk_rows']}: "
            f"**{batch['licences_per_s']} licences/s**, {batch['wall_s']} s from first dispatch to no pending "
            f"row (first row done after {batch['first_row_issued_s']} s); issued {batch['issued']:,}, "
            f"failed {batch['failed']}."
        ),
        (
            f"- CPU cores busy during the batch: {', '.join(f'{k} {v}' for k, v in batch['cpu_cores'].items())} "
            f"(workers {batch['worker_cpu_ms_per_licence']} ms CPU per licence; other = the rest of the machine)."
        ),
        (
            f"- Workers waiting on PostgreSQL row locks: {locks['share_of_worker_time_waiting_on_locks']} of their "
            f"time (pg_stat_activity sampled every {LOCK_SAMPLE_INTERVAL_S} s), most often in "
            f"`{locks['most_waited_in']}`."
        ),
        (
            f"- Batch ÷ single-process `issue()`: **{part['batch_to_single_issue_ratio']}×** "
            f"(ideal ≈ {part['ideal_ratio']}: 2 workers on 2 cores, {batch['chunks']} chunks shared between them); "
            f"single-process rate {single['before_batch']}/s before the batch, {single['after_batch']}/s after, "
            f"mean {single['mean']}/s."
        ),
        (
            f"- Checked: {check['licences']:,} licence rows, {check['distinct_identifiers']:,} distinct identifiers, "
            f"{check['in_bucket']:,} files in the bucket, {check['fetched_intact']}/{check['fetched']} fetched files "
            f"intact (SHA-256), {check['pyhanko_passed']}/{check['pyhanko_checked']} TOTAL-PASSED (pyHanko via "
            f"seals.verify), batch {check['batch_status']}: **{'ok' if check['ok'] else 'FAILED'}**."
        ),
        "",
        (
            f"Where the time goes (single process, {steps['issue_full']['count']} licences of the batch re-rendered "
            "and re-sealed, and as many new ones issued):"
        ),
        "",
        *table,
        "",
    ]


def _scan_lines(scan: dict[str, Any]) -> list[str]:
    header = ["backend", "route", "req/s", "× bare async", "× bare def", "p50 ms", "p99 ms", "errors",
              "server CPU ms/req"]  # fmt: skip
    rows = [_row([*header, "other load (cores)"]), _row(["---", "---"] + ["---:"] * 8)]
    async_rps = scan["bare_get_async_rps"]
    for key, route, rps in (("opening_async", "`GET /ping-async` (async def)", async_rps),
                            ("opening", "`GET /ping` (def: thread pool)", scan["bare_get_rps"])):  # fmt: skip
        bare = scan["bare"][key]
        cells = [bare["p50_ms"], bare["p99_ms"], bare["errors"], bare["server_cpu_ms_per_req"], bare["other_cpu_cores"]]
        ratios = [round(rps / async_rps, 3), round(rps / scan["bare_get_rps"], 3)]
        rows.append(_row(["bare FastAPI", route, rps, *ratios, *cells]))
    audits = []
    labels = {"sqlite": "sqlite", "postgresql": "postgresql", "sqlite_thread": "sqlite, committer thread"}
    for backend, label in labels.items():
        result = scan.get(backend, {})
        if not result:  # runs before the audit process (2026-12-04, sixth session) have no thread row
            continue
        if "skipped" in result:
            rows.append(_row([label, f"skipped: {result['skipped']}", *[""] * 7]))
            continue
        routes = [("token_scan", "`GET /v/{token}` (JSON)"), ("static_scan", "`GET /v/{licence id}` (JSON)"),
                  ("token_scan_8_clients", "`GET /v/{token}` (JSON), 8 connections")]  # fmt: skip
        for key, route in routes:
            if key not in result:
                continue
            r = result[key]
            cells = [r["rps"], r["ratio_to_bare_async"], r["ratio_to_bare"], r["p50_ms"], r["p99_ms"],
                     r["errors"], r["server_cpu_ms_per_req"]]  # fmt: skip
            rows.append(_row([label, route, *cells, r["other_cpu_cores"]]))
        audits.append(f"{label} {result['scans_audited']:,} audit entries for {result['scans_answered']:,} answers")
    for shape, floor in scan.get("floor", {}).items():
        r = floor["token_scan"]
        cells = [r["rps"], r["ratio_to_bare_async"], r["ratio_to_bare"], r["p50_ms"], r["p99_ms"], r["errors"],
                 r["server_cpu_ms_per_req"], r["other_cpu_cores"]]  # fmt: skip
        rows.append(_row([f"floor (committer {shape})", "`GET /floor/{token}` (JSON)", *cells]))
        audits.append(f"floor, {shape}: {floor['scans_audited']:,} entries for {floor['scans_answered']:,} answers")
    met = "met" if scan["target_met"] else "NOT met"
    met_def = {True: "met", False: "NOT met", None: "not measured"}[scan.get("target_met_against_def_baseline")]
    return [
        "## `GET /v/{token}` verification throughput",
        "",
        (
            "The hub (`licence-hub serve`, one worker, embedded jobs, its audit committer in a child process "
            "unless the row says otherwise: `HUB_AUDIT_COMMITTER`) with one licence issued in-process and a "
            f"presentation token ({scan.get('sqlite', {}).get('token_bytes', '?')} bytes) from `POST "
            "/v1/me/licences/{identifier}/presentations`; wrk with `Accept: application/json` and "
            f"{scan.get('connections', 8)} connections unless the row says otherwise. Each bare GET is the mean "
            f"of a run before and after: `async def` {scan['bare_get_async_rps_opening']} / "
            f"{scan['bare_get_async_rps_closing']}, `def` {scan['bare_get_rps_opening']} / "
            f"{scan['bare_get_rps_closing']}. Target ≥ {scan['target_ratio']}× bare for the token scan, judged "
            f"against the `async def` endpoint (the scan route runs on the event loop too): **{met}**; against "
            f"the `def` endpoint, which pays a thread-pool hop per request (the baseline before 2026-12-04): "
            f"{met_def}."
        ),
        "",
        *rows,
        "",
        f"- Every scan is audited through the group committer before it is answered: {'; '.join(audits)}.",
        (
            "- Floor rows (bench/scan_floor.py): the work no audited scan can skip (ES256 check, one licence "
            "read, one audit entry committed with `synchronous=FULL` in a group commit, an Ed25519 receipt) in "
            "as little Python as we could write, with none of the hub's middleware, SQLAlchemy or checks; "
            "served like the bare app, with the committer as a thread or as a child process fed over a Unix "
            "socket (the hub's two shapes). They show how much of the gap to the target is our code and how "
            "much is the machine."
        ),
        "- Bare rows: req/s is the mean of the two bare runs; latency and CPU columns are the opening run's.",
        (
            "- 8 connections: each client waits for its own durable commit, so this cell is bounded by commit "
            "latency (every commit is fsynced), not by CPU; it is shown for comparison, not against the target."
        ),
        "- Other load: machine CPU used by neither the server nor wrk during the run (other processes: noise).",
        "",
    ]


def render(summary: dict[str, Any]) -> str:
    """The Markdown section for bench/RESULTS.md."""
    machine = summary["machine"]
    return "\n".join([
        HEADING,
        "",
        (f"{summary['date']}, {machine['nproc']} × {machine['cpu_model']}, Python {machine['python']}, "
        f"{machine['wrk']}; {'--quick, ' if summary['quick'] else ''}{summary['wrk_duration_s']} s per wrk run; "
        f"load average {summary['load_average_start']} at start, {summary['load_average_end']} at end; "
        f"whole run {summary['elapsed_s']} s, failures {summary['failures']}. Regenerate with "
        "`.venv/bin/python -m bench --only licence` (`--quick`: 1,000 licences, 3 s wrk runs)."),
        "",
        *_issuance_lines(summary["issuance"]),
        *_scan_lines(summary["scan"]),
    ])  # fmt: skip
