"""Publishes every licence type (证照类型) as a resource of the 电子证照 base catalogue.

Registered in ``licences.types.catalogue_hooks`` when ``catalog`` is imported (``catalog/__init__.py``; the
schema module imports ``catalog.models``), so the API, workers, the CLI and ``ensure_demo_types`` all
publish. The licences domain never imports the catalogue; this module depends on it, not the other way.

Each face field becomes a data item: key = property name, name = its ``title``, share type = its
``x-share-type``. Faces of citizens' licences (holder type 111) are personal information throughout.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import classifications, resources
from catalog.models import Resource
from catalog.schemas import DataItemIn, ResourceIn
from catalog.workdays import local_day
from hub.clock import utcnow
from hub.errors import InvalidInput
from hub.identity.models import Department
from licences import types as licence_types
from licences.models import LicenceType

CITIZEN = "111"
LICENCE_CONDITIONS = "依申请办理政务服务事项时，按各信息项的共享类型使用；涉及个人信息的须经持证主体授权。"
LICENCE_LEGAL_BASIS = "证照定义机构规定该证照照面信息不予共享。"
_DATA_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean"}
_FORMAT_TYPES = {"date": "date", "date-time": "datetime"}


class LicenceTypeNotPublishable(InvalidInput):
    code = "licence_type_not_publishable"
    title = "The licence type's face fields cannot be published as catalogue data items"


def _data_type(prop: dict[str, Any]) -> str:
    if prop.get("type") == "string":
        return _FORMAT_TYPES.get(str(prop.get("format")), "string")
    return _DATA_TYPES.get(str(prop.get("type")), "string")


def face_items(row: LicenceType) -> list[DataItemIn]:
    """The face schema's properties, in printed order, as data items."""
    personal = row.holder_type == CITIZEN
    return [
        DataItemIn(
            key=key, name=str(prop.get("title") or key)[:100], data_type=_data_type(prop),
            length=prop.get("maxLength"), description=prop.get("description"),
            share_type=prop.get("x-share-type", "none"), personal=personal,
        )
        for key, prop in row.face_schema.get("properties", {}).items()
    ]  # fmt: skip


def _share_type(items: list[DataItemIn]) -> str:
    kinds = {item.share_type for item in items}
    if kinds == {"unconditional"}:
        return "unconditional"
    return "none" if kinds == {"none"} else "conditional"


def _provider(session: Session, row: LicenceType) -> str | None:
    """The defining authority if it is a department of this hub, else the first registered issuer."""
    for code in (row.defining_authority_code, *row.issuer_codes):
        department = session.get(Department, code)
        if department is not None and department.active:
            return department.code
    return None


def publish_licence_type(session: Session, row: LicenceType) -> str | None:
    """The code of the 电子证照 resource for ``row``, created on first call; None if no provider is registered."""
    existing = session.scalar(select(Resource.code).where(Resource.licence_type_code == row.type_code))
    if existing is not None:
        return existing
    provider = _provider(session, row)
    if provider is None:
        return None
    classifications.ensure_classifications(session)
    try:
        items = face_items(row)
    except ValidationError as exc:  # e.g. a face field name that is not an item key (catalog.schemas.ITEM_KEY)
        where = ".".join(str(part) for part in exc.errors()[0]["loc"])
        raise LicenceTypeNotPublishable(f"face field {where}: {exc.errors()[0]['msg']}") from exc
    share_type = _share_type(items)
    body = ResourceIn(
        classification_code=classifications.LICENCE_NODE, name=row.name,
        summary=f"{row.name}（证照类型代码 {row.type_code}）的照面信息，由{row.defining_authority_name}定义。",
        format="电子文件", items=items, share_type=share_type,
        share_conditions=LICENCE_CONDITIONS if share_type == "conditional" else None,
        legal_basis=LICENCE_LEGAL_BASIS if share_type == "none" else None,
        share_method="licence", open_attribute="closed", update_frequency="realtime",
        publish_date=local_day(utcnow()), keywords=["电子证照", row.name],
    )  # fmt: skip
    return resources.create_resource(
        session, body, provider_code=provider, actor=provider, licence_type_code=row.type_code
    ).code


def register() -> None:
    if publish_licence_type not in licence_types.catalogue_hooks:
        licence_types.catalogue_hooks.append(publish_licence_type)
