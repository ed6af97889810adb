"""Data resources (数据资源): create, change, version and withdraw them, and read them back.

Share-type consistency (国发〔2016〕51号 第九条; 编制指南 defines 有条件共享 as data shared with some
departments *or only partly* with all of them):

* an ``unconditional`` resource holds only ``unconditional`` items — access to it is approved without a
  provider decision, so nothing in it may need one;
* a ``none`` (不予共享) resource holds only ``none`` items and names its legal basis;
* a ``conditional`` resource states its share conditions and holds at least one item that is not ``none``
  (otherwise it is a ``none`` resource); it may mix all three item share types.

An ``open`` (无条件开放) resource must also be ``unconditional`` and hold no personal information.

A *schema change* — items added or removed, or an item's data type, share type or personal flag changed, or
the resource's own share type changed — makes a new version: a ``ResourceVersion`` snapshot, ``version + 1``,
and a webhook to every department holding an active grant on the resource. Other changes only bump
``modified_at``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog import classifications, search
from catalog.models import Classification, DataItem, Grant, Resource, ResourceVersion
from catalog.schemas import (
    RESOURCE_CODE_RE,
    DataItemIn,
    DataItemOut,
    ResourceIn,
    ResourceOut,
    ResourcePatch,
)
from hub.clock import utcnow
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.identity.models import Department
from hub.settings import Settings
from hub.webhooks import service as webhooks

VERSION_CHANGED = "cn.gov.licence-hub.catalog.resource.version-changed"
WITHDRAWN = "cn.gov.licence-hub.catalog.resource.withdrawn"
_SCHEMA_FIELDS = ("data_type", "share_type", "personal")
_METADATA_FIELDS = (
    "name", "summary", "format", "share_type", "share_conditions", "legal_basis", "share_method", "open_attribute",
    "update_frequency", "publish_date", "related_codes", "keywords",
)  # fmt: skip


class ResourceCodeInvalid(InvalidInput):
    code = "resource_code_invalid"
    title = "Not a resource code (classification code, '/', six-digit sequence, e.g. 105/000001)"


class ResourceNotFound(NotFound):
    code = "resource_not_found"
    title = "No resource has this code"


class ResourceVersionNotFound(NotFound):
    code = "resource_version_not_found"
    title = "The resource has no such version"


class ResourceInvalid(InvalidInput):
    code = "resource_invalid"
    title = "The resource metadata is not consistent"


class ResourceWithdrawn(Conflict):
    code = "resource_withdrawn"
    title = "The resource has been withdrawn and can no longer change"


class RelatedResourceUnknown(InvalidInput):
    code = "related_resource_unknown"
    title = "A related resource code names no resource"


class ProviderUnknown(InvalidInput):
    code = "provider_unknown"
    title = "The provider is not a registered department"


class ProviderNotAllowed(Forbidden):
    code = "provider_not_allowed"
    title = "A department publishes only its own resources; an admin may name another provider"


@dataclass(frozen=True)
class Changed:
    """What an update did: the resource, whether it made a new version, and which item keys moved."""

    resource: Resource
    new_version: bool
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)  # departments holding active grants


def validate_resource_code(code: str) -> str:
    if not RESOURCE_CODE_RE.fullmatch(code):
        raise ResourceCodeInvalid(f"{code!r} is not a resource code")
    return code


def get_resource(session: Session, code: str) -> Resource | None:
    return session.get(Resource, validate_resource_code(code))


def get_resource_or_raise(session: Session, code: str, *, owner: str | None = None) -> Resource:
    """The resource; with ``owner`` only if that department provides it (others get the same 404)."""
    resource = get_resource(session, code)
    if resource is None or (owner is not None and resource.provider_code != owner):
        raise ResourceNotFound(f"no resource {code}")
    return resource


def get_items(session: Session, code: str) -> list[DataItem]:
    return list(session.scalars(select(DataItem).where(DataItem.resource_code == code).order_by(DataItem.position)))


def check_consistency(values: dict[str, Any], items: list[DataItemIn]) -> None:
    """The share-type rules of the module docstring, plus unique item keys; raises ``ResourceInvalid``."""
    keys = [item.key for item in items]
    if duplicates := sorted({key for key in keys if keys.count(key) > 1}):
        raise ResourceInvalid(f"data item keys must be unique; repeated: {', '.join(duplicates)}")
    share_type = values["share_type"]
    item_types = {item.share_type for item in items}
    if share_type == "unconditional" and item_types != {"unconditional"}:
        raise ResourceInvalid("an unconditional resource holds only unconditional data items")
    if share_type == "none" and item_types != {"none"}:
        raise ResourceInvalid("a resource that is not shared (none) holds only data items that are not shared")
    if share_type == "conditional" and item_types == {"none"}:
        raise ResourceInvalid("a conditional resource needs at least one shareable data item; otherwise use none")
    if share_type == "conditional" and not (values.get("share_conditions") or "").strip():
        raise ResourceInvalid("share_conditions are required for a conditional resource")
    if share_type == "none" and not (values.get("legal_basis") or "").strip():
        raise ResourceInvalid("legal_basis is required for a resource that is not shared (none, 不予共享)")
    if values["open_attribute"] == "open" and (share_type != "unconditional" or any(i.personal for i in items)):
        raise ResourceInvalid("an open resource must be unconditional and hold no personal information")
    if values["share_method"] == "licence" and values.get("licence_type_code") is None:
        raise ResourceInvalid("share method licence is reserved for licence types published to 电子证照")


def _check_related(session: Session, own_code: str | None, codes: list[str]) -> list[str]:
    unique = list(dict.fromkeys(codes))
    if own_code in unique:
        raise RelatedResourceUnknown("a resource cannot be related to itself")
    found = set(session.scalars(select(Resource.code).where(Resource.code.in_(unique)))) if unique else set()
    if missing := [code for code in unique if code not in found]:
        raise RelatedResourceUnknown(f"no resource {', '.join(missing)}")
    return unique


def _item_rows(code: str, items: list[DataItemIn]) -> list[DataItem]:
    return [
        DataItem(
            resource_code=code, position=position, key=item.key, name=item.name, data_type=item.data_type,
            length=item.length, description=item.description, share_type=item.share_type,
            share_conditions=item.share_conditions, personal=item.personal,
        )
        for position, item in enumerate(items)
    ]  # fmt: skip


def _search_text(resource: Resource, items: list[DataItemIn]) -> str:
    return search.search_text(resource.name, resource.summary, resource.keywords, [item.name for item in items])


def _snapshot(resource: Resource, items: list[DataItemIn]) -> dict[str, Any]:
    """The version as JSON: every core metadata field and the items, in order."""
    body: dict[str, Any] = {name: getattr(resource, name) for name in _METADATA_FIELDS}
    body |= {
        "code": resource.code, "classification_code": resource.classification_code, "version": resource.version,
        "provider_code": resource.provider_code, "provider_name": resource.provider_name,
        "licence_type_code": resource.licence_type_code, "contains_personal_data": resource.contains_personal_data,
        "publish_date": resource.publish_date.isoformat(), "items": [item.model_dump() for item in items],
    }  # fmt: skip
    return body


def _add_version(
    session: Session, resource: Resource, items: list[DataItemIn], actor: str, summary: str | None
) -> None:
    session.add(
        ResourceVersion(
            resource_code=resource.code, version=resource.version, snapshot=_snapshot(resource, items),
            change_summary=summary, created_by=actor, created_at=resource.modified_at,
        )
    )  # fmt: skip


def _provider(session: Session, provider_code: str) -> Department:
    department = session.get(Department, provider_code)
    if department is None or not department.active:
        raise ProviderUnknown(f"no active department {provider_code}")
    return department


def resolve_provider(caller_department: str, *, is_admin: bool, requested: str | None) -> str:
    """Whose resource a create makes: the caller's own department, or the one an admin names."""
    if requested is None or requested == caller_department:
        return caller_department
    if not is_admin:
        raise ProviderNotAllowed(f"department {caller_department} cannot publish for {requested}")
    return requested


def create_resource(
    session: Session, body: ResourceIn, *, provider_code: str, actor: str, licence_type_code: str | None = None
) -> Resource:
    """Validate, allocate the code under the classification's row lock, and write version 1."""
    values = body.model_dump(exclude={"items", "classification_code", "provider_code"})
    values["licence_type_code"] = licence_type_code
    check_consistency(values, body.items)
    if session.get(Classification, body.classification_code) is None:
        raise classifications.ClassificationUnknown(f"no classification {body.classification_code}")
    provider = _provider(session, provider_code)
    related = _check_related(session, None, body.related_codes)
    sequence = classifications.allocate_sequence(session, body.classification_code)
    # The counter only grows, so this loop never turns; should a counter ever be set back by hand, codes
    # still in use are skipped rather than handed out twice (the primary key would refuse them anyway).
    while session.get(Resource, code := f"{body.classification_code}/{sequence:06d}") is not None:
        sequence = classifications.allocate_sequence(session, body.classification_code)
    now = utcnow()
    values |= {"related_codes": related, "keywords": list(dict.fromkeys(body.keywords))}
    resource = Resource(
        code=code, classification_code=body.classification_code, sequence=sequence, provider_code=provider.code,
        provider_name=provider.name, contains_personal_data=any(item.personal for item in body.items), version=1,
        status="published", created_at=now, modified_at=now, **values,
    )  # fmt: skip
    resource.search_text = _search_text(resource, body.items)
    session.add(resource)
    session.flush()
    session.add_all(_item_rows(code, body.items))
    _add_version(session, resource, body.items, actor, "首次发布")
    session.flush()
    return resource


def _as_inputs(items: list[DataItem]) -> list[DataItemIn]:
    return [
        DataItemIn(
            key=i.key, name=i.name, data_type=i.data_type, length=i.length, description=i.description,
            share_type=i.share_type, share_conditions=i.share_conditions, personal=i.personal,
        )
        for i in items
    ]  # fmt: skip


def _schema_diff(old: list[DataItemIn], new: list[DataItemIn]) -> tuple[list[str], list[str], list[str]]:
    before = {item.key: tuple(getattr(item, f) for f in _SCHEMA_FIELDS) for item in old}
    after = {item.key: tuple(getattr(item, f) for f in _SCHEMA_FIELDS) for item in new}
    added = [key for key in after if key not in before]
    removed = [key for key in before if key not in after]
    changed = [key for key in after if key in before and before[key] != after[key]]
    return added, removed, changed


def update_resource(
    session: Session, settings: Settings, code: str, patch: ResourcePatch, *, owner: str | None, actor: str
) -> Changed:
    """Apply ``patch``; a schema change makes a new version and notifies holders of active grants."""
    resource = get_resource_or_raise(session, code, owner=owner)
    session.refresh(resource, with_for_update=True)  # one writer per resource; PostgreSQL row lock
    if resource.status == "withdrawn":
        raise ResourceWithdrawn(f"resource {code} was withdrawn")
    current = _as_inputs(get_items(session, code))
    items = patch.items if patch.items is not None else current
    changes = patch.model_dump(exclude_unset=True, exclude={"items", "change_summary"})
    values = {name: getattr(resource, name) for name in (*_METADATA_FIELDS, "licence_type_code")} | changes
    check_consistency(values, items)
    if "related_codes" in changes:
        changes["related_codes"] = _check_related(session, code, changes["related_codes"])
    if "keywords" in changes:
        changes["keywords"] = list(dict.fromkeys(changes["keywords"]))
    added, removed, changed = _schema_diff(current, items)
    new_version = bool(added or removed or changed) or values["share_type"] != resource.share_type
    for name, value in changes.items():
        setattr(resource, name, value)
    if patch.items is not None:
        session.execute(delete(DataItem).where(DataItem.resource_code == code))
        session.flush()
        session.add_all(_item_rows(code, items))
    resource.contains_personal_data = any(item.personal for item in items)
    resource.search_text = _search_text(resource, items)
    resource.modified_at = utcnow()
    notified: list[str] = []
    if new_version:
        resource.version += 1
        _add_version(session, resource, items, actor, patch.change_summary)
        notified = _notify_grant_holders(
            session, settings, resource, kind=VERSION_CHANGED, event_key=f"{code}@{resource.version}",
            data={"previous_version": resource.version - 1, "added": added, "removed": removed, "changed": changed},
        )  # fmt: skip
    session.flush()
    return Changed(resource, new_version, added, removed, changed, notified)


def withdraw_resource(session: Session, settings: Settings, code: str, reason: str, *, owner: str | None) -> Changed:
    """Withdraw (撤销) a resource: it stays readable under its code, which is never handed out again."""
    resource = get_resource_or_raise(session, code, owner=owner)
    session.refresh(resource, with_for_update=True)
    if resource.status == "withdrawn":
        raise ResourceWithdrawn(f"resource {code} was already withdrawn")
    now = utcnow()
    resource.status = "withdrawn"
    resource.withdrawn_at = now
    resource.withdrawal_reason = reason
    resource.modified_at = now
    notified = _notify_grant_holders(
        session, settings, resource, kind=WITHDRAWN, event_key=f"{code}@withdrawn", data={}
    )
    session.flush()
    return Changed(resource, new_version=False, notified=notified)


def active_grant_holders(session: Session, code: str) -> list[str]:
    query = select(Grant.consumer_code).where(Grant.resource_code == code, Grant.status == "active").distinct()
    return sorted(session.scalars(query))


def _notify_grant_holders(
    session: Session, settings: Settings, resource: Resource, *, kind: str, event_key: str, data: dict[str, Any]
) -> list[str]:
    """One CloudEvent per department holding an active grant; the event id makes a retry send once."""
    holders = active_grant_holders(session, resource.code)
    body = {"resource_code": resource.code, "version": resource.version, "status": resource.status} | data
    for department_code in holders:
        webhooks.emit(
            session, settings, department_code=department_code, type=kind, subject=resource.code, data=body,
            event_id=f"catalog:{event_key}",
        )  # fmt: skip
    return holders


def list_versions(session: Session, code: str) -> list[ResourceVersion]:
    query = select(ResourceVersion).where(ResourceVersion.resource_code == code).order_by(ResourceVersion.version)
    return list(session.scalars(query))


def get_version_or_raise(session: Session, code: str, version: int) -> ResourceVersion:
    row = session.get(ResourceVersion, (code, version))
    if row is None:
        raise ResourceVersionNotFound(f"resource {code} has no version {version}")
    return row


def resource_view(resource: Resource, items: list[DataItem]) -> ResourceOut:
    return ResourceOut(
        code=resource.code, name=resource.name, classification_code=resource.classification_code,
        provider_code=resource.provider_code, provider_name=resource.provider_name, share_type=resource.share_type,
        update_frequency=resource.update_frequency, format=resource.format, status=resource.status,
        version=resource.version, licence_type_code=resource.licence_type_code, modified_at=resource.modified_at,
        summary=resource.summary, share_conditions=resource.share_conditions, legal_basis=resource.legal_basis,
        share_method=resource.share_method, open_attribute=resource.open_attribute,
        publish_date=resource.publish_date, related_codes=resource.related_codes, keywords=resource.keywords,
        contains_personal_data=resource.contains_personal_data, sequence=resource.sequence,
        created_at=resource.created_at, withdrawn_at=resource.withdrawn_at,
        withdrawal_reason=resource.withdrawal_reason,
        items=[
            DataItemOut(
                key=i.key, name=i.name, data_type=i.data_type, length=i.length, description=i.description,
                share_type=i.share_type, share_conditions=i.share_conditions, personal=i.personal,
            )
            for i in items
        ],
    )  # fmt: skip
