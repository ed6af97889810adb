"""Catalogue search benchmark: 50,000 resources and 500,000 data items, search latency p50/p99.

``run(database_url)`` builds the schema with the real migrations, bulk-loads resources with Chinese names
drawn from word lists (SQLAlchemy Core, batched), then times ``catalog.search.search_resources`` — the
service function the API calls, not HTTP — for substring, filtered and faceted queries. The baseline is a
bare ``SELECT code, name FROM catalog_resources LIMIT 20`` measured in the same run; every query reports
its ratio to it.

Standalone: ``.venv/bin/python -m bench.catalog_search --database sqlite|postgresql`` prints JSON
(PostgreSQL runs in a throwaway database, bench/hub_setup.py ``throwaway_database``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text, update
from sqlalchemy.orm import Session

from catalog.classifications import BASE_TREE, ensure_classifications, level_of, parent_of
from catalog.models import Classification, DataItem, Resource
from catalog.search import ResourceQuery, search_resources, search_text
from hub import migrate
from hub.clock import utcnow
from hub.codes import USCC_ALPHABET, make_uscc
from hub.db import make_engine, make_session_factory
from hub.identity.models import Department

RESOURCES = 50_000
ITEMS_PER_RESOURCE = 10
PROVIDERS = 120
BATCH = 5_000
RUNS = 60

SUBJECTS = (
    "企业", "个体工商户", "农民专业合作社", "社会组织", "事业单位", "户籍人口", "流动人口", "退役军人", "残疾人",
    "低保对象", "特困人员", "学生", "教师", "医师", "护士", "药品", "医疗器械", "食品", "特种设备", "道路运输车辆",
    "船舶", "建设工程", "房屋", "土地", "不动产", "林地", "河道", "排污单位", "危险化学品", "公共场所", "养老机构",
    "幼儿园", "律师", "公证员", "出租汽车", "网约车", "驾驶员", "纳税人", "参保人员", "失业人员",
)  # fmt: skip
MATTERS = (
    "登记", "注册", "许可", "备案", "年报", "变更", "注销", "行政处罚", "监督检查", "信用评价", "参保", "缴费",
    "补贴发放", "资格认定", "执业注册", "审批", "验收", "检验检测", "投诉举报", "奖励表彰", "证照", "抽查",
)  # fmt: skip
SUFFIXES = ("信息", "数据", "名录", "台账", "明细", "目录", "统计数据", "基本信息")
FIELDS = (
    "统一社会信用代码", "名称", "法定代表人", "注册资本", "成立日期", "住所", "经营范围", "登记机关", "核准日期",
    "登记状态", "公民身份号码", "姓名", "性别", "民族", "出生日期", "户籍地址", "联系电话", "证书编号", "发证机关",
    "发证日期", "有效期至", "许可事项", "许可范围", "检查日期", "检查结果", "处罚决定书文号", "处罚依据", "处罚金额",
    "参保险种", "缴费基数", "缴费月份", "补贴金额", "发放日期", "不动产单元号", "坐落", "面积", "用途", "权利人",
    "车牌号码", "车辆类型", "核定载客", "从业资格证号", "执业类别", "执业范围", "执业地点", "学历", "专业",
    "所属行业", "行政区划代码", "经度", "纬度", "备注",
)  # fmt: skip
SHARE_TYPES = ("unconditional", "conditional", "conditional", "none")
FREQUENCIES = ("realtime", "daily", "weekly", "monthly", "quarterly", "annual", "irregular")
FORMATS = ("数据库", "电子表格", "服务接口", "电子文件")

# (label, query); ``{provider}`` is replaced by the most prolific provider's code.
QUERIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("substring_2_common", {"q": "登记"}),
    ("substring_2_rare", {"q": "公证"}),
    ("substring_4", {"q": "企业年报"}),
    ("substring_item_name", {"q": "法定代表人"}),
    ("substring_no_match", {"q": "量子计算"}),
    ("two_terms", {"q": "食品 许可"}),
    ("filter_share_type", {"share_type": "unconditional"}),
    ("filter_provider_frequency", {"provider": "{provider}", "update_frequency": "daily"}),
    ("filter_classification", {"classification": "2"}),
    ("substring_and_filters", {"q": "参保", "share_type": "conditional", "classification": "3"}),
    ("browse_all", {}),
    ("browse_page_100", {"offset": 2000}),
)


def _words(rng: random.Random) -> tuple[str, str]:
    subject, matter = rng.choice(SUBJECTS), rng.choice(MATTERS)
    return f"{subject}{matter}{rng.choice(SUFFIXES)}", f"{subject}{matter}相关的政务数据，由提供部门按更新周期维护。"


def _nodes() -> list[tuple[str, str]]:
    """The base tree plus 目 under every 项, so resources sit at levels 2 and 3."""
    nodes = [(code, name) for code, name in BASE_TREE]
    nodes += [(f"{code}{n:03d}", f"{name}子目{n}") for code, name in BASE_TREE if len(code) == 3 for n in (1, 2)]
    return nodes


def load(engine: Engine, resources: int, items_per_resource: int, seed: int = 6) -> dict[str, Any]:
    """Bulk-load departments, classifications, resources and items; returns counts and the load time."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not a secret
    started = time.perf_counter()
    now = utcnow()
    departments = [
        {"code": make_uscc("1", "1", "330100", "".join(rng.choice(USCC_ALPHABET) for _ in range(8))),
         "name": f"临江市第{n}基准部门", "level": "municipal", "area_code": "330100", "active": True, "created_at": now}
        for n in range(PROVIDERS)
    ]  # fmt: skip
    nodes = _nodes()
    leaves = [code for code, _ in nodes if level_of(code) >= 2]
    sequence = dict.fromkeys(leaves, 0)
    with Session(engine) as session:
        session.execute(insert(Department), departments)
        ensure_classifications(session)
        existing = {code for code, _ in BASE_TREE}
        session.execute(
            insert(Classification),
            [{"code": c, "name": n, "level": level_of(c), "parent_code": parent_of(c), "next_sequence": 1}
             for c, n in nodes if c not in existing],
        )  # fmt: skip
        session.commit()
    with engine.begin() as conn:
        for first in range(0, resources, BATCH):
            rows, items = [], []
            for _ in range(first, min(first + BATCH, resources)):
                node = rng.choice(leaves)
                sequence[node] += 1
                code = f"{node}/{sequence[node]:06d}"
                provider = departments[min(int(rng.paretovariate(1.2)) - 1, PROVIDERS - 1)]
                name, summary = _words(rng)
                share = rng.choice(SHARE_TYPES)
                fields = rng.sample(FIELDS, items_per_resource)
                item_share = {"unconditional": ("unconditional",), "none": ("none",)}.get(
                    share, ("unconditional", "conditional", "none")
                )
                rows.append({
                    "code": code, "classification_code": node, "sequence": sequence[node], "name": name,
                    "provider_code": provider["code"], "provider_name": provider["name"], "summary": summary,
                    "format": rng.choice(FORMATS), "share_type": share,
                    "share_conditions": "依法履职需要" if share == "conditional" else None,
                    "legal_basis": "法律法规规定不予共享" if share == "none" else None, "share_method": "api",
                    "open_attribute": "closed", "update_frequency": rng.choice(FREQUENCIES),
                    "publish_date": date(2026, 1, 1), "related_codes": [], "contains_personal_data": False,
                    "licence_type_code": None, "keywords": [], "version": 1,
                    "status": "published" if rng.random() > 0.02 else "withdrawn",
                    "search_text": search_text(name, summary, [], fields), "created_at": now, "modified_at": now,
                })  # fmt: skip
                # conditional resources start with a conditional item (catalog.resources consistency rule)
                items += [
                    {"resource_code": code, "position": p, "key": f"f{p}", "name": field, "data_type": "string",
                     "length": None, "description": None,
                     "share_type": "conditional" if share == "conditional" and p == 0 else rng.choice(item_share),
                     "share_conditions": None, "personal": False}
                    for p, field in enumerate(fields)
                ]  # fmt: skip
            conn.execute(insert(Resource), rows)
            conn.execute(insert(DataItem), items)
    with engine.begin() as conn:
        for node, last in sequence.items():
            conn.execute(update(Classification).where(Classification.code == node).values(next_sequence=last + 1))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return {
        "resources": resources,
        "data_items": resources * items_per_resource,
        "providers": PROVIDERS,
        "load_seconds": round(time.perf_counter() - started, 1),
        "top_provider": departments[0]["code"],
    }


def _timed(call: Callable[[], object], runs: int) -> dict[str, float]:
    call()  # warm the caches and the plan
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
    }


def measure(engine: Engine, top_provider: str, runs: int) -> dict[str, Any]:
    factory = make_session_factory(engine)
    with factory() as session:
        bare = text("SELECT code, name FROM catalog_resources LIMIT 20")
        baseline = _timed(lambda: session.execute(bare).all(), runs)
        session.rollback()
        results: dict[str, Any] = {}
        for label, params in QUERIES:
            filled: dict[str, Any] = {k: (top_provider if v == "{provider}" else v) for k, v in params.items()}
            for facets in (False, True):
                query = ResourceQuery(**filled, facets=facets)
                figures = _timed(lambda q=query: search_resources(session, q), runs)  # type: ignore[misc]
                found = search_resources(session, query)
                session.rollback()
                figures |= {
                    "total": found.total,
                    "p50_vs_baseline": round(figures["p50_ms"] / baseline["p50_ms"], 1),
                }
                results[f"{label}{'_faceted' if facets else ''}"] = figures
    return {"baseline_select_limit_20": baseline, "queries": results}


def run(database_url: str, *, resources: int = RESOURCES, items_per_resource: int = ITEMS_PER_RESOURCE,
        runs: int = RUNS) -> dict[str, Any]:  # fmt: skip
    """Load the catalogue into ``database_url`` (an empty database) and time the searches."""
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        loaded = load(engine, resources, items_per_resource)
        figures = measure(engine, loaded.pop("top_provider"), runs)
        return {"backend": engine.dialect.name, "runs_per_query": runs, **loaded, **figures}
    finally:
        engine.dispose()


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """An empty database of ``kind`` for one benchmark run, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as scratch:
            yield f"sqlite:///{Path(scratch) / 'catalog.db'}"
        return
    from bench.hub_setup import throwaway_database  # noqa: PLC0415 - needs psycopg only for PostgreSQL

    with throwaway_database() as url:
        yield url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.catalog_search", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--resources", type=int, default=RESOURCES)
    parser.add_argument("--items-per-resource", type=int, default=ITEMS_PER_RESOURCE)
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args(argv)
    with scratch_database(args.database) as url:
        result = run(url, resources=args.resources, items_per_resource=args.items_per_resource, runs=args.runs)
    json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
