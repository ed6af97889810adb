"""The holder portal ``/me`` (issue 8): my licences, a rotating QR code, consents, who used my data, my inbox.

Thin HTML views over the holder API's own handlers (``hub.api.routes.me``), so a page and its API call do
exactly the same thing, audit included. The portal keeps the holder's ID token in a session cookie
(HttpOnly, SameSite=Lax, Secure over HTTPS, path ``/me``) instead of a bearer header (DESIGN.md §4);
every form carries the double-submit CSRF token. Signing in uses the development identity provider, which
exists only in dev/demo/test; a production deployment signs in through its OpenID Connect provider
(not built yet: the sign-in page says so).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from hub.api import csrf
from hub.api.deps import RuntimeDep, SessionDep, holder_from_id_token, record_refusal
from hub.api.routes import me
from hub.api.routes.licences import licence_view
from hub.api.routes.pages import PAGE_HEADERS, SessionCookie, render_page
from hub.errors import DomainError
from hub.identity.models import Holder
from hub.identity.oidc import issue_dev_id_token
from hub.keys import service as keys
from hub.runtime import Runtime
from licences import holders
from licences.face import display_value, share_types
from licences.types import get_type_or_raise

router = APIRouter(prefix="/me", tags=["pages"], include_in_schema=False)
SESSION_COOKIE = "hub_session"
SESSION = SessionCookie(SESSION_COOKIE, path="/me", samesite="lax")  # lax: a link to /me opens signed in
SIGN_IN = "/me/sign-in"
IDENTIFIER = PathParam(min_length=1, max_length=120)


# The QR page alone runs one script of the hub's own (/static/qr-refresh.js): it fetches a new code in time.
QR_PAGE_HEADERS = PAGE_HEADERS | {
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; script-src 'self'"
}


def _render(
    request: Request, name: str, status: int = 200, *, headers: dict[str, str] = PAGE_HEADERS, **context: Any
) -> HTMLResponse:
    return render_page(request, name, status=status, cookie_path="/me", headers=headers, **context)


def _holder(request: Request, session: Session, runtime: Runtime) -> Holder | None:
    """The holder of the session cookie, or None (not signed in, expired, or a bad cookie: that one is audited)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return holder_from_id_token(session, runtime, token)
    except DomainError as exc:
        if exc.audit_event is not None:
            runtime.audit.record([exc.audit_event])
        return None


def _signed_out() -> Response:
    return RedirectResponse(SIGN_IN, status_code=303)


# ------------------------------------------------------------------------------------------------ sign in


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    return _render(request, "me/sign_in.html", dev_idp=runtime.settings.is_development, error=None)


class SignInForm(BaseModel):
    holder_type: str = Field(pattern="^(111|001)$")
    holder_code: str = Field(min_length=1, max_length=18)
    name: str = Field(min_length=1, max_length=100)
    csrf_token: str | None = Field(default=None, max_length=100)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request, form: Annotated[SignInForm, Form()], session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Development identity provider only: sign in as any citizen or company (demo and tests)."""
    settings = runtime.settings
    if not settings.is_development:
        return _render(request, "me/sign_in.html", 404, dev_idp=False, error=None)
    try:
        csrf.check(request, form.csrf_token)
        id_token = issue_dev_id_token(
            keys.signing_key(session, runtime.master_keys, keys.DEV_IDP), issuer=settings.dev_idp_issuer,
            audience=settings.oidc_audience, holder_type=form.holder_type,
            holder_code=form.holder_code.strip().upper(), name=form.name.strip(),
        )  # fmt: skip
        holder_from_id_token(session, runtime, id_token)  # validates the code, creates the account once
    except DomainError as exc:
        return _render(
            request, "me/sign_in.html", exc.status, dev_idp=True, error={"code": exc.code, "detail": exc.detail}
        )
    return SESSION.start(request, RedirectResponse("/me", status_code=303), id_token)


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: Annotated[str | None, Form(max_length=100)] = None) -> Response:
    return SESSION.end(request, csrf_token, stay="/me", leave=SIGN_IN)


# ------------------------------------------------------------------------------------------------ licences


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    holder = _holder(request, session, runtime)
    if holder is None:
        return _signed_out()
    return _render(request, "me/home.html", holder=holder, licences=me.my_licences(holder, session))


def _labels(session: Session, holder: Holder) -> dict[str, str]:
    """Printed labels of the face fields of every type the holder holds (access log and QR pages show names)."""
    labels: dict[str, str] = {}
    for code in {lic.type_code for lic in holders.holder_licences(session, holder.holder_type, holder.holder_code)}:
        for key, prop in get_type_or_raise(session, code).face_schema["properties"].items():
            labels.setdefault(key, str(prop.get("title", key)))
    return labels


def _face(session: Session, licence: Any) -> list[dict[str, Any]]:
    """Face fields with label, printed value and share type; ``default``: shown unless the holder unticks it."""
    schema = get_type_or_raise(session, licence.type_code).face_schema
    shares, default = share_types(schema), set(holders.default_fields(schema))
    return [
        {"key": key, "label": str(prop.get("title", key)), "value": display_value(prop, licence.face[key]),
         "share": shares.get(key, "none"), "default": key in default}
        for key, prop in schema["properties"].items() if key in licence.face
    ]  # fmt: skip


@router.get("/licences/{identifier}", response_class=HTMLResponse)
def licence_page(
    request: Request, identifier: Annotated[str, IDENTIFIER], session: SessionDep, runtime: RuntimeDep
) -> Response:
    holder = _holder(request, session, runtime)
    if holder is None:
        return _signed_out()
    try:
        licence = holders.holder_licence_or_raise(session, holder.holder_type, holder.holder_code, identifier)
    except DomainError as exc:
        return _render(request, "me/error.html", exc.status, holder=holder, error={"code": exc.code})
    view = licence_view(licence)  # what GET /v1/me/licences/{id} answers, from the row already read
    return _render(request, "me/licence.html", holder=holder, licence=view, face=_face(session, licence))


@router.get("/licences/{identifier}/qr", response_class=HTMLResponse)
def qr_page(
    request: Request,
    identifier: Annotated[str, IDENTIFIER],
    session: SessionDep,
    runtime: RuntimeDep,
    field: Annotated[list[str] | None, Query(max_length=64)] = None,
) -> Response:
    """A fresh presentation each time the page loads; the page reloads itself before the code expires."""
    holder = _holder(request, session, runtime)
    if holder is None:
        return _signed_out()
    try:
        shown = me.present_licence(identifier, me.PresentationIn(fields=field), holder, session, runtime)
    except DomainError as exc:
        return _render(request, "me/error.html", exc.status, holder=holder, error={"code": exc.code})
    ttl = runtime.settings.presentation_ttl_seconds
    return _render(
        request, "me/qr.html", headers=QR_PAGE_HEADERS, holder=holder, shown=shown, identifier=identifier,
        refresh_seconds=max(5, ttl - 20), labels=_labels(session, holder),
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------ consents


@router.get("/consents", response_class=HTMLResponse)
def consents_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    holder = _holder(request, session, runtime)
    if holder is None:
        return _signed_out()
    return _render(request, "me/consents.html", holder=holder, consents=me.list_consents(holder, session), error=None)


class ConsentForm(BaseModel):
    department_code: str = Field(max_length=64)
    matter_code: str = Field(max_length=64)
    case_number: str = Field(default="", max_length=64)
    valid_days: int = Field(default=30, ge=1, le=365)
    csrf_token: str | None = Field(default=None, max_length=100)


@router.post("/consents", response_class=HTMLResponse)
def give_consent(
    request: Request, form: Annotated[ConsentForm, Form()], session: SessionDep, runtime: RuntimeDep
) -> Response:
    holder = _holder(request, session, runtime)
    if holder is None:
        return _signed_out()
    try:
        csrf.check(request, form.csrf_token)
        body = me.ConsentIn(
            department_code=form.department_code.strip().upper(), matter_code=form.matter_code.strip(),
            case_number=form.case_number.strip() or None, valid_days=form.valid_days,
        )  # fmt: skip
        me.give_consent(body, holder, session, runtime)
    except (DomainError, ValueError) as exc:
        if isinstance(exc, DomainError):
            record_refusal(session, runtime, exc)  # a refused consent is audited, as through the API
        else:
            session.rollback()
        error = {"code": exc.code if isinstance(exc, DomainError) else "consent_invalid"}
        listed = me.list_consents(holder, session)
        return _render(request, "me/consents.html", 422, holder=holder, consents=listed, error=error)
    return RedirectResponse("/me/consents", status_code=303)


@router.post("/consents/{consent_id}/withdraw")
def withdraw_consent(
    request: Request,
    consent_id: Annotated[str, PathParam(pattern="^[0-9a-f]{32}$")],
    session: SessionDep,
    runtime: RuntimeDep,
    csrf_token: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    holder = _holder(request, session, runtime)
    if holder is None:
        return _signed_out()
    try:
        csrf.check(request, csrf_token)
        me.withdraw_consent(consent_id, holder, session, runtime)
    except DomainError as exc:
        record_refusal(session, runtime, exc)
        return _render(request, "me/error.html", exc.status, holder=holder, error={"code": exc.code})
    return RedirectResponse("/me/consents", status_code=303)


# ------------------------------------------------------------------------------------------------ what happened


@router.get("/access-log", response_class=HTMLResponse)
def access_log_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Who used my data, when, for which matter and case, which fields (from the audit log)."""
    holder = _holder(request, session, runtime)
    if holder is None:
        return _signed_out()
    items = me.access_log(holder, session, runtime, after=None, limit=200)
    return _render(request, "me/access_log.html", holder=holder, items=items, labels=_labels(session, holder))


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    holder = _holder(request, session, runtime)
    if holder is None:
        return _signed_out()
    items = me.my_notifications(holder, session, before=None, limit=100)
    return _render(request, "me/notifications.html", holder=holder, items=items)


@router.get("/timeline", response_class=HTMLResponse)
def timeline_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    holder = _holder(request, session, runtime)
    if holder is None:
        return _signed_out()
    items = me.my_timeline(holder, session, runtime, after=None, limit=200)
    return _render(request, "me/timeline.html", holder=holder, items=items)
