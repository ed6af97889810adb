"""Staff sign-in for the consoles (issue 8): the auditor console ``/audit`` and the department console ``/console``.

An officer signs in with an ID token from the region's identity provider naming the officer, the department
(``dept``) and the roles (``roles``: hub scopes). The token is kept in a session cookie (HttpOnly,
SameSite=Strict, Secure over HTTPS) and checked on every request (``hub.api.deps.staff_from_id_token``); the
console then calls the API's own handlers with the claims it yields, so a console action and its API call are
the same code, authorisation and audit included, with ``client_id`` ``staff:<officer id>`` in the log.
Signing in here uses the development identity provider (dev/demo/test); production sign-in through a real
provider's authorisation-code flow is not built yet, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api import csrf
from hub.api.deps import STAFF_ROLES, RuntimeDep, SessionDep, staff_from_id_token
from hub.api.routes.pages import PAGE_HEADERS, SessionCookie, render_page
from hub.errors import DomainError
from hub.identity.models import Department
from hub.identity.oidc import StaffIdentity, issue_dev_staff_token
from hub.identity.scopes import SCOPES
from hub.identity.tokens import AccessClaims
from hub.keys import service as keys
from hub.runtime import Runtime

router = APIRouter(prefix="/staff", tags=["pages"], include_in_schema=False)
STAFF_COOKIE = "hub_staff"
SESSION = SessionCookie(STAFF_COOKIE, path="/", samesite="strict")  # staff: no cross-site navigation signed in
CONSOLES = ("/audit", "/console")  # where a sign-in may send the officer back to (no open redirect)


@dataclass(frozen=True)
class Officer:
    identity: StaffIdentity
    claims: AccessClaims
    department_name: str

    def may(self, scope: str) -> bool:
        return scope in self.claims.scopes


def render_staff(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A console page: its CSRF cookie covers every console (path ``/``), like the staff session cookie."""
    return render_page(request, name, status=status, cookie_path="/", headers=PAGE_HEADERS, **context)


def current_officer(request: Request, session: Session, runtime: Runtime) -> Officer | None:
    """The officer of the session cookie, or None (not signed in, expired, or a bad cookie: that one is audited)."""
    token = request.cookies.get(STAFF_COOKIE)
    if not token:
        return None
    try:
        identity, claims = staff_from_id_token(session, runtime, token)
    except DomainError as exc:
        if exc.audit_event is not None:
            runtime.audit.record([exc.audit_event])
        return None
    department = session.get(Department, identity.department_code)
    return Officer(identity, claims, department.name if department is not None else identity.department_code)


def officer_for(request: Request, session: Session, runtime: Runtime, scope: str | None) -> Officer | Response:
    """The signed-in officer holding ``scope``, or the answer instead: go and sign in, or 403 (as the API's)."""
    officer = current_officer(request, session, runtime)
    if officer is None:
        return RedirectResponse(f"/staff/sign-in?next={request.url.path}", status_code=303)
    if scope is not None and not officer.may(scope):
        error = {"code": "scope_missing"}
        return render_staff(request, "staff/error.html", 403, officer=officer, error=error, scope=scope)
    return officer


def _next(path: str | None) -> str:
    return path if path and path.startswith(CONSOLES) and "//" not in path and "\\" not in path else "/console"


def _departments(session: Session) -> list[Department]:
    return list(session.scalars(select(Department).order_by(Department.code)))


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    next_: Annotated[str | None, Query(alias="next", max_length=200)] = None,
) -> HTMLResponse:
    dev = runtime.settings.is_development
    return render_staff(
        request, "staff/sign_in.html", dev_idp=dev, error=None, next=_next(next_),
        departments=_departments(session) if dev else [], roles=_roles(),
    )  # fmt: skip


def _roles() -> list[str]:
    return sorted(STAFF_ROLES)  # their words are in the template


class SignInForm(BaseModel):
    officer_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=100)
    department_code: str = Field(min_length=1, max_length=18)
    roles: list[str] = Field(default_factory=list, max_length=len(SCOPES))
    next: str | None = Field(default=None, max_length=200)
    csrf_token: str | None = Field(default=None, max_length=100)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request, form: Annotated[SignInForm, Form()], session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Development identity provider only: sign in as an officer of any registered department."""
    settings = runtime.settings
    if not settings.is_development:
        return render_staff(request, "staff/sign_in.html", 404, dev_idp=False, error=None, next="/console")
    try:
        csrf.check(request, form.csrf_token)
        id_token = issue_dev_staff_token(
            keys.signing_key(session, runtime.master_keys, keys.DEV_IDP), issuer=settings.dev_idp_issuer,
            audience=settings.oidc_audience, officer_id=form.officer_id.strip(), name=form.name.strip(),
            department_code=form.department_code.strip().upper(), roles=form.roles,
        )  # fmt: skip
        staff_from_id_token(session, runtime, id_token)  # the checks every later request makes
    except DomainError as exc:
        if exc.audit_event is not None:
            runtime.audit.record([exc.audit_event])
        return render_staff(
            request, "staff/sign_in.html", exc.status, dev_idp=True, next=_next(form.next),
            departments=_departments(session), roles=_roles(), error={"code": exc.code, "detail": exc.detail},
        )  # fmt: skip
    return SESSION.start(request, RedirectResponse(_next(form.next), status_code=303), id_token)


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: Annotated[str | None, Form(max_length=100)] = None) -> Response:
    return SESSION.end(request, csrf_token, stay="/console", leave="/staff/sign-in")
