"""DCAT-AP 3.0.0 view of the catalogue: resource snapshots in, an RDF graph out (pure; no sessions, no HTTP).

Every node gets an IRI under the hub's public URL (hash IRIs for the parts of a dataset), so a page or a
dataset document has no blank nodes and the same data always yields the same graph. Concepts of the EU
vocabularies that a property's range needs (access rights, frequencies, file types, language) are typed in
the export itself, so the export conforms to the DCAT-AP 3.0.0 SHACL shapes without fetching anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, SKOS

from hub.errors import DomainError

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
EU = "http://publications.europa.eu/resource/authority/"
ACCESS_RIGHT = Namespace(f"{EU}access-right/")
FREQUENCY = Namespace(f"{EU}frequency/")
FILE_TYPE = Namespace(f"{EU}file-type/")
LANGUAGE = Namespace(f"{EU}language/")
CHANGE_TYPE = Namespace("http://purl.org/adms/changetype/")
IANA_MEDIA_TYPES = "http://www.iana.org/assignments/media-types/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DCAT_VERSION = URIRef("http://www.w3.org/ns/dcat#version")  # DCAT 3; rdflib's closed DCAT namespace is DCAT 2
ZH = "zh"

# Until settings carry them, the catalogue is titled and published under these names (see the report of
# issue 6: HUB_CATALOG_TITLE / HUB_CATALOG_PUBLISHER would let a deployment name its operating authority).
CATALOG_TITLE = "政务数据资源目录"
CATALOG_DESCRIPTION = (
    "本平台汇聚的政务数据资源目录：各部门提供的数据资源及其信息项、共享类型、更新周期与共享方式，"
    "按 DCAT-AP 3.0.0 发布，供目录汇聚（harvesting）使用。"
)
PUBLISHER_NAME = "政务数据共享交换平台"
THEME_SCHEME_TITLE = "政务数据资源目录分类（类、项、目、细目）"
EXCHANGE_SERVICE_TITLE = "政务数据共享交换服务"

# 共享类型 → EU access-right authority table. 无条件共享 is open to every department without conditions;
# DCAT-AP has no "inside government only" level, so it maps to PUBLIC as the issue asks.
ACCESS_RIGHTS: Mapping[str, str] = {"unconditional": "PUBLIC", "conditional": "RESTRICTED", "none": "NON_PUBLIC"}
ACCESS_RIGHT_LABELS: Mapping[str, tuple[str, str]] = {
    "PUBLIC": ("public", "公开"),
    "RESTRICTED": ("restricted", "受限"),
    "NON_PUBLIC": ("non-public", "非公开"),
}

# 更新周期 → EU frequency authority table. The keys are assumed (English, plus the Chinese labels of
# 政务信息资源目录编制指南) until catalog.schemas fixes the vocabulary; an unknown key omits the
# (optional) dct:accrualPeriodicity rather than guess.
FREQUENCIES: Mapping[str, str] = {
    "realtime": "UPDATE_CONT", "实时": "UPDATE_CONT",
    "daily": "DAILY", "每日": "DAILY",
    "weekly": "WEEKLY", "每周": "WEEKLY",
    "monthly": "MONTHLY", "每月": "MONTHLY",
    "quarterly": "QUARTERLY", "每季度": "QUARTERLY",
    "half_yearly": "ANNUAL_2", "每半年": "ANNUAL_2",
    "yearly": "ANNUAL", "每年": "ANNUAL",
    "irregular": "IRREG", "不定期": "IRREG",
}  # fmt: skip
FREQUENCY_LABELS: Mapping[str, tuple[str, str]] = {
    "UPDATE_CONT": ("continuously updated", "实时"),
    "DAILY": ("daily", "每日"),
    "WEEKLY": ("weekly", "每周"),
    "MONTHLY": ("monthly", "每月"),
    "QUARTERLY": ("quarterly", "每季度"),
    "ANNUAL_2": ("semiannual", "每半年"),
    "ANNUAL": ("annual", "每年"),
    "IRREG": ("irregular", "不定期"),
}

# Data item types → JSON Schema 2020-12 (the dialect licence face schemas use too).
JSON_SCHEMA_TYPES: Mapping[str, dict[str, str]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "boolean": {"type": "boolean"},
    "binary": {"type": "string", "contentEncoding": "base64"},
}

JSONLD_CONTEXT: dict[str, str] = {
    "dcat": str(DCAT),
    "dct": str(DCTERMS),
    "foaf": str(FOAF),
    "skos": str(SKOS),
    "rdfs": str(RDFS),
    "xsd": str(XSD),
    "adms": str(ADMS),
    "hydra": str(HYDRA),
}


class DatasetMetadataIncomplete(DomainError):
    """A resource lacks a field DCAT-AP requires: refuse rather than publish a non-conformant dataset."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "dcat_metadata_incomplete"
    title: ClassVar[str] = "A resource lacks metadata DCAT-AP 3 requires; it was not exported"


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    """What the export needs of one resource (its current version)."""

    code: str
    name: str
    summary: str
    provider_code: str
    provider_name: str
    classification_code: str
    share_type: str
    share_conditions: str | None
    update_frequency: str
    publish_date: date | None
    modified_at: datetime
    version: int
    keywords: tuple[str, ...] = ()
    related_codes: tuple[str, ...] = ()
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class ThemeRecord:
    """A classification node (类/项/目/细目), published as a SKOS concept."""

    code: str
    name: str
    level: int
    parent_code: str | None


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """A data item (信息项) as the schema document lists it."""

    key: str
    name: str
    data_type: str
    share_type: str
    length: int | None = None
    description: str | None = None
    personal: bool = False


@dataclass(frozen=True, slots=True)
class PageView:
    """Hydra paging of one catalogue page: this page's URL, its neighbours and the listing's size."""

    url: str
    first: str
    last: str
    total: int
    next: str | None = None
    previous: str | None = None


@dataclass(frozen=True, slots=True)
class Iris:
    """The IRIs the export mints, all under ``{public_url}/v1/catalog/dcat``: stable, and dereferenceable."""

    public_url: str

    @property
    def base(self) -> str:
        return f"{self.public_url.rstrip('/')}/v1/catalog/dcat"

    @property
    def catalog(self) -> URIRef:
        return URIRef(self.base)

    @property
    def publisher(self) -> URIRef:
        return URIRef(f"{self.base}#publisher")

    @property
    def exchange_service(self) -> URIRef:
        return URIRef(f"{self.base}#exchange")

    @property
    def exchange_endpoint(self) -> URIRef:
        return URIRef(f"{self.public_url.rstrip('/')}/v1/exchange")

    @property
    def fetch_endpoint(self) -> URIRef:
        return URIRef(f"{self.public_url.rstrip('/')}/v1/exchange/fetch")

    @property
    def api_description(self) -> URIRef:
        return URIRef(f"{self.public_url.rstrip('/')}/openapi.json")

    @property
    def theme_scheme(self) -> URIRef:
        return URIRef(f"{self.base}/themes")

    def theme(self, code: str) -> URIRef:
        return URIRef(f"{self.base}/themes#{quote(code, safe='')}")

    def agent(self, department_code: str) -> URIRef:
        return URIRef(f"{self.base}/agents/{quote(department_code, safe='')}")

    def dataset(self, code: str) -> URIRef:
        # Resource codes contain "/" (classification code + sequence): kept literally, served by a path route.
        return URIRef(f"{self.base}/datasets/{quote(code, safe='/')}")

    def schema(self, code: str) -> URIRef:
        return URIRef(f"{self.dataset(code)}/schema")

    def record(self, code: str) -> URIRef:
        return URIRef(f"{self.dataset(code)}#record")

    def distribution(self, code: str) -> URIRef:
        return URIRef(f"{self.dataset(code)}#exchange")

    def conditions(self, code: str) -> URIRef:
        return URIRef(f"{self.dataset(code)}#share-conditions")


def new_graph() -> Graph:
    graph = Graph()
    for prefix, namespace in JSONLD_CONTEXT.items():
        graph.bind(prefix, Namespace(namespace), override=True)
    return graph


def require_mandatory(dataset: DatasetRecord) -> None:
    """Raise unless every field DCAT-AP 3 needs for this dataset is present and not blank.

    dct:title and dct:description are mandatory (DCAT-AP 3.0.0 §Dataset); publisher and issued date are
    what the Chinese catalogue requires (提供方, 发布日期) and what harvesters rely on.
    """
    required = {
        "code": dataset.code,
        "name": dataset.name,
        "summary": dataset.summary,
        "provider_code": dataset.provider_code,
        "provider_name": dataset.provider_name,
        "classification_code": dataset.classification_code,
    }
    missing = [name for name, value in required.items() if not (value and value.strip())]
    if dataset.publish_date is None:
        missing.append("publish_date")
    if dataset.share_type not in ACCESS_RIGHTS:
        missing.append("share_type")
    if missing:
        raise DatasetMetadataIncomplete(
            f"resource {dataset.code or '(no code)'} lacks {', '.join(missing)}; it is left out of the export",
            resource_code=dataset.code,
            missing=missing,
        )


def _zh(text: str) -> Literal:
    return Literal(text, lang=ZH)


def _modified(moment: datetime) -> Literal:
    return Literal(moment.astimezone(UTC).isoformat(), datatype=XSD.dateTime)


def _vocabulary_concept(
    graph: Graph, concept: URIRef, *, kind: URIRef, scheme: URIRef, labels: tuple[str, str]
) -> None:
    # DCAT-AP 3.0.0 SHACL checks the range class (sh:class) and skos:prefLabel of every concept it meets.
    graph.add((concept, RDF.type, kind))
    graph.add((concept, RDF.type, SKOS.Concept))
    graph.add((concept, SKOS.inScheme, scheme))
    graph.add((concept, SKOS.prefLabel, Literal(labels[0], lang="en")))
    graph.add((concept, SKOS.prefLabel, _zh(labels[1])))


def _resource(graph: Graph, iri: URIRef) -> URIRef:
    # Properties ranged rdfs:Resource (accessURL, endpointURL, relation) are checked with sh:class, which
    # looks for an explicit rdf:type when no inference runs.
    graph.add((iri, RDF.type, RDFS.Resource))
    return iri


def add_agent(graph: Graph, iris: Iris, code: str, name: str) -> URIRef:
    agent = iris.agent(code)
    graph.add((agent, RDF.type, FOAF.Agent))
    graph.add((agent, FOAF.name, _zh(name)))
    graph.add((agent, DCTERMS.identifier, Literal(code)))  # the department's USCC (GB 32100)
    return agent


def add_themes(graph: Graph, iris: Iris, themes: Iterable[ThemeRecord]) -> None:
    """The hub's classification as a SKOS concept scheme, with the given nodes as concepts."""
    scheme = iris.theme_scheme
    graph.add((scheme, RDF.type, SKOS.ConceptScheme))
    graph.add((scheme, DCTERMS.title, _zh(THEME_SCHEME_TITLE)))
    for theme in themes:
        concept = iris.theme(theme.code)
        graph.add((concept, RDF.type, SKOS.Concept))
        graph.add((concept, SKOS.prefLabel, _zh(theme.name)))
        graph.add((concept, SKOS.notation, Literal(theme.code)))
        graph.add((concept, SKOS.inScheme, scheme))
        if theme.parent_code is None:
            graph.add((concept, SKOS.topConceptOf, scheme))
            graph.add((scheme, SKOS.hasTopConcept, concept))
        else:
            graph.add((concept, SKOS.broader, iris.theme(theme.parent_code)))


def add_exchange_service(graph: Graph, iris: Iris) -> URIRef:
    """The hub's exchange API as a dcat:DataService (DCAT-AP 3.0.0: title and endpoint URL mandatory)."""
    service = iris.exchange_service
    graph.add((service, RDF.type, DCAT.DataService))
    graph.add((service, DCTERMS.title, _zh(EXCHANGE_SERVICE_TITLE)))
    graph.add((service, DCAT.endpointURL, _resource(graph, iris.exchange_endpoint)))
    graph.add((service, DCAT.endpointDescription, _resource(graph, iris.api_description)))
    graph.add((service, DCTERMS.publisher, iris.publisher))
    graph.add((iris.publisher, RDF.type, FOAF.Agent))
    graph.add((iris.publisher, FOAF.name, _zh(PUBLISHER_NAME)))
    return service


def add_dataset(graph: Graph, iris: Iris, dataset: DatasetRecord) -> URIRef:
    """One resource as a dcat:Dataset with its distribution through the exchange (none for 不予共享)."""
    require_mandatory(dataset)
    assert dataset.publish_date is not None  # noqa: S101 - require_mandatory raised otherwise
    node = iris.dataset(dataset.code)
    graph.add((node, RDF.type, DCAT.Dataset))
    graph.add((node, DCTERMS.identifier, Literal(dataset.code)))
    graph.add((node, DCTERMS.title, _zh(dataset.name)))
    graph.add((node, DCTERMS.description, _zh(dataset.summary)))
    graph.add((node, DCTERMS.publisher, add_agent(graph, iris, dataset.provider_code, dataset.provider_name)))
    graph.add((node, DCTERMS.issued, Literal(dataset.publish_date.isoformat(), datatype=XSD.date)))
    graph.add((node, DCTERMS.modified, _modified(dataset.modified_at)))
    graph.add((node, DCAT_VERSION, Literal(str(dataset.version))))
    graph.add((node, DCAT.theme, iris.theme(dataset.classification_code)))
    for keyword in dataset.keywords:
        graph.add((node, DCAT.keyword, _zh(keyword)))
    for related in dataset.related_codes:
        graph.add((node, DCTERMS.relation, _resource(graph, iris.dataset(related))))

    right = ACCESS_RIGHT[ACCESS_RIGHTS[dataset.share_type]]
    _vocabulary_concept(
        graph, right, kind=DCTERMS.RightsStatement, scheme=URIRef(f"{EU}access-right"),
        labels=ACCESS_RIGHT_LABELS[ACCESS_RIGHTS[dataset.share_type]],
    )  # fmt: skip
    graph.add((node, DCTERMS.accessRights, right))
    if (frequency := FREQUENCIES.get(dataset.update_frequency)) is not None:
        _vocabulary_concept(
            graph, FREQUENCY[frequency], kind=DCTERMS.Frequency, scheme=URIRef(f"{EU}frequency"),
            labels=FREQUENCY_LABELS[frequency],
        )  # fmt: skip
        graph.add((node, DCTERMS.accrualPeriodicity, FREQUENCY[frequency]))
    chinese = LANGUAGE["ZHO"]
    _vocabulary_concept(
        graph, chinese, kind=DCTERMS.LinguisticSystem, scheme=URIRef(f"{EU}language"), labels=("Chinese", "中文")
    )
    graph.add((node, DCTERMS.language, chinese))

    schema = iris.schema(dataset.code)
    graph.add((schema, RDF.type, DCTERMS.Standard))
    graph.add((schema, DCTERMS.title, _zh(f"{dataset.name}信息项结构")))
    graph.add((node, DCTERMS.conformsTo, schema))

    if dataset.share_type != "none":  # 不予共享: described, but there is no way to obtain it
        graph.add((node, DCAT.distribution, _add_distribution(graph, iris, dataset)))
    return node


def _add_distribution(graph: Graph, iris: Iris, dataset: DatasetRecord) -> URIRef:
    distribution = iris.distribution(dataset.code)
    graph.add((distribution, RDF.type, DCAT.Distribution))
    graph.add((distribution, DCTERMS.title, _zh("通过共享交换平台按授权获取")))
    graph.add((distribution, DCAT.accessURL, _resource(graph, iris.fetch_endpoint)))
    graph.add((distribution, DCAT.accessService, add_exchange_service(graph, iris)))
    json_type = FILE_TYPE["JSON"]
    _vocabulary_concept(
        graph, json_type, kind=DCTERMS.MediaTypeOrExtent, scheme=URIRef(f"{EU}file-type"), labels=("JSON", "JSON")
    )
    graph.add((distribution, DCTERMS.format, json_type))
    media_type = URIRef(f"{IANA_MEDIA_TYPES}application/json")
    graph.add((media_type, RDF.type, DCTERMS.MediaType))
    graph.add((distribution, DCAT.mediaType, media_type))
    graph.add((distribution, DCTERMS.conformsTo, iris.schema(dataset.code)))
    if dataset.share_conditions and dataset.share_conditions.strip():
        rights = iris.conditions(dataset.code)
        graph.add((rights, RDF.type, DCTERMS.RightsStatement))
        graph.add((rights, RDFS.label, _zh(dataset.share_conditions)))
        graph.add((distribution, DCTERMS.rights, rights))
    return distribution


def add_tombstone(graph: Graph, iris: Iris, catalog: URIRef, dataset: DatasetRecord) -> None:
    """A withdrawn resource as a catalogue record with ADMS change type ``deleted`` (DCAT-AP 3 §CatalogueRecord).

    Incremental harvesters (``modified_since``) learn of deletions this way; the dataset itself is no
    longer described.
    """
    record = iris.record(dataset.code)
    topic = iris.dataset(dataset.code)
    graph.add((record, RDF.type, DCAT.CatalogRecord))
    graph.add((record, FOAF.primaryTopic, topic))
    graph.add((topic, RDF.type, DCAT.Resource))
    graph.add((record, DCTERMS.identifier, Literal(dataset.code)))
    graph.add((record, DCTERMS.modified, _modified(dataset.modified_at)))
    deleted = CHANGE_TYPE["deleted"]
    graph.add((deleted, RDF.type, SKOS.Concept))
    graph.add((deleted, SKOS.prefLabel, Literal("deleted", lang="en")))
    graph.add((deleted, SKOS.prefLabel, _zh("已撤销")))
    graph.add((deleted, SKOS.inScheme, CHANGE_TYPE["ChangeType"]))
    graph.add((record, ADMS.status, deleted))
    graph.add((catalog, DCAT.record, record))


def catalogue_graph(
    iris: Iris,
    *,
    datasets: Sequence[DatasetRecord],
    themes: Iterable[ThemeRecord],
    view: PageView,
    modified: datetime | None,
) -> Graph:
    """One page of the catalogue: the dcat:Catalog (also the hydra:Collection) and this page's datasets."""
    graph = new_graph()
    catalog = iris.catalog
    graph.add((catalog, RDF.type, DCAT.Catalog))
    graph.add((catalog, DCTERMS.title, _zh(CATALOG_TITLE)))
    graph.add((catalog, DCTERMS.description, _zh(CATALOG_DESCRIPTION)))
    graph.add((catalog, DCTERMS.publisher, iris.publisher))
    graph.add((iris.publisher, RDF.type, FOAF.Agent))
    graph.add((iris.publisher, FOAF.name, _zh(PUBLISHER_NAME)))
    graph.add((catalog, DCAT.themeTaxonomy, iris.theme_scheme))
    graph.add((catalog, DCAT.service, add_exchange_service(graph, iris)))
    if modified is not None:
        graph.add((catalog, DCTERMS.modified, _modified(modified)))
    add_themes(graph, iris, themes)
    for dataset in datasets:
        if dataset.withdrawn:
            add_tombstone(graph, iris, catalog, dataset)
            continue
        node = add_dataset(graph, iris, dataset)
        graph.add((catalog, DCAT.dataset, node))
        if dataset.share_type != "none":
            graph.add((iris.exchange_service, DCAT.servesDataset, node))
    _add_view(graph, catalog, view)
    return graph


def _add_view(graph: Graph, collection: URIRef, view: PageView) -> None:
    # Hydra Core §5.1 (Collections) and §5.2 (PartialCollectionView): the page links a harvester follows.
    page = URIRef(view.url)
    graph.add((collection, RDF.type, HYDRA.Collection))
    graph.add((collection, HYDRA.totalItems, Literal(view.total, datatype=XSD.nonNegativeInteger)))
    graph.add((collection, HYDRA.view, page))
    graph.add((page, RDF.type, HYDRA.PartialCollectionView))
    graph.add((page, HYDRA.first, URIRef(view.first)))
    graph.add((page, HYDRA.last, URIRef(view.last)))
    if view.next is not None:
        graph.add((page, HYDRA.next, URIRef(view.next)))
    if view.previous is not None:
        graph.add((page, HYDRA.previous, URIRef(view.previous)))


def dataset_graph(iris: Iris, dataset: DatasetRecord, themes: Iterable[ThemeRecord]) -> Graph:
    """The document of one dataset: the dataset, its distribution, publisher and theme concepts."""
    graph = new_graph()
    add_themes(graph, iris, themes)
    add_dataset(graph, iris, dataset)
    return graph


def themes_graph(iris: Iris, themes: Iterable[ThemeRecord]) -> Graph:
    """The whole classification concept scheme (the target of dcat:themeTaxonomy)."""
    graph = new_graph()
    add_themes(graph, iris, themes)
    return graph


def agent_graph(iris: Iris, code: str, name: str) -> Graph:
    graph = new_graph()
    add_agent(graph, iris, code, name)
    return graph


def schema_document(iris: Iris, dataset: DatasetRecord, items: Sequence[ItemRecord]) -> dict[str, Any]:
    """The resource's data items as a JSON Schema 2020-12 document (the dct:conformsTo target).

    Same conventions as licence face schemas: ``title`` is the item's Chinese name and ``x-share-type``
    its share type; ``x-personal`` marks personal information. No values, only structure.
    """
    properties: dict[str, Any] = {}
    for item in items:
        prop: dict[str, Any] = {"title": item.name, **JSON_SCHEMA_TYPES.get(item.data_type, {"type": "string"})}
        if item.description:
            prop["description"] = item.description
        if item.length is not None and prop.get("type") == "string" and "format" not in prop:
            prop["maxLength"] = item.length
        prop["x-share-type"] = item.share_type
        prop["x-personal"] = item.personal
        properties[item.key] = prop
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": str(iris.schema(dataset.code)),
        "title": f"{dataset.name}信息项结构",
        "description": dataset.summary,
        "type": "object",
        "properties": properties,
        "x-resource-code": dataset.code,
        "x-resource-version": dataset.version,
        "x-share-type": dataset.share_type,
    }


RDF_FORMATS: Mapping[str, str] = {
    "application/ld+json": "json-ld",
    "text/turtle": "turtle",
    "application/rdf+xml": "xml",
}


def serialize(graph: Graph, media_type: str) -> bytes:
    """The graph in one of ``RDF_FORMATS``; JSON-LD is compacted with an inline context (no remote fetch)."""
    rdf_format = RDF_FORMATS[media_type]
    if rdf_format == "json-ld":
        return graph.serialize(format="json-ld", context=JSONLD_CONTEXT, indent=2, ensure_ascii=False).encode()
    return graph.serialize(format=rdf_format, encoding="utf-8")
