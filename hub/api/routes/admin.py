"""Admin API: departments and their API clients (scope ``admin``); every change is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status
from sqlalchemy import select

from hub.api.deps import RuntimeDep, SessionDep, require_scope
from hub.api.receipts import caller_receipt
from hub.api.schemas import ClientIn, ClientOut, DepartmentIn, DepartmentOut, ReceiptOut
from hub.identity import service as identity
from hub.identity.models import ApiClient, Department
from hub.identity.tokens import AccessClaims

router = APIRouter(prefix="/v1/admin", tags=["admin"])
AdminDep = Annotated[AccessClaims, require_scope("admin")]


def _audit(session: SessionDep, runtime: RuntimeDep, caller: AccessClaims, action: str, **fields: str) -> ReceiptOut:
    return caller_receipt(session, runtime, caller, action, actor_type="admin", extra=fields)


def _department_out(d: Department, receipt: ReceiptOut | None = None) -> DepartmentOut:
    return DepartmentOut(
        code=d.code, name=d.name, level=d.level, area_code=d.area_code, active=d.active, receipt=receipt
    )


def _client_out(c: ApiClient, secret: str | None = None, receipt: ReceiptOut | None = None) -> ClientOut:
    return ClientOut(
        client_id=c.client_id,
        department_code=c.department_code,
        scopes=c.scopes,
        token_endpoint_auth_method=c.auth_method,
        active=c.active,
        client_secret=secret,
        receipt=receipt,
    )


@router.post("/departments", status_code=status.HTTP_201_CREATED)
def create_department(body: DepartmentIn, session: SessionDep, runtime: RuntimeDep, caller: AdminDep) -> DepartmentOut:
    department = identity.create_department(session, **body.model_dump())
    receipt = _audit(session, runtime, caller, "identity.department.created", department_code=department.code)
    return _department_out(department, receipt)


@router.get("/departments")
def list_departments(session: SessionDep, _caller: AdminDep) -> list[DepartmentOut]:
    return [_department_out(d) for d in session.scalars(select(Department).order_by(Department.code))]


@router.post("/clients", status_code=status.HTTP_201_CREATED)
def create_client(body: ClientIn, session: SessionDep, runtime: RuntimeDep, caller: AdminDep) -> ClientOut:
    client, secret = identity.create_client(
        session, department_code=body.department_code, scopes=body.scopes, name=body.name, jwks=body.jwks
    )
    receipt = _audit(
        session, runtime, caller, "identity.client.created", created_client_id=client.client_id, scope=client.scopes
    )
    return _client_out(client, secret, receipt)


@router.post("/clients/{client_id}/disable")
def disable_client(client_id: str, session: SessionDep, runtime: RuntimeDep, caller: AdminDep) -> ClientOut:
    client = identity.disable_client(session, client_id)
    receipt = _audit(session, runtime, caller, "identity.client.disabled", disabled_client_id=client_id)
    return _client_out(client, receipt=receipt)
