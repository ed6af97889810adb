"""Catalogue benchmark (issue 6): search over 50,000 resources / 500,000 data items, and the grant decision.

Each backend gets two throwaway databases, one per part: ``bench.catalog_search`` (search latency p50/p99
through ``catalog.search.search_resources`` against a bare ``SELECT … LIMIT 20``) and ``bench.catalog_grants``
(``check_grant`` from a warm cache against the same check reading the database every time; target < 0.2 ms).
``python -m bench --only catalog`` runs it and writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

from typing import Any

from bench import catalog_grants, catalog_search, hub_setup
from bench.scenarios import log

HEADING = "# licence-hub catalogue benchmark"
QUICK_RESOURCES = 5_000


def run(*, quick: bool = False, skip_postgresql: bool = False) -> dict[str, Any]:
    backends = ["sqlite"]
    up, detail = hub_setup.postgres_available()
    if not skip_postgresql and up:
        backends.append("postgresql")
    summary: dict[str, Any] = {"postgresql": detail if up else f"not reachable: {detail}", "failures": 0}
    resources = QUICK_RESOURCES if quick else catalog_search.RESOURCES
    for backend in backends:
        log(f"catalogue search on {backend}: {resources:,} resources")
        with catalog_search.scratch_database(backend) as url:
            search = catalog_search.run(url, resources=resources, runs=20 if quick else catalog_search.RUNS)
        log(f"grant decision on {backend}")
        with catalog_search.scratch_database(backend) as url:
            grants = catalog_grants.run(
                url, warm_calls=20_000 if quick else catalog_grants.WARM_CALLS,
                uncached_calls=4_000 if quick else catalog_grants.UNCACHED_CALLS,
            )  # fmt: skip
        summary[backend] = {"search": search, "grants": grants}
    return summary


def render(summary: dict[str, Any]) -> str:
    lines = [
        HEADING, "",
        "Search latency through `catalog.search.search_resources` (the service the API calls) and the grant",
        "decision the exchange runs on every fetch (`catalog.grant_check.check_grant`), each against a baseline",
        "measured in the same run. Regenerate with `.venv/bin/python -m bench --only catalog`.", "",
    ]  # fmt: skip
    for backend in ("sqlite", "postgresql"):
        part = summary.get(backend)
        if not part:
            continue
        search, grants = part["search"], part["grants"]
        base = search["baseline_select_limit_20"]
        lines += [
            f"## {backend}: search ({search['resources']:,} resources, {search['data_items']:,} data items)", "",
            (f"Baseline (a bare 20-row read of catalog_resources): p50 {base['p50_ms']} ms, "
             f"p99 {base['p99_ms']} ms. Load: {search['load_seconds']} s."), "",
            "| query | matches | p50 ms | p99 ms | p50 ÷ baseline |", "| --- | ---: | ---: | ---: | ---: |",
        ]  # fmt: skip
        for name, q in search["queries"].items():
            lines.append(f"| {name} | {q['total']:,} | {q['p50_ms']} | {q['p99_ms']} | {q['p50_vs_baseline']} |")
        warm, cold, quota = grants["warm"], grants["uncached"], grants["warm_with_quota"]
        verdict = "met" if grants["warm_under_target"] else "NOT met"
        lines += [
            "", f"## {backend}: grant decision ({grants['grants']:,} grants)", "",
            f"Target: warm decision < {grants['target_ms']} ms (p99): **{verdict}**.", "",
            "| decision | calls | p50 µs | p99 µs | mean µs |", "| --- | ---: | ---: | ---: | ---: |",
            f"| warm cache | {warm['calls']:,} | {warm['p50_us']} | {warm['p99_us']} | {warm['mean_us']} |",
            (f"| no cache (baseline: database read each call) | {cold['calls']:,} | {cold['p50_us']} | "
             f"{cold['p99_us']} | {cold['mean_us']} |"),
            (f"| warm cache + daily quota spent (lock, update) | {quota['calls']:,} | {quota['p50_us']} | "
             f"{quota['p99_us']} | {quota['mean_us']} |"),
            "", f"Uncached ÷ warm: {grants['ratio_p50']}× at p50. {grants['note']}.", "",
        ]  # fmt: skip
    return "\n".join(lines).rstrip() + "\n"
