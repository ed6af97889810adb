"""Grant decision time (issue 6 benchmark): ``check_grant`` from a warm cache against a database lookup per call.

Seeds ~1,000 grants (50 consumers × 20 resources of 10 providers, each for one matter) straight into the
tables of a migrated database, warms a ``GrantCache`` with one pass, then times ≥ 100,000 decisions in a
shuffled order over all grants; the same decisions run again with the cache disabled (one SELECT per
call) and, for information, with a daily quota spent as the exchange spends it (lock and update per
call). Target: < 0.2 ms warm. Nothing is asserted; the figures are reported.

``.venv/bin/python -m bench.catalog_grants --database sqlite|postgresql`` prints JSON (PostgreSQL: a
throwaway database, dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from catalog.grant_check import GrantCache, check_grant, lock_usage, note_grants_changed, set_usage
from catalog.models import Classification, DataItem, Grant, Matter, Resource
from catalog.workdays import local_day
from hub import migrate
from hub.clock import utcnow
from hub.codes import make_uscc
from hub.db import make_engine, make_session_factory
from hub.identity.models import Department

TARGET_MS = 0.2
CONSUMERS = 50
PROVIDERS = 10
RESOURCES = 20  # per consumer: 50 × 20 = 1,000 grants
ITEMS = ("uscc", "name", "legal_representative", "registered_capital", "address", "scope", "status", "date")
WARM_CALLS = 100_000
UNCACHED_CALLS = 20_000
QUOTA_CALLS = 10_000
COMMIT_EVERY = 1_000  # calls per transaction (a request is one; this keeps snapshots short)
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
Check = tuple[str, str, str, list[str]]


def _uscc(n: int) -> str:
    org = "".join(ALPHABET[(n // len(ALPHABET) ** k) % len(ALPHABET)] for k in range(8))
    return make_uscc("1", "1", "330100", org)


def seed(engine: Engine) -> list[Check]:
    """Departments, resources, matters and one grant per (consumer, resource); the checks to run."""
    now = utcnow()
    providers = [_uscc(10_000 + p) for p in range(PROVIDERS)]
    consumers = [_uscc(20_000 + c) for c in range(CONSUMERS)]
    checks: list[Check] = []
    with make_session_factory(engine)() as session:
        for code in providers + consumers:
            session.add(Department(code=code, name=f"部门{code[-6:]}", level="municipal", area_code="330100",
                                   active=True, created_at=now))  # fmt: skip
        session.add(Classification(code="3", name="部门类", level=1, parent_code=None, next_sequence=1))
        session.add(Classification(code="3991", name="基准测试", level=2, parent_code="3", next_sequence=1))
        session.flush()
        resources = [_resource(r, providers[r % PROVIDERS], now) for r in range(RESOURCES)]
        session.add_all(resources)
        session.flush()
        for resource in resources:
            for position, key in enumerate(ITEMS):
                session.add(DataItem(resource_code=resource.code, position=position, key=key, name=key,
                                     data_type="string", share_type="unconditional", personal=False))  # fmt: skip
        for c, consumer in enumerate(consumers):
            matter = f"BENCH{c:06d}MATTER"
            session.add(Matter(code=matter, name=f"事项{c}", department_code=consumer, status="active",
                               created_at=now, modified_at=now))  # fmt: skip
            session.flush()
            for r, resource in enumerate(resources):
                items = list(ITEMS[: 4 + (c + r) % 4])
                session.add(
                    Grant(
                        id=f"gr_bench_{c:03d}_{r:03d}", consumer_code=consumer,
                        provider_code=resource.provider_code, resource_code=resource.code, items=items,
                        matter_codes=[matter], purpose="基准测试", legal_basis="基准测试", consent_required=False,
                        valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=365),
                        quota_per_day=None, status="active", status_reason=None, request_id=None, revision=1,
                        created_at=now, modified_at=now,
                    )
                )  # fmt: skip
                checks.append((consumer, resource.code, matter, items[:3]))
        session.commit()
    return checks


def _resource(r: int, provider: str, now: Any) -> Resource:
    return Resource(
        code=f"3991/{r + 1:06d}", classification_code="3991", sequence=r + 1, name=f"基准资源{r}",
        provider_code=provider, provider_name="基准提供部门", summary="基准测试", format="数据库",
        share_type="unconditional", share_method="api", open_attribute="closed", update_frequency="daily",
        publish_date=date(2026, 1, 1), related_codes=[], contains_personal_data=False, keywords=[], version=1,
        status="published", search_text="", created_at=now, modified_at=now,
    )  # fmt: skip


def _time(
    engine: Engine, cache: GrantCache, checks: list[Check], calls: int, *, spend: bool = False
) -> dict[str, float]:
    """Time ``calls`` decisions; with ``spend``, each also counts its unit as the exchange does (lock, update)."""
    order = [checks[i % len(checks)] for i in range(calls)]
    random.Random(6).shuffle(order)  # noqa: S311 - a reproducible call order, not a secret
    samples: list[int] = []
    at = utcnow()
    day = local_day(at)
    clock: Callable[[], int] = time.perf_counter_ns
    session = make_session_factory(engine)()
    try:
        for n, (consumer, resource, matter, fields) in enumerate(order):
            start = clock()
            decision = check_grant(session, cache, consumer_code=consumer, resource_code=resource,
                                   matter_code=matter, fields=fields, at=at)  # fmt: skip
            if spend:
                used = lock_usage(session, [decision.grant_id], day)
                set_usage(session, {decision.grant_id: used[decision.grant_id] + 1}, day)
            samples.append(clock() - start)
            if n % COMMIT_EVERY == COMMIT_EVERY - 1:
                session.commit()
        session.commit()
    finally:
        session.close()
    return _summary(samples)


def _summary(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1000

    return {
        "calls": len(ordered),
        "p50_us": round(pct(0.50), 2),
        "p99_us": round(pct(0.99), 2),
        "mean_us": round(statistics.fmean(ordered) / 1000, 2),
        "max_us": round(ordered[-1] / 1000, 2),
    }


def run(database_url: str, *, warm_calls: int = WARM_CALLS, uncached_calls: int = UNCACHED_CALLS) -> dict[str, Any]:
    """Seed, warm, time; returns the figures (µs) and whether the warm decision meets the 0.2 ms target."""
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        checks = seed(engine)
        cache = GrantCache(follow_local_changes=False)
        with make_session_factory(engine)() as session:
            _warm(session, cache, checks)
        loads = cache.loads
        warm = _time(engine, cache, checks, warm_calls)
        uncached = _time(engine, GrantCache(enabled=False, follow_local_changes=False), checks, uncached_calls)
        quota_checks = _with_quota(engine, checks)
        quota_cache = GrantCache(follow_local_changes=False)
        with make_session_factory(engine)() as session:
            _warm(session, quota_cache, quota_checks)
        quota = _time(engine, quota_cache, quota_checks, QUOTA_CALLS, spend=True)
        return {
            "backend": engine.dialect.name,
            "grants": len(checks),
            "warm": warm | {"cache_loads_during_run": cache.loads - loads},
            "uncached": uncached,
            "warm_with_quota": quota,
            "ratio_p50": round(uncached["p50_us"] / warm["p50_us"], 1),
            "ratio_mean": round(uncached["mean_us"] / warm["mean_us"], 1),
            "target_ms": TARGET_MS,
            "warm_under_target": warm["p99_us"] < TARGET_MS * 1000,
            "note": "warm_with_quota adds the exchange's quota step per call: an INSERT … ON CONFLICT DO NOTHING, "
            "a SELECT … FOR UPDATE and an UPDATE of the day's counter",
        }
    finally:
        engine.dispose()


def _warm(session: Session, cache: GrantCache, checks: list[Check]) -> None:
    at = utcnow()
    for consumer, resource, matter, fields in checks:
        check_grant(session, cache, consumer_code=consumer, resource_code=resource, matter_code=matter,
                    fields=fields, at=at)  # fmt: skip
    session.commit()


def _with_quota(engine: Engine, checks: list[Check]) -> list[Check]:
    """The same grants, now with a daily quota large enough never to be reached."""
    with make_session_factory(engine)() as session:
        session.execute(update(Grant).values(quota_per_day=10_000_000, revision=Grant.revision + 1))
        note_grants_changed(session)
        session.commit()
    return checks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.catalog_grants", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--calls", type=int, default=WARM_CALLS, help="warm decisions to time (default 100000)")
    parser.add_argument("--uncached-calls", type=int, default=UNCACHED_CALLS)
    args = parser.parse_args(argv)
    if args.database == "postgresql":
        from bench.hub_setup import throwaway_database  # noqa: PLC0415 - psycopg only when asked for

        with throwaway_database() as url:
            result = run(url, warm_calls=args.calls, uncached_calls=args.uncached_calls)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            result = run(f"sqlite:///{Path(scratch) / 'grants.db'}", warm_calls=args.calls,
                         uncached_calls=args.uncached_calls)  # fmt: skip
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
