"""Test builders for the catalogue: a provider and a consumer department with clients, an admin, resources.

``insert_resource`` writes rows directly (models only), so tests of requests, grants, objections and the
DCAT export do not depend on the resource service's validation; tests of that service use the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from factories import department as make_department
from fastapi.testclient import TestClient

from catalog.models import Classification, DataItem, Resource, ResourceVersion
from hub.clock import utcnow
from hub.runtime import Runtime
from tests.licences.licencekit import Department, department_client

CATALOG_SCOPES = "catalog:read catalog:write"
LEGAL_BASIS = "《中华人民共和国个人信息保护法》第十三条"
TEST_CLASSIFICATION = "3990"  # a level-2 node under 部门类 used only by tests


@dataclass
class ItemSpec:
    key: str
    name: str
    share_type: str = "unconditional"
    data_type: str = "string"
    personal: bool = False
    description: str | None = None


DEFAULT_ITEMS = (
    ItemSpec("uscc", "统一社会信用代码"),
    ItemSpec("name", "企业名称"),
    ItemSpec("legal_representative", "法定代表人", "conditional", personal=True),
    ItemSpec("registered_capital", "注册资本", "conditional", "number"),
)


@dataclass
class CatalogKit:
    client: TestClient
    runtime: Runtime
    provider: Department
    consumer: Department
    admin: Department
    created: list[str] = field(default_factory=list)

    def department(self, name: str, scopes: str = CATALOG_SCOPES) -> Department:
        with self.runtime.session_scope() as session:
            code = make_department(session, name).code
        return department_client(self.client, self.runtime, code, scopes)

    def insert_resource(
        self,
        *,
        name: str = "企业基本登记信息",
        share_type: str = "conditional",
        items: tuple[ItemSpec, ...] = DEFAULT_ITEMS,
        provider: Department | None = None,
        personal: bool | None = None,
        legal_basis: str | None = None,
        **overrides: Any,
    ) -> str:
        """A published resource (version 1) written straight to the tables; returns its code."""
        owner = provider or self.provider
        now = utcnow()
        with self.runtime.session_scope() as session:
            node = session.get(Classification, TEST_CLASSIFICATION, with_for_update=True)
            if node is None:
                if session.get(Classification, "3") is None:
                    session.add(Classification(code="3", name="部门类", level=1, parent_code=None, next_sequence=1))
                    session.flush()
                node = Classification(code=TEST_CLASSIFICATION, name="测试项", level=2, parent_code="3")
                node.next_sequence = 1
                session.add(node)
                session.flush()
            sequence = node.next_sequence
            node.next_sequence = sequence + 1
            code = f"{TEST_CLASSIFICATION}/{sequence:06d}"
            values: dict[str, Any] = {
                "code": code, "classification_code": TEST_CLASSIFICATION, "sequence": sequence, "name": name,
                "provider_code": owner.code, "provider_name": owner.name, "summary": f"{name}，测试用数据资源。",
                "format": "数据库", "share_type": share_type, "share_conditions": None,
                "legal_basis": legal_basis or (LEGAL_BASIS if share_type == "none" else None),
                "share_method": "api", "open_attribute": "closed", "update_frequency": "daily",
                "publish_date": date(2026, 1, 15), "related_codes": [], "keywords": [],
                "contains_personal_data": any(i.personal for i in items) if personal is None else personal,
                "licence_type_code": None, "version": 1, "status": "published",
                "search_text": " ".join([name, *(i.name for i in items)]).lower(),
                "created_at": now, "modified_at": now,
            }  # fmt: skip
            if share_type == "conditional":
                values["share_conditions"] = "仅限办理相关政务服务事项时使用"
            values.update(overrides)
            session.add(Resource(**values))
            session.flush()
            for position, item in enumerate(items):
                session.add(
                    DataItem(
                        resource_code=code, position=position, key=item.key, name=item.name,
                        data_type=item.data_type, length=None, description=item.description,
                        share_type=item.share_type, share_conditions=None, personal=item.personal,
                    )
                )  # fmt: skip
            snapshot = {k: v for k, v in values.items() if k not in {"created_at", "modified_at", "publish_date"}}
            snapshot["items"] = [vars(item) for item in items]
            session.add(
                ResourceVersion(resource_code=code, version=1, snapshot=snapshot, created_by=owner.code, created_at=now)
            )
        self.created.append(code)
        return code


def make_catalog_kit(client: TestClient, runtime: Runtime) -> CatalogKit:
    def dept(name: str, scopes: str = CATALOG_SCOPES) -> Department:
        with runtime.session_scope() as session:
            code = make_department(session, name).code
        return department_client(client, runtime, code, scopes)

    provider = dept("临江市市场监督管理局")
    consumer = dept("临江市人力资源和社会保障局", f"{CATALOG_SCOPES} exchange:fetch exchange:verify")
    admin = dept("临江市政务服务数据管理局", f"{CATALOG_SCOPES} admin audit:read")
    return CatalogKit(client, runtime, provider, consumer, admin)
