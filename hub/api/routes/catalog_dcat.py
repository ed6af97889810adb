"""DCAT-AP 3 export of the catalogue (issue 6): ``GET /v1/catalog/dcat`` and the documents its IRIs name.

Open to harvesters without a token: anonymous callers get the public catalogue (resources whose 开放属性
is open or conditional); a department token with ``catalog:read`` gets every published resource. The
export is metadata only (names, summaries, data item names and share types, never record values), so it
is not audited like a data disclosure. JSON-LD by default, Turtle or RDF/XML on request (RFC 9110 §12.5.1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from rdflib import Graph

from catalog import dcat
from catalog import dcat_export as export
from hub.api.deps import BearerDep, RuntimeDep, SessionDep
from hub.api.openapi import OPTIONAL_BEARER
from hub.errors import DomainError
from hub.identity import service as identity
from hub.identity.errors import ScopeMissing

router = APIRouter(prefix="/v1/catalog/dcat", tags=["catalog"])

RDF_TYPES = ("application/ld+json", "text/turtle", "application/rdf+xml", "application/json")
SCHEMA_TYPES = ("application/schema+json", "application/json")
VARY = "Accept, Authorization"
MAX_PAGE = 100_000
_NOT_ACCEPTABLE: dict[str, Any] = {"description": "None of the media types in Accept can be served"}
_GONE: dict[str, Any] = {"description": "The resource was withdrawn; its code is never reused"}
_RDF: dict[int | str, dict[str, Any]] = {200: {"content": {media: {} for media in RDF_TYPES}}, 406: _NOT_ACCEPTABLE}


class NotAcceptable(DomainError):
    status: ClassVar[int] = 406
    code: ClassVar[str] = "not_acceptable"
    title: ClassVar[str] = "None of the media types in Accept can be served"


def _ranges(accept: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return ranges


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """The offered media type the client prefers (RFC 9110 §12.5.1: most specific range wins; ties → ours)."""
    if accept is None or not accept.strip():
        return offered[0]
    ranges = _ranges(accept)
    best, best_quality = None, 0.0
    for media in offered:
        kind = media.split("/")[0]
        quality, specificity = 0.0, -1
        for candidate, q in ranges:
            rank = 2 if candidate == media else 1 if candidate == f"{kind}/*" else 0 if candidate == "*/*" else -1
            if rank > specificity:
                quality, specificity = q, rank
        if quality > best_quality:
            best, best_quality = media, quality
    if best is None:
        raise NotAcceptable(f"this resource is available as {', '.join(offered)}")
    return best


def department_audience(
    request: Request, session: SessionDep, runtime: RuntimeDep, credentials: BearerDep
) -> export.Audience:
    """No token: the public audience. A token must be valid and carry ``catalog:read`` (never downgraded)."""
    if credentials is None:
        return export.Audience(department=False)
    claims = identity.authenticate_bearer(session, runtime.settings, runtime.key_cache, credentials.credentials)
    if "catalog:read" not in claims.scopes:
        raise ScopeMissing("catalog:read")
    request.state.caller = claims
    return export.Audience(department=True)


AudienceDep = Annotated[export.Audience, Depends(department_audience)]
AcceptDep = Annotated[str | None, Header()]


def _rdf_response(graph: Graph, media_type: str) -> Response:
    rdf_type = "application/ld+json" if media_type == "application/json" else media_type
    content_type = f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type
    return Response(dcat.serialize(graph, rdf_type), media_type=content_type, headers={"Vary": VARY})


@router.get("", response_class=Response, responses=_RDF, openapi_extra=OPTIONAL_BEARER)
def catalogue(
    *,
    session: SessionDep,
    runtime: RuntimeDep,
    audience: AudienceDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=export.MAX_PAGE_SIZE)] = export.DEFAULT_PAGE_SIZE,
    modified_since: Annotated[str | None, Query(max_length=64, description="ISO 8601 date or date-time")] = None,
    accept: AcceptDep = None,
) -> Response:
    """One page of the catalogue as a DCAT-AP 3 dcat:Catalog with a hydra:PartialCollectionView."""
    media_type = negotiate(accept, RDF_TYPES)
    since = export.parse_modified_since(modified_since) if modified_since is not None else None
    query = export.PageQuery(page=page, page_size=page_size, modified_since=since)
    graph = export.export_catalogue(session, dcat.Iris(runtime.settings.public_url), audience, query)
    return _rdf_response(graph, media_type)


@router.get("/themes", response_class=Response, responses=_RDF)
def themes(session: SessionDep, runtime: RuntimeDep, accept: AcceptDep = None) -> Response:
    """The classification (类/项/目/细目) as the SKOS concept scheme datasets take their dcat:theme from."""
    media_type = negotiate(accept, RDF_TYPES)
    graph = dcat.themes_graph(dcat.Iris(runtime.settings.public_url), export.all_themes(session))
    return _rdf_response(graph, media_type)


@router.get("/agents/{code}", response_class=Response, responses=_RDF, openapi_extra=OPTIONAL_BEARER)
def agent(
    session: SessionDep, runtime: RuntimeDep, audience: AudienceDep, code: str, accept: AcceptDep = None
) -> Response:
    """A providing department as a foaf:Agent (the target of a dataset's dct:publisher)."""
    media_type = negotiate(accept, RDF_TYPES)
    uscc, name = export.get_agent_or_raise(session, audience, code)
    return _rdf_response(dcat.agent_graph(dcat.Iris(runtime.settings.public_url), uscc, name), media_type)


# Resource codes contain "/" (classification code + sequence), so they are matched as a path; the schema
# route is declared first so ".../schema" is not taken for part of a code.
@router.get(
    "/datasets/{code:path}/schema",
    response_class=Response,
    responses={200: {"content": {media: {} for media in SCHEMA_TYPES}}, 406: _NOT_ACCEPTABLE, 410: _GONE},
    openapi_extra=OPTIONAL_BEARER,
)
def dataset_schema(
    session: SessionDep, runtime: RuntimeDep, audience: AudienceDep, code: str, accept: AcceptDep = None
) -> Response:
    """The resource's data items as JSON Schema 2020-12: the target of the dataset's dct:conformsTo."""
    media_type = negotiate(accept, SCHEMA_TYPES)
    document = export.export_schema(session, dcat.Iris(runtime.settings.public_url), audience, code)
    body = json.dumps(document, ensure_ascii=False, indent=2).encode()
    return Response(body, media_type=media_type, headers={"Vary": VARY})


@router.get(
    "/datasets/{code:path}", response_class=Response, responses={**_RDF, 410: _GONE}, openapi_extra=OPTIONAL_BEARER
)
def dataset(
    session: SessionDep, runtime: RuntimeDep, audience: AudienceDep, code: str, accept: AcceptDep = None
) -> Response:
    """One resource as a DCAT-AP 3 dcat:Dataset document (the dataset's own IRI dereferences here)."""
    media_type = negotiate(accept, RDF_TYPES)
    graph = export.export_dataset(session, dcat.Iris(runtime.settings.public_url), audience, code)
    return _rdf_response(graph, media_type)
