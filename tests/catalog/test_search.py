"""Catalogue search: Chinese substrings, filters, facets and paging, on both backends."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.classifications import create_classification, ensure_classifications
from catalog.search import ResourceQuery, normalise, search_resources
from tests.catalog.test_resources import RESOURCES, resource_body

# (name, classification, share type, frequency, provider index, summary)
CORPUS = (
    ("企业基本登记信息", "102", "conditional", "daily", 0, "企业登记注册信息"),
    ("企业年度报告信息", "102", "conditional", "annual", 0, "企业年报公示"),
    ("个体工商户登记信息", "102", "unconditional", "daily", 0, "个体户登记"),
    ("食品生产许可信息", "204", "conditional", "weekly", 0, "食品安全许可"),
    ("户籍人口基本信息", "101", "none", "realtime", 1, "常住人口户籍"),
    ("社会保险参保信息", "203", "conditional", "monthly", 1, "养老保险和医疗保险参保"),
    ("低保对象名单", "3070001", "conditional", "monthly", 1, "最低生活保障 50% 以上"),
    ("ＡＢＣ公司名录_测试", "3070001", "unconditional", "irregular", 0, "全角字母的名称"),
)


def _items(share_type: str) -> list[dict[str, Any]]:
    if share_type == "none":
        return [{"key": "id_number", "name": "公民身份号码", "share_type": "none", "personal": True}]
    return [
        {"key": "code", "name": "统一编码", "share_type": share_type},
        {"key": "address", "name": "经营住所", "share_type": "conditional" if share_type != "unconditional"
         else "unconditional"},
    ]  # fmt: skip


@pytest.fixture
def corpus(ckit: Any, runtime: Any) -> dict[str, dict[str, Any]]:
    """The CORPUS published through the API by two providers; name → created resource."""
    with runtime.session_scope() as session:
        ensure_classifications(session)
        create_classification(session, "307000", "临江市政务部门")
        create_classification(session, "3070001", "临江市民政局")
    providers = [ckit.provider, ckit.department("临江市民政局")]
    made = {}
    for name, node, share_type, frequency, who, summary in CORPUS:
        body = resource_body(
            name=name, classification_code=node, share_type=share_type, update_frequency=frequency, summary=summary,
            items=_items(share_type), keywords=[],
            share_conditions="依法履职需要" if share_type == "conditional" else None,
            legal_basis="《中华人民共和国户口登记条例》" if share_type == "none" else None,
        )  # fmt: skip
        response = ckit.client.post(RESOURCES, json=body, headers=providers[who].headers)
        assert response.status_code == 201, response.text
        made[name] = response.json()
    return made


def find(ckit: Any, **params: Any) -> dict[str, Any]:
    response = ckit.client.get(RESOURCES, params=params, headers=ckit.consumer.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def names(page: dict[str, Any]) -> set[str]:
    return {item["name"] for item in page["items"]}


def test_chinese_substrings(ckit: Any, corpus: dict[str, Any]) -> None:
    assert names(find(ckit, q="登记")) == {"企业基本登记信息", "个体工商户登记信息"}
    assert names(find(ckit, q="企业")) == {"企业基本登记信息", "企业年度报告信息"}
    assert names(find(ckit, q="保")) == {"社会保险参保信息", "低保对象名单"}  # one character
    assert names(find(ckit, q="基本登记信")) == {"企业基本登记信息"}  # 3+ characters: trigram index on PostgreSQL
    assert names(find(ckit, q="养老保险")) == {"社会保险参保信息"}  # found in the summary
    assert names(find(ckit, q="经营住所")) == {n for n, *_ in CORPUS if n != "户籍人口基本信息"}  # item names
    assert names(find(ckit, q="企业 年度")) == {"企业年度报告信息"}  # every term must match
    assert names(find(ckit, q="企业 人口")) == set()
    assert names(find(ckit, q="abc")) == {"ＡＢＣ公司名录_测试"}  # NFKC: full-width letters match ASCII
    assert names(find(ckit, q="ａｂｃ公司")) == {"ＡＢＣ公司名录_测试"}


def test_like_wildcards_are_literal(ckit: Any, corpus: dict[str, Any]) -> None:
    assert names(find(ckit, q="%")) == {"低保对象名单"}
    assert names(find(ckit, q="_")) == {"ＡＢＣ公司名录_测试"}
    assert names(find(ckit, q="50%")) == {"低保对象名单"}
    assert names(find(ckit, q="\\")) == set()


def test_filters(ckit: Any, corpus: dict[str, Any]) -> None:
    civil = corpus["低保对象名单"]["provider_code"]
    assert names(find(ckit, provider=civil)) == {"户籍人口基本信息", "社会保险参保信息", "低保对象名单"}
    assert names(find(ckit, share_type="unconditional")) == {"个体工商户登记信息", "ＡＢＣ公司名录_测试"}
    assert names(find(ckit, share_type="none")) == {"户籍人口基本信息"}
    assert names(find(ckit, update_frequency="monthly")) == {"社会保险参保信息", "低保对象名单"}
    assert names(find(ckit, classification="1")) == {n for n, node, *_ in CORPUS if node.startswith("1")}
    assert names(find(ckit, classification="307")) == {"低保对象名单", "ＡＢＣ公司名录_测试"}  # descendants
    assert names(find(ckit, classification="3070001")) == {"低保对象名单", "ＡＢＣ公司名录_测试"}
    assert names(find(ckit, classification="10")) == {n for n, node, *_ in CORPUS if node.startswith("10")}
    assert names(find(ckit, q="登记", share_type="conditional")) == {"企业基本登记信息"}
    bad = ckit.client.get(RESOURCES, params={"classification": "1x"}, headers=ckit.consumer.headers)
    assert bad.status_code == 422
    for params in ({"limit": 101}, {"limit": 0}, {"offset": -1}, {"share_type": "open"}, {"status": "deleted"}):
        assert ckit.client.get(RESOURCES, params=params, headers=ckit.consumer.headers).status_code == 422, params


def test_status_filter(ckit: Any, corpus: dict[str, Any]) -> None:
    code = corpus["企业年度报告信息"]["code"]
    withdrawn = ckit.client.post(
        f"{RESOURCES}/{code}/withdraw", json={"reason": "停止采集"}, headers=ckit.provider.headers
    )
    assert withdrawn.status_code == 200
    assert names(find(ckit, q="企业")) == {"企业基本登记信息"}
    assert names(find(ckit, q="企业", status="withdrawn")) == {"企业年度报告信息"}
    assert names(find(ckit, q="企业", status="any")) == {"企业基本登记信息", "企业年度报告信息"}


def test_facets_count_the_whole_match(ckit: Any, corpus: dict[str, Any]) -> None:
    page = find(ckit, limit=2)
    assert page["total"] == len(CORPUS) and len(page["items"]) == 2
    facets = {name: {f["value"]: f["count"] for f in values} for name, values in page["facets"].items()}
    assert facets["share_type"] == dict(Counter(share for _, _, share, *_ in CORPUS))
    assert facets["update_frequency"] == dict(Counter(freq for _, _, _, freq, *_ in CORPUS))
    assert facets["classification"] == dict(Counter(node[0] for _, node, *_ in CORPUS))
    assert facets["provider"] == {ckit.provider.code: 5, corpus["低保对象名单"]["provider_code"]: 3}
    labels = {f["value"]: f["label"] for f in page["facets"]["provider"]}
    assert labels[ckit.provider.code] == ckit.provider.name
    assert {f["label"] for f in page["facets"]["classification"]} == {
        "基础信息资源类",
        "主题信息资源类",
        "部门信息资源类",
    }
    assert page["facets"]["share_type"][0] == {"value": "conditional", "label": "有条件共享", "count": 5}

    filtered = find(ckit, q="登记")
    assert filtered["total"] == 2
    assert {f["value"]: f["count"] for f in filtered["facets"]["share_type"]} == {"conditional": 1, "unconditional": 1}
    assert find(ckit, facets="false")["facets"] is None
    assert find(ckit, facets="false", limit=3)["total"] == len(CORPUS)


def test_paging_is_stable(ckit: Any, corpus: dict[str, Any]) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = find(ckit, limit=3, offset=offset, facets="false")
        seen += [item["code"] for item in page["items"]]
        offset = page["next_offset"]
    assert seen == sorted(r["code"] for r in corpus.values())
    assert find(ckit, offset=100)["items"] == []


def test_search_is_a_substring_match(ckit: Any, runtime: Any, corpus: dict[str, Any]) -> None:
    """Property: for any substring of the names and summaries, the hits are exactly the rows containing it."""
    texts = {r["name"]: normalise(f"{r['name']} {r['summary']} {' '.join(i['name'] for i in r['items'])}")
             for r in corpus.values()}  # fmt: skip
    pool = sorted({normalise(n) for n, *_ in CORPUS} | {normalise(s) for *_, s in CORPUS})

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(pool), st.data())
    def check(source: str, data: st.DataObject) -> None:
        start = data.draw(st.integers(0, len(source) - 1))
        end = data.draw(st.integers(start + 1, len(source)))
        term = source[start:end].strip()
        if not term or " " in term:
            return
        with runtime.session_scope() as session:
            found = search_resources(session, ResourceQuery(q=term, limit=100, facets=False))
        assert {item.name for item in found.items} == {name for name, text in texts.items() if term in text}

    check()
