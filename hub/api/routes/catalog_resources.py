"""Catalogue routes: the classification tree and data resources (create, search, read, change, withdraw).

Resource codes contain a ``/`` (``105/000001``), so they are ``path`` parameters; the routes with a suffix
(``/versions``, ``/withdraw``) are declared before the bare one so the suffix is never read as part of a
code. Changes are open to the providing department and to an admin; any other department gets the same
404 as for a missing resource, and that refusal is audited too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Query, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from catalog import classifications, resources
from catalog.models import Resource
from catalog.resources import Changed
from catalog.schemas import (
    CLASSIFICATION_CODE,
    RESOURCE_CODE_RE,
    ClassificationOut,
    ResourceIn,
    ResourceOut,
    ResourcePage,
    ResourcePatch,
    ShareType,
    UpdateFrequency,
    VersionOut,
    VersionSummaryOut,
    WithdrawIn,
)
from catalog.search import MAX_LIMIT, ResourceQuery, search_resources
from hub import audited
from hub.api.deps import RuntimeDep, SessionDep, require_scope
from hub.api.receipts import caller_receipt
from hub.api.schemas import ReceiptOut
from hub.errors import DomainError
from hub.identity.errors import ScopeMissing
from hub.identity.tokens import AccessClaims

router = APIRouter(tags=["catalog"])
AnyCaller = Annotated[AccessClaims, require_scope(None)]
Reader = Annotated[AccessClaims, require_scope("catalog:read")]
Writer = Annotated[AccessClaims, require_scope("catalog:write")]
T = TypeVar("T")


class ResourceResponse(ResourceOut):
    receipt: ReceiptOut | None = None


class ClassificationIn(BaseModel):
    code: str = Field(pattern=CLASSIFICATION_CODE, examples=["105001"])
    name: str = Field(min_length=1, max_length=100)


class ClassificationResponse(ClassificationOut):
    receipt: ReceiptOut


def _is_admin(caller: AccessClaims) -> bool:
    return "admin" in caller.scopes


def _owner(caller: AccessClaims) -> str | None:
    """Whose resources the caller may change: its own department's, or any for an admin (None)."""
    return None if _is_admin(caller) else caller.department_code


def _audited_refusal(caller: AccessClaims, action: str, code: str | None, work: Callable[[], T]) -> T:
    """Run ``work``; a refusal is recorded as a denied ``action`` (after the rollback, by the session dependency)."""
    try:
        return work()
    except DomainError as exc:
        exc.audit_event = audited.event(
            action=action, outcome="denied", actor_type="admin" if _is_admin(caller) else "department",
            actor=caller.department_code, client_id=caller.client_id, error_code=exc.code,
            resource_code=code if code is not None and RESOURCE_CODE_RE.fullmatch(code) else None,
        )  # fmt: skip
        raise


def _response(session: Session, resource: Resource, receipt: ReceiptOut | None = None) -> ResourceResponse:
    view = resources.resource_view(resource, resources.get_items(session, resource.code))
    return ResourceResponse(**view.model_dump(), receipt=receipt)


# ------------------------------------------------------------------------------------------- classifications


@router.get("/v1/catalog/classifications")
def list_classifications(session: SessionDep, _caller: AnyCaller) -> list[ClassificationOut]:
    """The classification tree (类/项/目/细目), ordered by code; a node's code prefixes its descendants'."""
    return [
        ClassificationOut(code=n.code, name=n.name, level=n.level, parent_code=n.parent_code)
        for n in classifications.list_classifications(session)
    ]


@router.post("/v1/catalog/classifications", status_code=status.HTTP_201_CREATED)
def create_classification(
    body: ClassificationIn, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> ClassificationResponse:
    """Add a 项, 目 or 细目 (admin only): 项 = 类 + 2 digits, 目 = 项 + 3, 细目 = 目 + 1 to 6."""
    if not _is_admin(caller):
        raise ScopeMissing("admin")
    node = _audited_refusal(
        caller, "catalog.classification.created", None,
        lambda: classifications.create_classification(session, body.code, body.name),
    )  # fmt: skip
    receipt = caller_receipt(session, runtime, caller, "catalog.classification.created", extra={"code": node.code})
    return ClassificationResponse(
        code=node.code, name=node.name, level=node.level, parent_code=node.parent_code, receipt=receipt
    )


# ------------------------------------------------------------------------------------------- resources


@router.post("/v1/catalog/resources", status_code=status.HTTP_201_CREATED)
def create_resource(
    body: ResourceIn, response: Response, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> ResourceResponse:
    """Publish a resource; its code (classification code + '/' + six-digit sequence) is allocated here."""

    def work() -> Resource:
        provider = resources.resolve_provider(
            caller.department_code, is_admin=_is_admin(caller), requested=body.provider_code
        )
        return resources.create_resource(session, body, provider_code=provider, actor=caller.department_code)

    resource = _audited_refusal(caller, "catalog.resource.created", None, work)
    receipt = caller_receipt(
        session, runtime, caller, "catalog.resource.created", resource_code=resource.code, extra={"version": "1"}
    )
    response.headers["Location"] = f"/v1/catalog/resources/{resource.code}"
    return _response(session, resource, receipt)


@router.get("/v1/catalog/resources")
def search_catalogue(  # noqa: PLR0917 - one query parameter per filter
    session: SessionDep,
    _caller: Reader,
    q: Annotated[
        str | None, Query(max_length=200, description="Substring terms (Chinese or not), all must match")
    ] = None,
    provider: Annotated[str | None, Query(max_length=18, description="Provider department USCC")] = None,
    share_type: ShareType | None = None,
    classification: Annotated[
        str | None, Query(pattern=CLASSIFICATION_CODE, description="Node and descendants")
    ] = None,
    update_frequency: UpdateFrequency | None = None,
    resource_status: Annotated[Literal["published", "withdrawn", "any"], Query(alias="status")] = "published",
    licence_type_code: Annotated[str | None, Query(max_length=21)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    facets: bool = True,
) -> ResourcePage:
    """Search the catalogue; results are ordered by code, facets count the whole match."""
    query = ResourceQuery(
        q=q, provider=provider, share_type=share_type, classification=classification,
        update_frequency=update_frequency, status=None if resource_status == "any" else resource_status,
        licence_type_code=licence_type_code, limit=limit, offset=offset, facets=facets,
    )  # fmt: skip
    found = search_resources(session, query)
    following = offset + len(found.items)
    return ResourcePage(
        total=found.total, limit=limit, offset=offset, next_offset=following if following < found.total else None,
        items=found.items, facets=found.facets,
    )  # fmt: skip


@router.get("/v1/catalog/resources/{code:path}/versions")
def list_versions(code: str, session: SessionDep, _caller: Reader) -> list[VersionSummaryOut]:
    resource = resources.get_resource_or_raise(session, code)
    return [
        VersionSummaryOut(
            version=v.version, change_summary=v.change_summary, created_by=v.created_by, created_at=v.created_at
        )
        for v in resources.list_versions(session, resource.code)
    ]


@router.get("/v1/catalog/resources/{code:path}/versions/{version}")
def get_version(
    code: str, version: Annotated[int, PathParam(ge=1, le=2**31 - 1)], session: SessionDep, _caller: Reader
) -> VersionOut:
    resource = resources.get_resource_or_raise(session, code)
    row = resources.get_version_or_raise(session, resource.code, version)
    return VersionOut(
        resource_code=row.resource_code, version=row.version, change_summary=row.change_summary,
        created_by=row.created_by, created_at=row.created_at, snapshot=row.snapshot,
    )  # fmt: skip


@router.post("/v1/catalog/resources/{code:path}/withdraw")
def withdraw_resource(
    code: str, body: WithdrawIn, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> ResourceResponse:
    """Withdraw (撤销) a resource: it stays readable, its code is never reused, grant holders are told."""
    changed: Changed = _audited_refusal(
        caller, "catalog.resource.withdrawn", code,
        lambda: resources.withdraw_resource(session, runtime.settings, code, body.reason, owner=_owner(caller)),
    )  # fmt: skip
    receipt = caller_receipt(
        session, runtime, caller, "catalog.resource.withdrawn", resource_code=changed.resource.code,
        extra={"notified": str(len(changed.notified))},
    )  # fmt: skip
    return _response(session, changed.resource, receipt)


@router.patch("/v1/catalog/resources/{code:path}")
def update_resource(
    code: str, body: ResourcePatch, session: SessionDep, runtime: RuntimeDep, caller: Writer
) -> ResourceResponse:
    """Change a resource; a schema change (items, their types or share types) makes a new version."""
    changed: Changed = _audited_refusal(
        caller, "catalog.resource.updated", code,
        lambda: resources.update_resource(
            session, runtime.settings, code, body, owner=_owner(caller), actor=caller.department_code
        ),
    )  # fmt: skip
    extra = {"version": str(changed.resource.version), "new_version": str(changed.new_version).lower()}
    if changed.new_version:
        extra["notified"] = str(len(changed.notified))
    receipt = caller_receipt(
        session, runtime, caller, "catalog.resource.updated", resource_code=changed.resource.code, extra=extra
    )
    return _response(session, changed.resource, receipt)


@router.get("/v1/catalog/resources/{code:path}")
def get_resource(code: str, session: SessionDep, _caller: Reader) -> ResourceOut:
    """A resource with its full core metadata and the data items of its current version."""
    resource = resources.get_resource_or_raise(session, code)
    return resources.resource_view(resource, resources.get_items(session, resource.code))
