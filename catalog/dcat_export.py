"""Reads the catalogue tables for the DCAT-AP export: visibility, ``modified_since``, paging, theme ancestors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar
from urllib.parse import urlencode

from rdflib import Graph
from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.orm import Session

from catalog import dcat
from catalog.models import Classification, DataItem, Resource
from hub.errors import DomainError, InvalidInput, NotFound
from hub.identity.models import Department

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
# 开放属性 that put a resource's metadata in the anonymous (public) catalogue: 有条件开放 resources are listed
# on open-data portals too, only 不予开放 ones stay inside government (departments see them with a token).
PUBLIC_OPEN_ATTRIBUTES = ("open", "conditional")
LISTED_STATUSES = ("published", "withdrawn")


class ModifiedSinceInvalid(InvalidInput):
    code = "modified_since_invalid"
    title = "modified_since must be an ISO 8601 date or date-time"


class DatasetNotFound(NotFound):
    code = "dataset_not_found"
    title = "No such dataset in the catalogue"


class DatasetWithdrawn(DomainError):
    status: ClassVar[int] = 410  # RFC 9110 §15.5.11: gone for good; resource codes are never reused
    code: ClassVar[str] = "dataset_withdrawn"
    title: ClassVar[str] = "The resource has been withdrawn from the catalogue"


class AgentNotFound(NotFound):
    code = "agent_not_found"
    title = "No department publishes resources under this code"


@dataclass(frozen=True, slots=True)
class Audience:
    """Who asks: the public (no token) sees resources whose 开放属性 allows it; departments see all."""

    department: bool

    def visible(self) -> ColumnElement[bool]:
        if self.department:
            return true()
        return Resource.open_attribute.in_(PUBLIC_OPEN_ATTRIBUTES)


def parse_modified_since(text: str) -> datetime:
    """ISO 8601 date or date-time; a time without offset and a bare date are taken as UTC."""
    value = text.strip()
    try:
        if len(value) == 10:  # YYYY-MM-DD
            moment = datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that moves year 1 or 9999 out of range
        raise ModifiedSinceInvalid("expected ISO 8601, e.g. 2026-01-15 or 2026-01-15T08:00:00Z") from None


def record_from_row(row: Resource) -> dcat.DatasetRecord:
    return dcat.DatasetRecord(
        code=row.code,
        name=row.name,
        summary=row.summary,
        provider_code=row.provider_code,
        provider_name=row.provider_name,
        classification_code=row.classification_code,
        share_type=row.share_type,
        share_conditions=row.share_conditions,
        update_frequency=row.update_frequency,
        publish_date=row.publish_date,
        modified_at=row.modified_at,
        version=row.version,
        keywords=tuple(row.keywords or ()),
        related_codes=tuple(row.related_codes or ()),
        withdrawn=row.status == "withdrawn",
    )


def themes_with_ancestors(session: Session, codes: Iterable[str]) -> list[dcat.ThemeRecord]:
    """The classification nodes named and every ancestor up to its 类 (at most four levels)."""
    found: dict[str, dcat.ThemeRecord] = {}
    wanted = set(codes)
    while wanted:
        rows = session.scalars(select(Classification).where(Classification.code.in_(sorted(wanted)))).all()
        wanted = set()
        for row in rows:
            found[row.code] = dcat.ThemeRecord(row.code, row.name, row.level, row.parent_code)
            if row.parent_code is not None and row.parent_code not in found:
                wanted.add(row.parent_code)
    return [found[code] for code in sorted(found)]


def all_themes(session: Session) -> list[dcat.ThemeRecord]:
    rows = session.scalars(select(Classification).order_by(Classification.code)).all()
    return [dcat.ThemeRecord(row.code, row.name, row.level, row.parent_code) for row in rows]


@dataclass(frozen=True, slots=True)
class Listing:
    datasets: list[dcat.DatasetRecord]
    total: int
    page: int
    page_size: int
    last_page: int
    modified: datetime | None


def list_datasets(
    session: Session, audience: Audience, *, page: int, page_size: int, modified_since: datetime | None
) -> Listing:
    """One page of the catalogue, ordered by resource code (immutable, unique: a stable walk).

    A full listing holds published resources only (a full harvest drops what it no longer sees); with
    ``modified_since`` it also holds resources withdrawn since then, as deletion records.
    """
    conditions: list[ColumnElement[bool]] = [audience.visible()]
    if modified_since is None:
        conditions.append(Resource.status == "published")
    else:
        conditions.append(Resource.status.in_(LISTED_STATUSES))
        conditions.append(Resource.modified_at >= modified_since)
    where = and_(*conditions)
    total = session.scalar(select(func.count()).select_from(Resource).where(where)) or 0
    rows = session.scalars(
        select(Resource).where(where).order_by(Resource.code).offset((page - 1) * page_size).limit(page_size)
    ).all()
    modified = session.scalar(
        select(func.max(Resource.modified_at)).where(audience.visible(), Resource.status.in_(LISTED_STATUSES))
    )
    return Listing(
        datasets=[record_from_row(row) for row in rows],
        total=total,
        page=page,
        page_size=page_size,
        last_page=max(1, -(-total // page_size)),
        modified=modified,
    )


def get_dataset_or_raise(session: Session, audience: Audience, code: str) -> dcat.DatasetRecord:
    """A published resource the audience may see; a hidden one answers like a missing one (404)."""
    row = session.scalars(select(Resource).where(Resource.code == code, audience.visible())).first()
    if row is None or row.status not in LISTED_STATUSES:
        raise DatasetNotFound(f"no dataset {code[:60]!r} is in the catalogue")
    if row.status == "withdrawn":
        raise DatasetWithdrawn(f"resource {code} was withdrawn; its code is never reused")
    return record_from_row(row)


def get_items(session: Session, code: str) -> list[dcat.ItemRecord]:
    rows = session.scalars(select(DataItem).where(DataItem.resource_code == code).order_by(DataItem.position)).all()
    return [
        dcat.ItemRecord(
            key=row.key,
            name=row.name,
            data_type=row.data_type,
            share_type=row.share_type,
            length=row.length,
            description=row.description,
            personal=row.personal,
        )
        for row in rows
    ]


def get_agent_or_raise(session: Session, audience: Audience, code: str) -> tuple[str, str]:
    """A department that provides at least one published resource the audience may see: (USCC, name)."""
    provides = select(Resource.code).where(
        Resource.provider_code == code, Resource.status == "published", audience.visible()
    )
    row = session.execute(
        select(Department.code, Department.name).where(Department.code == code, provides.exists())
    ).first()
    if row is None:
        raise AgentNotFound(f"no department {code[:20]!r} publishes resources in this catalogue")
    return row[0], row[1]


@dataclass(frozen=True, slots=True)
class PageQuery:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    modified_since: datetime | None = None

    def url(self, iris: dcat.Iris, page: int) -> str:
        params: dict[str, Any] = {"page": page, "page_size": self.page_size}
        if self.modified_since is not None:
            params["modified_since"] = self.modified_since.isoformat().replace("+00:00", "Z")
        return f"{iris.base}?{urlencode(params)}"


def export_catalogue(session: Session, iris: dcat.Iris, audience: Audience, query: PageQuery) -> Graph:
    """The catalogue page ``query`` asks for, with Hydra links to the first, previous, next and last pages."""
    listing = list_datasets(
        session, audience, page=query.page, page_size=query.page_size, modified_since=query.modified_since
    )
    view = dcat.PageView(
        url=query.url(iris, query.page),
        first=query.url(iris, 1),
        last=query.url(iris, listing.last_page),
        total=listing.total,
        next=query.url(iris, query.page + 1) if query.page < listing.last_page else None,
        previous=query.url(iris, min(query.page - 1, listing.last_page)) if query.page > 1 else None,
    )
    live = [d for d in listing.datasets if not d.withdrawn]
    themes = themes_with_ancestors(session, {d.classification_code for d in live})
    return dcat.catalogue_graph(iris, datasets=listing.datasets, themes=themes, view=view, modified=listing.modified)


def export_dataset(session: Session, iris: dcat.Iris, audience: Audience, code: str) -> Graph:
    dataset = get_dataset_or_raise(session, audience, code)
    return dcat.dataset_graph(iris, dataset, themes_with_ancestors(session, [dataset.classification_code]))


def export_schema(session: Session, iris: dcat.Iris, audience: Audience, code: str) -> dict[str, Any]:
    dataset = get_dataset_or_raise(session, audience, code)
    return dcat.schema_document(iris, dataset, get_items(session, code))
