"""Catalogue search: Chinese substring matching, filters, facets and stable paging, on SQLite and PostgreSQL.

Chinese has no spaces between words and English stemming means nothing to it, so a query matches by
substring: every whitespace-separated term must occur in ``Resource.search_text`` (name, summary,
keywords and data item names, NFKC-normalised and lower-cased). On PostgreSQL a term of three or more
characters is ``LIKE '%term%'``, answered by the pg_trgm GIN index ``ix_catalog_resources_search_text``;
a shorter one (most Chinese words have two characters) has no trigram, so it is ``strpos`` over a scan.
SQLite scans with ``instr``. All three are exact substring tests, so results never depend on the backend.

Facets count the resources that match the whole current filter, per provider, share type, top-level
classification (类) and update frequency; they come from one grouped query, which also yields the total.
Results are ordered by resource code, which is unique and immutable, so pages are stable.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from catalog.models import Resource
from catalog.schemas import SHARE_TYPES, UPDATE_FREQUENCIES, FacetCount, ResourceSummaryOut
from hub.errors import InvalidInput

MAX_LIMIT = 100
MAX_TERMS = 8
TRIGRAM = 3  # pg_trgm indexes need three characters
FACETS = ("provider", "share_type", "classification", "update_frequency")
TOP_LEVELS = {"1": "基础信息资源类", "2": "主题信息资源类", "3": "部门信息资源类"}
_SUMMARY_COLUMNS = (
    Resource.code, Resource.name, Resource.classification_code, Resource.provider_code, Resource.provider_name,
    Resource.share_type, Resource.update_frequency, Resource.format, Resource.status, Resource.version,
    Resource.licence_type_code, Resource.modified_at,
)  # fmt: skip


class SearchQueryInvalid(InvalidInput):
    code = "catalog_search_invalid"
    title = "The catalogue search parameters are not valid"


@dataclass(frozen=True)
class ResourceQuery:
    """What to look for; ``None`` means no filter on that field."""

    q: str | None = None
    provider: str | None = None
    share_type: str | None = None
    classification: str | None = None  # a node code: the node and its descendants
    update_frequency: str | None = None
    status: str | None = "published"
    licence_type_code: str | None = None
    limit: int = 20
    offset: int = 0
    facets: bool = True


@dataclass(frozen=True)
class SearchResult:
    total: int
    items: list[ResourceSummaryOut]
    facets: dict[str, list[FacetCount]] | None


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII) and lower case: how text is stored and searched."""
    return unicodedata.normalize("NFKC", text).lower()


def search_text(name: str, summary: str, keywords: Iterable[str], item_names: Iterable[str]) -> str:
    return normalise(" ".join([name, summary, *keywords, *item_names]))


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def terms(q: str | None) -> list[str]:
    if q is None:
        return []
    found = list(dict.fromkeys(normalise(q).split()))
    if len(found) > MAX_TERMS or any(len(term) > 100 for term in found):
        raise SearchQueryInvalid(f"q takes at most {MAX_TERMS} terms of at most 100 characters")
    return found


def _contains(term: str, dialect: str) -> ColumnElement[bool]:
    """``search_text`` contains ``term``, written so each backend can use what it has."""
    if dialect == "sqlite":
        return func.instr(Resource.search_text, term) > 0  # exact and cheaper than LIKE; nothing to escape
    if dialect == "postgresql" and len(term) < TRIGRAM:
        # No trigram in the term: a trigram index scan would read the whole index; a scan is cheaper.
        return func.strpos(Resource.search_text, term) > 0
    return Resource.search_text.like(f"%{_escape_like(term)}%", escape="\\")


def conditions(query: ResourceQuery, dialect: str) -> list[ColumnElement[bool]]:
    where = [_contains(term, dialect) for term in terms(query.q)]
    if query.provider is not None:
        where.append(Resource.provider_code == query.provider)
    if query.share_type is not None:
        where.append(Resource.share_type == query.share_type)
    if query.update_frequency is not None:
        where.append(Resource.update_frequency == query.update_frequency)
    if query.status is not None:
        where.append(Resource.status == query.status)
    if query.licence_type_code is not None:
        where.append(Resource.licence_type_code == query.licence_type_code)
    if query.classification is not None:
        node = query.classification
        if not node.isascii() or not node.isdigit():
            raise SearchQueryInvalid("classification is a classification code (digits)")
        # Codes name their ancestors as prefixes (catalog.classifications), so a subtree is a prefix.
        where.append(or_(Resource.classification_code == node, Resource.classification_code.like(f"{node}%")))
    return where


def _facet_counts(session: Session, where: list[ColumnElement[bool]]) -> tuple[int, dict[str, list[FacetCount]]]:
    top = func.substr(Resource.classification_code, 1, 1)
    # Grouped by the expression first: no index yields that order, so SQLite scans the table once and sorts
    # the groups instead of walking the provider index with one random row lookup per resource.
    columns = (top, Resource.share_type, Resource.update_frequency, Resource.provider_code)
    grouped = select(*columns, func.max(Resource.provider_name), func.count()).where(*where).group_by(*columns)
    counters: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    providers: dict[str, str] = {}
    total = 0
    for level1, share_type, frequency, provider, provider_name, count in session.execute(grouped):
        total += count
        providers[provider] = provider_name
        counters["provider"][provider] += count
        counters["share_type"][share_type] += count
        counters["classification"][level1] += count
        counters["update_frequency"][frequency] += count
    labels: dict[str, dict[str, str]] = {
        "provider": providers, "share_type": SHARE_TYPES, "classification": TOP_LEVELS,
        "update_frequency": UPDATE_FREQUENCIES,
    }  # fmt: skip
    facets = {
        name: [
            FacetCount(value=value, label=labels[name].get(value, value), count=count)
            for value, count in sorted(counter.items(), key=lambda pair: (-pair[1], pair[0]))
        ]
        for name, counter in counters.items()
    }
    return total, facets


def search_resources(session: Session, query: ResourceQuery) -> SearchResult:
    """One page of resources matching ``query``, the total, and (if asked) the facets of the whole match."""
    if not 1 <= query.limit <= MAX_LIMIT or query.offset < 0:
        raise SearchQueryInvalid(f"limit is 1–{MAX_LIMIT} and offset is not negative")
    dialect = session.get_bind().dialect.name
    where = conditions(query, dialect)
    order: Any = Resource.code
    if query.q and dialect == "sqlite":
        # SQLite cannot estimate how many rows a LIKE keeps and walks the code index to avoid a sort; for a
        # rare term that is one random row lookup per resource (4× a scan). Sorting by an order no index
        # serves (NOCASE equals BINARY on codes: digits and '/') makes it one scan and a sort of the hits,
        # bounded whatever the term. PostgreSQL plans from its statistics.
        order = Resource.code.collate("NOCASE")
    page = select(*_SUMMARY_COLUMNS).where(*where).order_by(order).limit(query.limit).offset(query.offset)
    items = [ResourceSummaryOut.model_validate(row._asdict()) for row in session.execute(page)]
    facets: dict[str, list[FacetCount]] | None = None
    if query.facets:
        total, facets = _facet_counts(session, where)
    elif query.offset == 0 and len(items) < query.limit:
        total = len(items)
    else:
        total = session.scalar(select(func.count()).select_from(Resource).where(*where)) or 0
    return SearchResult(total=total, items=items, facets=facets)
