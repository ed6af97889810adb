"""The audit section of bench/RESULTS.md, kept after the HTTP report whichever part was rerun."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HEADING = "# licence-hub audit log benchmark"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _durability(block: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in block.items())


def _append_rows(append: dict[str, Any]) -> list[str]:
    header = ["backend", "mode", "writers", "entries/s", "group ÷ plain", "avg batch", "p50 ms", "p99 ms", "errors"]
    header += ["process CPU cores", "committer CPU cores"]
    rows = [_row(header), _row(["---"] * 2 + ["---:"] * 9)]
    for backend, result in append.items():
        if not isinstance(result, dict) or not ("group" in result or "skipped" in result):
            continue
        if "skipped" in result:
            rows.append(_row([backend, f"skipped: {result['skipped']}", *[""] * 9]))
            continue
        cells = [("group", w, c) for w, c in result["group"].items()]
        cells += [("plain", w, c) for w, c in result["plain"].items()]
        batched = result["diagnostic_one_caller_batched"]
        cells.append((f"diagnostic: group, {batched['entries_per_call']} entries per call", "1", batched))
        for mode, writers, cell in cells:
            ratio = result["ratio_group_to_plain"].get(writers, "") if mode == "group" else ""
            batch = cell.get("avg_batch", 1)
            figures = [cell["entries_per_s"], ratio, batch, cell["p50_ms"], cell["p99_ms"], cell["errors"]]
            cpu = [cell["process_cpu_cores"], cell.get("committer_thread_cpu_cores", "")]
            rows.append(_row([backend, mode, writers, *figures, *cpu]))
        for cell in result.get("processes", {}).values():  # processes: no shared batch, p50 or CPU to show
            mode = f"group, {cell['processes']} processes (one committer each)"
            writers = f"{cell['processes']} × {cell['writers_per_process']}"
            figures = [cell["entries_per_s"], "", "", "", cell["p99_ms"], cell["errors"], "", ""]
            rows.append(_row([backend, mode, writers, *figures]))
    return rows


def _proof_rows(proofs: dict[str, Any]) -> list[str]:
    header = ["backend", "tree size", "inclusion median ms", "inclusion p99 ms", "consistency median ms"]
    header += ["consistency p99 ms", "statements/proof (incl., cons.)", "verify failures"]
    header += ["what-if 2 queries: incl. / cons. median ms", "one PK lookup ms"]
    rows = [_row(header), _row(["---"] + ["---:"] * 9)]
    for backend, result in proofs.items():
        if not isinstance(result, dict) or "proofs_small" not in result:
            continue
        for key in ("proofs_small", "proofs_big"):
            p = result[key]
            inc, con = p["inclusion"], p["consistency"]
            queries = f"{inc['queries_per_proof']}, {con['queries_per_proof']}"
            cells = [inc["median_ms"], inc["p99_ms"], con["median_ms"], con["p99_ms"], queries]
            what_if = p["what_if_two_queries"]
            alt = f"{what_if['inclusion']['median_ms']} / {what_if['consistency']['median_ms']}"
            cells += [p["verification_failures"], alt, what_if["one_pk_lookup_median_ms"]]
            rows.append(_row([backend, p["tree_size"], *cells]))
    return rows


def _integration_rows(proofs: dict[str, Any]) -> list[str]:
    rows = [
        _row(["backend", "integration", "new entries", "calls", "seconds", "entries/s"]),
        _row(["---", "---", "---:", "---:", "---:", "---:"]),
    ]
    for backend, result in proofs.items():
        if not isinstance(result, dict) or "integrate_first" not in result:
            continue
        for key in ("integrate_first", "integrate_backlog", "integrate_last"):
            r = result[key]
            new = r["to"] - r["from"]
            rate = round(new / r["seconds"]) if r["seconds"] else ""
            rows.append(_row([backend, f"{r['from']:,} → {r['to']:,}", f"{new:,}", r["calls"], r["seconds"], rate]))
    return rows


def _verdicts(proofs: dict[str, Any]) -> list[str]:
    small, big = proofs["sizes"]
    lines = []
    for backend, result in proofs.items():
        if not isinstance(result, dict) or "target" not in result:
            continue
        for kind, v in result["target"].items():
            lines.append(
                f"- {backend} {kind}: median {big:,}/{small:,} = {v['ratio_median_big_to_small']}× "
                f"(p99 {v['ratio_p99_big_to_small']}×); median < 1 ms: {v['median_under_1ms']}; "
                f"p99 < 1 ms: {v['p99_under_1ms']}; flat (≤ 1.5×): {v['flat']}"
            )
    return lines


def render(audit: dict[str, Any]) -> str:
    append, proofs = audit["append"], audit["proofs"]
    pg = append.get("postgresql", {})
    target = append["target_entries_per_s"]
    met = {True: "met", False: "NOT met", None: "not measured"}[append.get("target_met")]
    meta = [
        _row(["", ""]),
        _row(["---", "---"]),
        _row(["date", audit["date"]]),
        _row(["PostgreSQL", audit["postgresql_server"]]),
        _row(["PostgreSQL durability", _durability(pg.get("durability", {})) or "n/a"]),
        _row(["SQLite (hub/db.py default)", f"synchronous={append['sqlite_hub_default_synchronous']}"]),
        _row(["cell length", f"{append['cell_seconds']} s"]),
        _row(["log sizes", " / ".join(f"{n:,}" for n in proofs["sizes"])]),
        _row(["failures (errors, gaps, bad proofs)", audit["failures"]]),
        _row(["whole audit run", f"{audit['elapsed_s']} s"]),
    ]
    lines = [
        HEADING,
        "",
        "Durable append throughput of the audit log, group commit (`audit.committer.GroupCommitter.record`, one",
        "entry per call like a request) against one transaction and one commit per entry (`audit.service.record`",
        "then COMMIT), with 1, 8 and 64 writer threads in one process; then the cost of Merkle inclusion and",
        "consistency proofs (`audit.tree`) on logs of two sizes, every timed proof verified.",
        "Regenerate with `.venv/bin/python -m bench --only audit` (`--quick`: 2 s cells, 20k/200k logs).",
        "",
        *meta,
        "",
        "## Append throughput (durable commits)",
        "",
        f"Target: ≥ {target:,} entries/s on PostgreSQL with group commit: **{met}**"
        + (f" (best {pg['best_group_entries_per_s']} entries/s)." if "best_group_entries_per_s" in pg else "."),
        "",
        *_append_rows(append),
        "",
        f"- {append['sqlite_note']}",
        "- p50/p99 are per `record()` call (group) or per whole transaction (plain).",
        "",
    ]
    if "where_time_goes" in append:
        lines += ["### Where the time goes (PostgreSQL)", ""]
        lines += [f"- {note}" for note in append["where_time_goes"]]
        profile = append["profile"]
        lines += [
            "",
            (
                f"cProfile, {profile['writers']} writers, {profile['duration_s']} s, committer thread, top "
                f"{len(profile['top_cumulative_committer_thread'])} by cumulative time "
                f"({profile['entries_per_s_under_profiler']} entries/s under the profiler):"
            ),
            "",
            "```",
            *profile["top_cumulative_committer_thread"],
            "```",
            "",
            "All threads merged:",
            "",
            "```",
            *profile["top_cumulative_all_threads"],
            "```",
            "",
        ]
    lines += [
        "## Proof cost",
        "",
        f"{proofs['method']}.",
        "",
        *_proof_rows(proofs),
        "",
        (
            f"Checkpoint integration (the timed blocks are {proofs['timed_integration_new_entries']:,} new "
            "entries in one `integrate()` call, committed):"
        ),
        "",
        *_integration_rows(proofs),
        "",
        "Target: < 1 ms per proof and flat as the log grows 10×:",
        "",
        *_verdicts(proofs),
        *[f"- {note}" for note in proofs.get("notes", [])],
        "",
    ]
    return "\n".join(lines)


def read_section(path: Path, heading: str = HEADING) -> str | None:
    """The section of ``path`` that starts at ``heading`` (a level-1 title) and runs to the next one."""
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8")
    at = text.find(heading)
    if at < 0:
        return None
    end = text.find("\n# ", at + len(heading))
    return text[at:] if end < 0 else text[at : end + 1]


def write_section(path: Path, section: str | None, heading: str = HEADING) -> None:
    """Replace (or append) the ``heading`` section of ``path``, keeping every other section as it is."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    old = read_section(path, heading)
    if old is not None:
        at = text.index(old)
        head, tail = text[:at].rstrip("\n"), text[at + len(old) :].lstrip("\n")
    else:
        head, tail = text.rstrip("\n"), ""
    parts = [p for p in (head, section.strip("\n") if section else "", tail.rstrip("\n")) if p]
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
