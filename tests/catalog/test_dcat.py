"""DCAT-AP 3 export: SHACL conformance (official 3.0.0 shapes), mappings, paging, modified_since, negotiation."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyshacl
import pytest
from jsonschema import Draft202012Validator
from rdflib import RDF, RDFS, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, FOAF, SH, SKOS

from catalog import dcat
from catalog.dcat_export import parse_modified_since
from hub.errors import InvalidInput
from tests.catalog.catalogkit import CatalogKit, ItemSpec

BASE = "http://testserver/v1/catalog/dcat"
# The official DCAT-AP 3.0.0 shapes (SEMIC, https://semiceu.github.io/DCAT-AP/releases/3.0.0/), vendored byte
# for byte from ../shared/standards/ so a clean clone validates against exactly that file.
SHAPES_FILE = Path(__file__).resolve().parents[1] / "data" / "dcat-ap-3.0.0-SHACL.ttl"
FREQUENCY_KEYS = ("realtime", "daily", "weekly", "monthly", "quarterly", "half_yearly", "yearly", "irregular")
EU = "http://publications.europa.eu/resource/authority/"


@pytest.fixture(scope="module")
def shapes() -> Graph:
    """The official DCAT-AP 3.0.0 SHACL shapes; the suite fails (never skips) without them."""
    assert SHAPES_FILE.is_file(), f"DCAT-AP 3.0.0 shapes expected at {SHAPES_FILE}"
    return Graph().parse(SHAPES_FILE, format="turtle")


def validate(graph: Graph, shapes: Graph) -> tuple[bool, str]:
    # No inference: the export itself must carry every rdf:type the shapes' sh:class checks look for.
    conforms, _results, text = pyshacl.validate(graph, shacl_graph=shapes, inference="none", advanced=True)
    return bool(conforms), str(text)


def violations(graph: Graph, shapes: Graph) -> set[tuple[Any, Any, Any]]:
    """(focus node, path, constraint component) of every SHACL result."""
    _conforms, results, _text = pyshacl.validate(graph, shacl_graph=shapes, inference="none", advanced=True)
    assert isinstance(results, Graph)
    return {
        (
            results.value(r, SH.focusNode),
            results.value(r, SH.resultPath),
            results.value(r, SH.sourceConstraintComponent),
        )
        for r in results.subjects(RDF.type, SH.ValidationResult)
    }


def parse(body: bytes, content_type: str) -> Graph:
    media = content_type.split(";", maxsplit=1)[0].strip()
    if media in {"application/ld+json", "application/json"}:
        with warnings.catch_warnings():
            # rdflib's own JSON-LD parser builds a ConjunctiveGraph internally and warns about itself.
            warnings.simplefilter("ignore", DeprecationWarning)
            return Graph().parse(data=body, format="json-ld")
    return Graph().parse(data=body, format={"text/turtle": "turtle", "application/rdf+xml": "xml"}[media])


def get_graph(ckit: CatalogKit, url: str, *, accept: str = "application/ld+json", headers: Any = None) -> Graph:
    response = ckit.client.get(url, headers={"Accept": accept, **(headers or {})})
    assert response.status_code == 200, response.text
    return parse(response.content, response.headers["content-type"])


def walk(ckit: CatalogKit, url: str, *, headers: Any = None, accept: str = "application/ld+json") -> list[Graph]:
    """Follow hydra:next from ``url`` to the end; returns every page's graph."""
    pages: list[Graph] = []
    next_url: str | None = url
    while next_url is not None:
        assert len(pages) < 50, "paging does not terminate"
        graph = get_graph(ckit, next_url.removeprefix("http://testserver"), headers=headers, accept=accept)
        pages.append(graph)
        view = graph.value(URIRef(BASE), dcat.HYDRA.view)
        assert view is not None
        follow = graph.value(view, dcat.HYDRA.next)
        next_url = str(follow) if follow is not None else None
    return pages


def datasets_of(graph: Graph) -> set[str]:
    return {str(graph.value(node, DCTERMS.identifier)) for node in graph.objects(URIRef(BASE), DCAT.dataset)}


def seed_mixed(ckit: CatalogKit) -> list[str]:
    """Resources of every share type and every update frequency, with keywords and related codes."""
    codes: list[str] = []
    share_types = ("unconditional", "conditional", "none")
    for index, frequency in enumerate(FREQUENCY_KEYS):
        share_type = share_types[index % 3]
        codes.append(
            ckit.insert_resource(
                name=f"测试数据资源{index}",
                share_type=share_type,
                update_frequency=frequency,
                keywords=["企业", f"关键词{index}"],
                related_codes=codes[-1:],
                open_attribute="open",
            )
        )
    return codes


def test_the_whole_catalogue_conforms_to_the_dcat_ap_3_shapes(ckit: CatalogKit, shapes: Graph) -> None:
    codes = seed_mixed(ckit)
    pages = walk(ckit, "/v1/catalog/dcat?page_size=3", headers=ckit.consumer.headers)
    assert len(pages) == 3
    for page in pages:  # each page stands alone for a harvester, so each must conform on its own
        conforms, report = validate(page, shapes)
        assert conforms, report
    union = Graph()
    for page in pages:
        union += page
    conforms, report = validate(union, shapes)
    assert conforms, report
    assert set().union(*(datasets_of(p) for p in pages)) == set(codes)
    for code in codes:  # the per-dataset documents conform too
        conforms, report = validate(get_graph(ckit, f"/v1/catalog/dcat/datasets/{code}", accept="text/turtle"), shapes)
        assert conforms, report
    conforms, report = validate(get_graph(ckit, "/v1/catalog/dcat/themes"), shapes)
    assert conforms, report


def test_a_broken_graph_does_not_conform(ckit: CatalogKit, shapes: Graph) -> None:
    """The validation can fail: a dataset without dct:title, or an access right without its range class."""
    code = ckit.insert_resource(open_attribute="open")
    graph = get_graph(ckit, f"/v1/catalog/dcat/datasets/{code}")
    assert validate(graph, shapes)[0]
    node = URIRef(f"{BASE}/datasets/{code}")

    untitled = Graph() + graph
    untitled.remove((node, DCTERMS.title, None))
    assert not validate(untitled, shapes)[0]
    assert violations(untitled, shapes) == {(node, DCTERMS.title, SH.MinCountConstraintComponent)}

    untyped = Graph() + graph
    untyped.remove((URIRef(f"{EU}access-right/RESTRICTED"), RDF.type, DCTERMS.RightsStatement))
    assert violations(untyped, shapes) == {(node, DCTERMS.accessRights, SH.ClassConstraintComponent)}

    no_publisher_name = Graph() + graph
    publisher = URIRef(f"{BASE}/agents/{ckit.provider.code}")
    no_publisher_name.remove((publisher, FOAF.name, None))
    assert violations(no_publisher_name, shapes) == {(publisher, FOAF.name, SH.MinCountConstraintComponent)}


def test_a_catalogue_with_withdrawn_resources_conforms_under_modified_since(ckit: CatalogKit, shapes: Graph) -> None:
    live = ckit.insert_resource(open_attribute="open")
    gone = ckit.insert_resource(open_attribute="open", status="withdrawn")
    full = get_graph(ckit, "/v1/catalog/dcat")
    assert datasets_of(full) == {live}
    assert (URIRef(BASE), DCAT.record, None) not in full

    since = get_graph(ckit, "/v1/catalog/dcat?modified_since=2020-01-01")
    conforms, report = validate(since, shapes)
    assert conforms, report
    assert datasets_of(since) == {live}
    record = URIRef(f"{BASE}/datasets/{gone}#record")
    assert (URIRef(BASE), DCAT.record, record) in since
    assert since.value(record, FOAF.primaryTopic) == URIRef(f"{BASE}/datasets/{gone}")
    assert since.value(record, dcat.ADMS.status) == URIRef("http://purl.org/adms/changetype/deleted")
    assert (URIRef(f"{BASE}/datasets/{gone}"), RDF.type, DCAT.Dataset) not in since

    response = ckit.client.get(f"/v1/catalog/dcat/datasets/{gone}")
    assert response.status_code == 410
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "dataset_withdrawn"


def test_mappings_share_type_frequency_publisher_theme(ckit: CatalogKit) -> None:
    expected_rights = {"unconditional": "PUBLIC", "conditional": "RESTRICTED", "none": "NON_PUBLIC"}
    expected_frequency = dict(
        zip(
            FREQUENCY_KEYS,
            ("UPDATE_CONT", "DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "ANNUAL_2", "ANNUAL", "IRREG"),
            strict=True,
        )
    )
    codes = seed_mixed(ckit)
    graph = Graph()
    for page in walk(ckit, "/v1/catalog/dcat?page_size=100"):
        graph += page
    for index, code in enumerate(codes):
        node = URIRef(f"{BASE}/datasets/{code}")
        share_type = ("unconditional", "conditional", "none")[index % 3]
        assert graph.value(node, DCTERMS.accessRights) == URIRef(f"{EU}access-right/{expected_rights[share_type]}")
        frequency = expected_frequency[FREQUENCY_KEYS[index]]
        assert graph.value(node, DCTERMS.accrualPeriodicity) == URIRef(f"{EU}frequency/{frequency}")
        assert graph.value(node, DCTERMS.identifier) == Literal(code)
        assert graph.value(node, DCTERMS.title) == Literal(f"测试数据资源{index}", lang="zh")
        assert graph.value(node, DCTERMS.issued) == Literal("2026-01-15", datatype=dcat.XSD.date)
        assert Literal(f"关键词{index}", lang="zh") in set(graph.objects(node, DCAT.keyword))
        publisher = graph.value(node, DCTERMS.publisher)
        assert publisher == URIRef(f"{BASE}/agents/{ckit.provider.code}")
        assert graph.value(publisher, FOAF.name) == Literal(ckit.provider.name, lang="zh")
        theme = graph.value(node, DCAT.theme)
        assert graph.value(theme, SKOS.prefLabel) == Literal("测试项", lang="zh")
        assert graph.value(theme, SKOS.broader) == URIRef(f"{BASE}/themes#3")
        assert graph.value(node, DCTERMS.conformsTo) == URIRef(f"{BASE}/datasets/{code}/schema")
        distribution = graph.value(node, DCAT.distribution)
        if share_type == "none":  # 不予共享: described, but not obtainable
            assert distribution is None
        else:
            assert graph.value(distribution, DCAT.accessURL) == URIRef("http://testserver/v1/exchange/fetch")
            assert graph.value(distribution, DCTERMS.format) == URIRef(f"{EU}file-type/JSON")
            assert graph.value(distribution, DCAT.accessService) == URIRef(f"{BASE}#exchange")
        if index:
            assert graph.value(node, DCTERMS.relation) == URIRef(f"{BASE}/datasets/{codes[index - 1]}")
    conditional = URIRef(f"{BASE}/datasets/{codes[1]}#exchange")
    rights = graph.value(conditional, DCTERMS.rights)
    assert graph.value(rights, RDFS.label) == Literal("仅限办理相关政务服务事项时使用", lang="zh")
    catalog = URIRef(BASE)
    assert graph.value(catalog, DCTERMS.title) == Literal(dcat.CATALOG_TITLE, lang="zh")
    assert graph.value(graph.value(catalog, DCTERMS.publisher), FOAF.name) == Literal(dcat.PUBLISHER_NAME, lang="zh")
    assert graph.value(catalog, DCAT.themeTaxonomy) == URIRef(f"{BASE}/themes")


def test_json_ld_turtle_and_rdf_xml_are_the_same_graph(ckit: CatalogKit) -> None:
    code = seed_mixed(ckit)[1]
    for url in ("/v1/catalog/dcat?page_size=5", f"/v1/catalog/dcat/datasets/{code}", "/v1/catalog/dcat/themes"):
        responses = {media: ckit.client.get(url, headers={"Accept": media}) for media in dcat.RDF_FORMATS}
        assert responses["application/ld+json"].headers["content-type"] == "application/ld+json"
        assert responses["text/turtle"].headers["content-type"] == "text/turtle; charset=utf-8"
        json_ld = json.loads(responses["application/ld+json"].content)
        assert json_ld["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"  # inline: no remote context to fetch
        graphs = [parse(r.content, r.headers["content-type"]) for r in responses.values()]
        assert len(graphs[0]) > 10
        assert all(isomorphic(graphs[0], other) for other in graphs[1:])
    default = ckit.client.get("/v1/catalog/dcat")
    assert default.headers["content-type"] == "application/ld+json"
    assert "Accept" in default.headers["vary"]


def test_next_links_walk_the_whole_catalogue_exactly_once(ckit: CatalogKit) -> None:
    codes = [ckit.insert_resource(name=f"分页资源{i}", open_attribute="open") for i in range(7)]
    pages = walk(ckit, "/v1/catalog/dcat?page_size=3", accept="text/turtle")
    assert [len(datasets_of(p)) for p in pages] == [3, 3, 1]
    seen = [code for page in pages for code in sorted(datasets_of(page))]
    assert sorted(seen) == sorted(codes)
    assert len(seen) == len(set(seen))
    first_view = pages[0].value(URIRef(BASE), dcat.HYDRA.view)
    assert (first_view, RDF.type, dcat.HYDRA.PartialCollectionView) in pages[0]
    assert str(pages[0].value(first_view, dcat.HYDRA.last)) == f"{BASE}?page=3&page_size=3"
    assert str(pages[0].value(first_view, dcat.HYDRA.first)) == f"{BASE}?page=1&page_size=3"
    assert pages[0].value(first_view, dcat.HYDRA.previous) is None
    last_view = pages[2].value(URIRef(BASE), dcat.HYDRA.view)
    assert str(pages[2].value(last_view, dcat.HYDRA.previous)) == f"{BASE}?page=2&page_size=3"
    assert pages[2].value(URIRef(BASE), dcat.HYDRA.totalItems).toPython() == 7

    beyond = get_graph(ckit, "/v1/catalog/dcat?page=9&page_size=3")
    assert datasets_of(beyond) == set()
    for bad in ("page_size=101", "page_size=0", "page=0", "page=x"):
        response = ckit.client.get(f"/v1/catalog/dcat?{bad}")
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith("application/problem+json")


def test_modified_since_filters_by_modification_time(ckit: CatalogKit) -> None:
    old = ckit.insert_resource(open_attribute="open", modified_at=datetime(2026, 1, 10, 8, 0, tzinfo=UTC))
    new = ckit.insert_resource(open_attribute="open", modified_at=datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    assert datasets_of(get_graph(ckit, "/v1/catalog/dcat")) == {old, new}
    assert datasets_of(get_graph(ckit, "/v1/catalog/dcat?modified_since=2026-01-20")) == {new}
    assert datasets_of(get_graph(ckit, "/v1/catalog/dcat?modified_since=2026-01-10T08:00:00Z")) == {old, new}
    # 16:00 in Shanghai is 08:00 UTC: inclusive, so both; one second later only the new one.
    assert datasets_of(get_graph(ckit, "/v1/catalog/dcat?modified_since=2026-01-10T16:00:00%2B08:00")) == {old, new}
    assert datasets_of(get_graph(ckit, "/v1/catalog/dcat?modified_since=2026-01-10T16:00:01%2B08:00")) == {new}
    graph = get_graph(ckit, "/v1/catalog/dcat?modified_since=2026-01-20&page_size=10")
    view = graph.value(URIRef(BASE), dcat.HYDRA.view)
    assert str(view) == f"{BASE}?page=1&page_size=10&modified_since=2026-01-20T00%3A00%3A00Z"
    assert graph.value(URIRef(f"{BASE}/datasets/{new}"), DCTERMS.modified) == Literal(
        "2026-02-01T08:00:00+00:00", datatype=dcat.XSD.dateTime
    )
    for bad in ("yesterday", "2026-13-01", "2026-01-10T25:00", "0001-01-01T00:00:00%2B05:00"):
        response = ckit.client.get(f"/v1/catalog/dcat?modified_since={bad}")
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "modified_since_invalid"


def test_parse_modified_since_forms() -> None:
    assert parse_modified_since("2026-01-15") == datetime(2026, 1, 15, tzinfo=UTC)
    assert parse_modified_since("2026-01-15T08:00:00") == datetime(2026, 1, 15, 8, tzinfo=UTC)
    assert parse_modified_since("2026-01-15T08:00:00+08:00") == datetime(2026, 1, 15, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        parse_modified_since("15/01/2026")


def test_per_dataset_document_in_both_formats_with_slash_in_the_code(ckit: CatalogKit) -> None:
    code = ckit.insert_resource(open_attribute="open", share_type="unconditional")
    assert "/" in code
    encoded = code.replace("/", "%2F")
    graphs = [
        get_graph(ckit, f"/v1/catalog/dcat/datasets/{code}"),
        get_graph(ckit, f"/v1/catalog/dcat/datasets/{code}", accept="text/turtle"),
        get_graph(ckit, f"/v1/catalog/dcat/datasets/{encoded}", accept="text/turtle"),
    ]
    assert isomorphic(graphs[0], graphs[1])
    assert isomorphic(graphs[1], graphs[2])
    node = URIRef(f"{BASE}/datasets/{code}")
    assert (node, RDF.type, DCAT.Dataset) in graphs[0]
    assert list(graphs[0].subjects(RDF.type, DCAT.Dataset)) == [node]
    for missing in ("3990/999999", "nonexistent", "3990/000001/extra"):
        response = ckit.client.get(f"/v1/catalog/dcat/datasets/{missing}")
        assert response.status_code == 404, missing
        assert response.headers["content-type"].startswith("application/problem+json")


def test_schema_document_lists_the_data_items(ckit: CatalogKit) -> None:
    items = (
        ItemSpec("uscc", "统一社会信用代码"),
        ItemSpec("established", "成立日期", data_type="date"),
        ItemSpec("legal_representative", "法定代表人", "conditional", personal=True, description="法定代表人姓名"),
        ItemSpec("internal_note", "内部备注", "none"),
    )
    code = ckit.insert_resource(open_attribute="open", items=items)
    graph = get_graph(ckit, f"/v1/catalog/dcat/datasets/{code}")
    schema_iri = str(graph.value(URIRef(f"{BASE}/datasets/{code}"), DCTERMS.conformsTo))
    assert (URIRef(schema_iri), RDF.type, DCTERMS.Standard) in graph
    response = ckit.client.get(schema_iri.removeprefix("http://testserver"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    document = response.json()
    Draft202012Validator.check_schema(document)
    assert document["$id"] == schema_iri
    assert list(document["properties"]) == ["uscc", "established", "legal_representative", "internal_note"]
    assert document["properties"]["established"] == {
        "title": "成立日期", "type": "string", "format": "date", "x-share-type": "unconditional", "x-personal": False,
    }  # fmt: skip
    legal = document["properties"]["legal_representative"]
    assert legal["x-share-type"] == "conditional"
    assert legal["x-personal"] is True
    assert legal["description"] == "法定代表人姓名"
    assert document["x-resource-code"] == code
    Draft202012Validator(document).validate({"uscc": "x", "established": "2020-01-01"})

    assert ckit.client.get(schema_iri, headers={"Accept": "application/json"}).status_code == 200
    refused = ckit.client.get(schema_iri, headers={"Accept": "text/turtle"})
    assert refused.status_code == 406
    assert refused.json()["code"] == "not_acceptable"
    assert ckit.client.get(f"/v1/catalog/dcat/datasets/{code}9/schema").status_code == 404


def test_content_negotiation_and_406(ckit: CatalogKit) -> None:
    def media(accept: str) -> tuple[int, str]:
        response = ckit.client.get("/v1/catalog/dcat", headers={"Accept": accept})
        return response.status_code, response.headers["content-type"].split(";")[0]

    assert media("*/*") == (200, "application/ld+json")
    assert media("text/*") == (200, "text/turtle")
    assert media("application/ld+json;q=0, text/turtle;q=0.5") == (200, "text/turtle")
    assert media("text/turtle;q=0.4, application/rdf+xml;q=0.9") == (200, "application/rdf+xml")
    assert media("application/json") == (200, "application/json")
    assert media("text/html, application/xhtml+xml") == (406, "application/problem+json")
    assert media("text/turtle;q=0") == (406, "application/problem+json")
    refused = ckit.client.get("/v1/catalog/dcat/themes", headers={"Accept": "application/pdf"})
    assert refused.status_code == 406
    assert refused.json()["code"] == "not_acceptable"
    assert "text/turtle" in refused.json()["detail"]


def test_public_callers_see_only_publicly_listable_resources(ckit: CatalogKit) -> None:
    """No token: 开放属性 open/conditional only; a catalog:read token: everything published."""
    public = ckit.insert_resource(open_attribute="open")
    on_request = ckit.insert_resource(open_attribute="conditional")
    internal = ckit.insert_resource(open_attribute="closed", share_type="none")
    assert datasets_of(get_graph(ckit, "/v1/catalog/dcat")) == {public, on_request}
    seen = datasets_of(get_graph(ckit, "/v1/catalog/dcat", headers=ckit.consumer.headers))
    assert seen == {public, on_request, internal}

    assert ckit.client.get(f"/v1/catalog/dcat/datasets/{internal}").status_code == 404
    assert ckit.client.get(f"/v1/catalog/dcat/datasets/{internal}/schema").status_code == 404
    hidden = ckit.client.get(f"/v1/catalog/dcat/datasets/{internal}", headers=ckit.consumer.headers)
    assert hidden.status_code == 200
    assert ckit.client.get(f"/v1/catalog/dcat/datasets/{internal}/schema", headers=ckit.consumer.headers).is_success


def test_a_bad_or_underprivileged_token_is_refused_not_downgraded(ckit: CatalogKit) -> None:
    ckit.insert_resource(open_attribute="open")
    forged = ckit.client.get("/v1/catalog/dcat", headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401
    assert forged.headers["content-type"].startswith("application/problem+json")
    other = ckit.department("临江市档案馆", "licence:read")
    refused = ckit.client.get("/v1/catalog/dcat", headers=other.headers)
    assert refused.status_code == 403
    assert ckit.client.get("/v1/catalog/dcat", headers=ckit.consumer.headers).status_code == 200


def test_agent_document(ckit: CatalogKit, shapes: Graph) -> None:
    ckit.insert_resource(open_attribute="open")
    graph = get_graph(ckit, f"/v1/catalog/dcat/agents/{ckit.provider.code}")
    agent = URIRef(f"{BASE}/agents/{ckit.provider.code}")
    assert graph.value(agent, FOAF.name) == Literal(ckit.provider.name, lang="zh")
    assert validate(graph, shapes)[0]
    assert ckit.client.get(f"/v1/catalog/dcat/agents/{ckit.consumer.code}").status_code == 404  # provides nothing


def test_export_refuses_a_resource_missing_mandatory_fields(ckit: CatalogKit) -> None:
    """The model makes the fields non-null; a blank one still stops the export instead of a bad dataset."""
    code = ckit.insert_resource(open_attribute="open", summary="   ")
    response = ckit.client.get(f"/v1/catalog/dcat/datasets/{code}")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "dcat_metadata_incomplete"
    assert body["missing"] == ["summary"]
    assert ckit.client.get("/v1/catalog/dcat").json()["code"] == "dcat_metadata_incomplete"


def test_require_mandatory_names_each_missing_field() -> None:
    record = dcat.DatasetRecord(
        code="3990/000001", name="企业登记", summary="摘要", provider_code="11330100MB0000000X",
        provider_name="市场监管局",
        classification_code="3990", share_type="conditional", share_conditions=None, update_frequency="daily",
        publish_date=date(2026, 1, 15), modified_at=datetime(2026, 1, 15, tzinfo=UTC), version=1,
    )  # fmt: skip
    dcat.require_mandatory(record)
    for field, value in (("name", ""), ("provider_name", " "), ("publish_date", None), ("share_type", "shared")):
        broken = replace(record, **{field: value})
        with pytest.raises(dcat.DatasetMetadataIncomplete) as caught:
            dcat.add_dataset(Graph(), dcat.Iris("http://testserver"), broken)
        assert caught.value.extensions["missing"] == [field]


def test_every_frequency_and_share_type_has_a_mapping() -> None:
    assert set(FREQUENCY_KEYS) <= set(dcat.FREQUENCIES)
    assert set(dcat.FREQUENCIES.values()) == set(dcat.FREQUENCY_LABELS)
    assert set(dcat.ACCESS_RIGHTS) == {"unconditional", "conditional", "none"}
