"""Admin API: departments and their API clients (scope ``admin``)."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from hub.api.deps import SessionDep, require_scope
from hub.api.schemas import ClientIn, ClientOut, DepartmentIn, DepartmentOut
from hub.errors import NotFound
from hub.identity import service as identity
from hub.identity.models import ApiClient, Department

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[require_scope("admin")])


def _department_out(d: Department) -> DepartmentOut:
    return DepartmentOut(code=d.code, name=d.name, level=d.level, area_code=d.area_code, active=d.active)


def _client_out(c: ApiClient, secret: str | None = None) -> ClientOut:
    return ClientOut(
        client_id=c.client_id,
        department_code=c.department_code,
        scopes=c.scopes,
        token_endpoint_auth_method=c.auth_method,
        active=c.active,
        client_secret=secret,
    )


@router.post("/departments", status_code=status.HTTP_201_CREATED)
def create_department(body: DepartmentIn, session: SessionDep) -> DepartmentOut:
    return _department_out(identity.create_department(session, **body.model_dump()))


@router.get("/departments")
def list_departments(session: SessionDep) -> list[DepartmentOut]:
    return [_department_out(d) for d in session.scalars(select(Department).order_by(Department.code))]


@router.post("/clients", status_code=status.HTTP_201_CREATED)
def create_client(body: ClientIn, session: SessionDep) -> ClientOut:
    client, secret = identity.create_client(
        session, department_code=body.department_code, scopes=body.scopes, name=body.name, jwks=body.jwks
    )
    return _client_out(client, secret)


@router.post("/clients/{client_id}/disable")
def disable_client(client_id: str, session: SessionDep) -> ClientOut:
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"no client {client_id}")
    client.active = False
    return _client_out(client)
