"""The results at a glance: one row per headline figure of every benchmark, with its same-run baseline and target.

Built from the JSON summary of ``python -m bench`` (the parts that ran), so the table in bench/RESULTS.md and the
README is the same data as the JSON. Each row: what was measured, on which configuration, the figure, the
baseline measured in the same run, their ratio, the issue's target and whether it is met.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

HEADING = "# licence-hub results at a glance"
# Catalogue searches shown here (the catalogue section lists them all): a common 2-character term (a full scan
# even with trigrams), a 4-character term (pg_trgm's case) and a share-type filter.
HEADLINE_QUERIES = ("substring_2_common", "substring_4", "filter_share_type")


@dataclass(frozen=True)
class Figure:
    issue: int
    what: str
    configuration: str
    value: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}×"


def _audit(audit: dict[str, Any]) -> Iterator[Figure]:
    append, proofs = audit.get("append", {}), audit.get("proofs", {})
    for backend, label in (("postgresql", "PostgreSQL"), ("sqlite", "SQLite")):
        part = append.get(backend, {})
        if "group" not in part:
            continue
        group, plain = part["group"].get("64", {}), part["plain"].get("64", {})
        target = append.get("target_entries_per_s", 20_000)
        yield Figure(
            3, "audit append, group commit, 64 writers (entries/s)", label, f"{group.get('entries_per_s')}",
            f"one commit per entry: {plain.get('entries_per_s')}", part["ratio_group_to_plain"].get("64"),
            f"≥ {target:,}/s" if backend == "postgresql" else "", group.get("entries_per_s", 0) >= target
            if backend == "postgresql" else None,
        )  # fmt: skip
        for cell in part.get("processes", {}).values():
            yield Figure(
                3, f"audit append, group commit, {cell['processes']} processes × {cell['writers_per_process']} "
                "writers (entries/s)", label, f"{cell['entries_per_s']}", "one process, 64 writers: "
                f"{group.get('entries_per_s')}", round(cell["entries_per_s"] / group["entries_per_s"], 2)
                if group.get("entries_per_s") else None, f"≥ {target:,}/s", cell["entries_per_s"] >= target,
            )  # fmt: skip
    sizes = proofs.get("sizes", [0, 0])
    for backend, label in (("postgresql", "PostgreSQL"), ("sqlite", "SQLite")):
        part = proofs.get(backend, {})
        if "proofs_big" not in part:
            continue
        for kind in ("inclusion", "consistency"):
            small, big = part["proofs_small"][kind]["median_ms"], part["proofs_big"][kind]["median_ms"]
            verdict = part["target"][kind]
            yield Figure(
                3, f"{kind} proof at {sizes[1]:,} entries, median ms", label, f"{big}", f"at {sizes[0]:,}: {small}",
                round(big / small, 2) if small else None, "< 1 ms, flat (≤ 1.5×)",
                bool(verdict["median_under_1ms"] and verdict["flat"]),
            )  # fmt: skip
        last = part.get("integrate_last", {})  # the issue's measure: 100 k new entries into the big log
        if last:
            what = f"checkpoint integration of {last['to'] - last['from']:,} new entries into {last['to']:,} (s)"
            yield Figure(3, what, label, f"{last['seconds']}", "", None, "", None)


def _seal(seal: dict[str, Any]) -> Iterator[Figure]:
    yield Figure(
        5, "PAdES seal B-T (documents/s)", "in-process", f"{seal['fast_b_t']['docs_per_s']}",
        f"pyHanko sign_pdf B-B: {seal['baseline_docs_per_s']}", seal["ratio_b_t_vs_pyhanko_b_b"],
        f"≥ {seal['target_ratio']}×", bool(seal["target_met"]),
    )  # fmt: skip


def _licence(licence: dict[str, Any]) -> Iterator[Figure]:
    issuance = licence.get("issuance", {})
    if "batch" in issuance:
        batch, single = issuance["batch"], issuance["single_issue_per_s"]
        yield Figure(
            5, f"batch issuance of {batch['rows']:,} (licences/s)", f"PostgreSQL + S3 + {issuance['workers']}",
            f"{batch['licences_per_s']}", f"issue() in one process: {single['mean']}",
            issuance["batch_to_single_issue_ratio"], f"≈ {issuance['ideal_ratio']}× (2 cores)", None,
        )  # fmt: skip
    scan = licence.get("scan", {})
    # Runs since the audit process (2026-12-04, sixth session) also measure the thread shape, for reference.
    shape = "1 API process + its audit process" if "sqlite_thread" in scan else "1 process"
    for backend, label in (("sqlite", f"SQLite, {shape}"), ("postgresql", f"PostgreSQL, {shape}")):
        part = scan.get(backend, {})
        if "token_scan" not in part:
            continue
        row = part["token_scan"]
        yield Figure(
            5, "`GET /v/{token}` scan (req/s)", label, f"{row['rps']}",
            f"bare GET, async def: {scan['bare_get_async_rps']}", row["ratio_to_bare_async"],
            f"≥ {scan['target_ratio']}×", row["ratio_to_bare_async"] >= scan["target_ratio"],
        )  # fmt: skip
        yield Figure(
            5, "`GET /v/{token}` scan (req/s)", label, f"{row['rps']}", f"bare GET, def (thread pool): "
            f"{scan['bare_get_rps']}", row["ratio_to_bare"], f"≥ {scan['target_ratio']}× (earlier baseline)",
            row["ratio_to_bare"] >= scan["target_ratio"],
        )  # fmt: skip
    if "sqlite_thread" in scan:
        row = scan["sqlite_thread"]["token_scan"]
        yield Figure(
            5, "`GET /v/{token}` scan (req/s)", "SQLite, committer thread in the API process", f"{row['rps']}",
            f"bare GET, async def: {scan['bare_get_async_rps']}", row["ratio_to_bare_async"], "reference", None,
        )  # fmt: skip
    for shape, floor in scan.get("floor", {}).items():
        row = floor["token_scan"]
        yield Figure(
            5, "lean floor scan, same work in minimal Python (req/s)", f"SQLite, committer {shape}", f"{row['rps']}",
            f"bare GET, async def: {scan['bare_get_async_rps']}", row["ratio_to_bare_async"], "reference", None,
        )  # fmt: skip


def _catalog(catalog: dict[str, Any]) -> Iterator[Figure]:
    for backend, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        part = catalog.get(backend)
        if not part:
            continue
        grants = part["grants"]
        warm, cold = grants["warm"], grants["uncached"]
        yield Figure(
            6, "grant decision, warm cache, p99 µs", label, f"{warm['p99_us']}", f"uncached p50: {cold['p50_us']}",
            grants.get("ratio_p50"), f"< {grants['target_ms'] * 1000:g} µs", bool(grants["warm_under_target"]),
        )  # fmt: skip
        search = part["search"]
        base = search["baseline_select_limit_20"]["p50_ms"]
        for name in HEADLINE_QUERIES:
            query = search["queries"].get(name)
            if query is None:
                continue
            where = f"{label}, {search['resources']:,} resources"
            yield Figure(6, f"catalogue search `{name}`, p50 ms", where, f"{query['p50_ms']}",
                         f"bare 20-row read: {base}", query["p50_vs_baseline"], "", None)  # fmt: skip


def _exchange(exchange: dict[str, Any]) -> Iterator[Figure]:
    if "ratios_at_100k" not in exchange:
        return
    targets, met = exchange["targets"], exchange["target_met"]
    shape = "1 API process + its audit process" if "thread_at_100k" in exchange else "1 process"
    for size in (100_000, 1_000_000):
        for call in ("verify", "fetch"):
            row = exchange[f"licences_{size}"][call]
            target = targets[f"{call}_ratio"]
            configuration = f"PostgreSQL, {shape}, {size:,} licences"
            yield Figure(
                7, f"exchange {call}, 64 clients (req/s)", configuration, f"{row['rps']}",
                f"bare POST /json-async: {exchange['bare_json_async_rps']}", row["ratio_to_bare_async"],
                f"≥ {target}×", row["ratio_to_bare_async"] >= target,
            )  # fmt: skip
            yield Figure(
                7, f"exchange {call}, 64 clients (req/s)", configuration, f"{row['rps']}",
                f"bare POST /json, def (thread pool): {exchange['bare_json_rps']}", row["ratio_to_bare"],
                f"≥ {target}× (earlier baseline)", row["ratio_to_bare"] >= target,
            )  # fmt: skip
    for call, row in exchange.get("thread_at_100k", {}).items():
        yield Figure(
            7, f"exchange {call}, 64 clients (req/s)", "PostgreSQL, committer thread in the API process, 100,000 "
            "licences", f"{row['rps']}", f"bare POST /json-async: {exchange['bare_json_async_rps']}",
            row["ratio_to_bare_async"], "reference", None,
        )  # fmt: skip
    for floor_shape, row in exchange.get("floor_verify", {}).items():
        yield Figure(
            7, "lean floor verify, same work in minimal Python (req/s)", f"SQLite, committer {floor_shape}",
            f"{row['rps']}", f"bare POST /json-async: {exchange['bare_json_async_rps']}", row["ratio_to_bare_async"],
            "reference", None,
        )  # fmt: skip
    yield Figure(7, "exchange worst p99 (ms)", f"PostgreSQL, {shape}", f"{exchange['worst_p99_ms']}", "", None,
                 f"< {targets['p99_ms']:g} ms", bool(met["p99_ms"]))  # fmt: skip
    growth = ", ".join(f"{call} {change:+.0%}" for call, change in exchange["p50_growth_100k_to_1m"].items())
    yield Figure(7, "exchange p50 growth 100 k → 1 M licences", "PostgreSQL", growth, "", None,
                 f"≤ {targets['p50_growth']:.0%}", bool(met["p50_growth"]))  # fmt: skip


def _system(system: dict[str, Any]) -> Iterator[Figure]:
    for name, result in system.get("configurations", {}).items():
        if "calls" not in result:
            continue
        label = f"{name}: {result['configuration']}"
        for call, row in result["calls"].items():
            baseline = f"bare GET, async def: {result['bare_get_async_rps']}" if call == "scan" else (
                f"bare POST /json-async: {result['bare_post_json_async_rps']}")  # fmt: skip
            yield Figure(9, f"{call}, 64 clients (req/s)", label, f"{row['rps']}", baseline,
                         row["ratio_to_bare_async"], f"≥ {row['target_ratio']}×", bool(row["target_met"]))  # fmt: skip
        batch = result["batch"]
        yield Figure(9, f"batch of {batch['rows']:,} through the API (licences/s)", label, f"{batch['licences_per_s']}",
                     "", None, "exactly once", bool(batch["exactly_once"]))  # fmt: skip


def _auth(summary: dict[str, Any]) -> Iterator[Figure]:
    bare = summary.get("baseline", {}).get("bare_get_rps")
    for backend, results in summary.get("results", {}).items():
        row = results.get("validate_token") if isinstance(results, dict) else None
        if bare and row:
            yield Figure(2, "token validation `GET /v1/whoami`, 8 clients (req/s)", backend, f"{row['rps']}",
                         f"bare GET: {bare}", row["ratio_to_bare"], "", None)  # fmt: skip


def figures(summary: dict[str, Any]) -> list[Figure]:
    rows = list(_auth(summary))
    parts = (("audit", _audit), ("seal", _seal), ("licence", _licence), ("catalog", _catalog),
             ("exchange", _exchange), ("system", _system))  # fmt: skip
    for key, extract in parts:
        if summary.get(key) and "skipped" not in summary[key]:
            rows.extend(extract(summary[key]))
    return rows


def _machine(summary: dict[str, Any]) -> str:
    machine: dict[str, Any] = summary.get("machine") or next(
        (part["machine"] for part in summary.values() if isinstance(part, dict) and "machine" in part), {}
    )
    return f"{machine.get('nproc', '?')} × {machine.get('cpu_model', '?')}, Python {machine.get('python', '?')}"


def _part_dates(summary: dict[str, Any]) -> str:
    """When each part last ran: recorded by ``python -m bench``, else the part's own ``date``."""
    dates: dict[str, str] = {
        name: str(part["date"]) for name, part in summary.items() if isinstance(part, dict) and part.get("date")
    }
    dates |= summary.get("dates") or {}
    shown = [f"{name} {when[:16].replace('T', ' ')}" for name, when in sorted(dates.items())]
    return "; ".join(shown) or str(summary.get("date", ""))


def render(summary: dict[str, Any]) -> str:
    verdict = {True: "met", False: "**not met**", None: ""}
    lines = [
        HEADING, "",
        (f"Every headline figure of `.venv/bin/python -m bench`, each with its baseline measured in the same run, "
         f"on {_machine(summary)}. `--only` reruns one part, so parts may come from different runs: "
         f"{_part_dates(summary)}. Details in the sections below."), "",
        "| issue | figure | configuration | value | baseline (same run) | ratio | target | verdict |",
        "| ---: | --- | --- | ---: | --- | ---: | --- | --- |",
    ]  # fmt: skip
    lines.extend(
        f"| {f.issue} | {f.what} | {f.configuration} | {f.value} | {f.baseline} | {_x(f.ratio)} | {f.target} | "
        f"{verdict[f.met]} |"
        for f in figures(summary)
    )
    return "\n".join(lines) + "\n"
