"""The department console ``/console`` (issue 8, minimal).

Issue a licence from a form, suspend / reinstate / revoke it, follow batches, decide access requests and
handle objections.

Each page calls the department API's own handler with the signed-in officer's claims (hub.api.routes.staff),
so the same scope checks, department checks (no other department's records: the same 404) and audit entries
apply; a refusal's audit entry is recorded after its rollback, exactly as the API does it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from catalog import objections
from catalog.access_requests import ApproveIn, RejectIn
from catalog.objection_schemas import NoteIn, ReasonIn
from hub.api import csrf
from hub.api.deps import RuntimeDep, SessionDep, record_refusal
from hub.api.routes import catalog_access, catalog_objections, licences
from hub.api.routes.staff import Officer, officer_for, render_staff
from hub.errors import DomainError, InvalidInput
from hub.runtime import Runtime
from licences import batches
from licences.face import display_value
from licences.models import Licence, LicenceBatch, LicenceType
from licences.schemas import LicenceRequest, ReinstateRequest, RevokeRequest, SuspendRequest
from licences.types import get_type_or_raise

router = APIRouter(prefix="/console", tags=["pages"], include_in_schema=False)
IDENTIFIER = PathParam(min_length=1, max_length=120)
ISSUE, WRITE = "licence:issue", "catalog:write"
LIST_SIZE = 50


async def _form(request: Request) -> FormData:
    """The posted form as it came (the issuance form's fields depend on the licence type)."""
    return await request.form(max_files=0, max_fields=200)


FormDep = Annotated[FormData, Depends(_form)]


class FormInvalid(InvalidInput):
    code = "form_invalid"
    title = "Some fields of the form are missing or not acceptable"


def _page(request: Request, name: str, officer: Officer, status: int = 200, **context: Any) -> HTMLResponse:
    return render_staff(request, name, status, officer=officer, **context)


def _refused(request: Request, session: Session, runtime: Runtime, officer: Officer, exc: DomainError) -> HTMLResponse:
    record_refusal(session, runtime, exc)
    error = {"code": exc.code, "detail": exc.detail}
    return _page(request, "staff/error.html", officer, exc.status, error=error)


def _posted(
    request: Request, session: Session, runtime: Runtime, form: FormData, *, scope: str, act: Callable[[Officer], str]
) -> Response:
    """A console form post: signed in, holding ``scope``, CSRF checked; ``act`` returns where to go next."""
    officer = officer_for(request, session, runtime, scope)
    if not isinstance(officer, Officer):
        return officer
    try:
        csrf.check(request, _text(form, "csrf_token"))
        return RedirectResponse(act(officer), status_code=303)
    except DomainError as exc:
        return _refused(request, session, runtime, officer, exc)
    except ValidationError as exc:
        return _refused(request, session, runtime, officer, FormInvalid(_first_problem(exc)))


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _first_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


# ------------------------------------------------------------------------------------------------ home


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    officer = officer_for(request, session, runtime, None)
    if not isinstance(officer, Officer):
        return officer
    code = officer.claims.department_code
    recent = session.scalars(
        select(Licence).where(Licence.issuer_code == code).order_by(Licence.pk.desc()).limit(LIST_SIZE)
    ).all()
    return _page(request, "console/home.html", officer, licences=recent, types=_issuable(session, code))


def _issuable(session: Session, department_code: str) -> list[LicenceType]:
    everything = session.scalars(select(LicenceType).order_by(LicenceType.name))
    return [t for t in everything if department_code in t.issuer_codes]


# ------------------------------------------------------------------------------------------------ issue


def _fields(licence_type: LicenceType) -> list[dict[str, Any]]:
    """The face fields as form inputs: label, input kind, choices, whether required."""
    schema = licence_type.face_schema
    required = set(schema.get("required", []))
    return [
        {"key": key, "label": str(prop.get("title", key)), "required": key in required,
         "kind": "choice" if "enum" in prop else "date" if prop.get("format") == "date" else "text",
         "choices": prop.get("enum", []), "max_length": prop.get("maxLength", 500)}
        for key, prop in schema["properties"].items()
    ]  # fmt: skip


@router.get("/licences/new", response_class=HTMLResponse)
def new_licence_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    type_code: Annotated[str | None, Query(alias="type", max_length=21)] = None,
) -> Response:
    officer = officer_for(request, session, runtime, ISSUE)
    if not isinstance(officer, Officer):
        return officer
    types = _issuable(session, officer.claims.department_code)
    chosen = next((t for t in types if t.type_code == type_code), None)
    return _page(
        request, "console/issue.html", officer, types=types, chosen=chosen,
        fields=_fields(chosen) if chosen else [], idempotency_key=secrets.token_urlsafe(24),
    )  # fmt: skip


@router.post("/licences")
def issue_licence(request: Request, form: FormDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Issue through ``POST /v1/licences``'s handler; the form's one-time key makes a double submit harmless."""

    def act(officer: Officer) -> str:
        type_code = _text(form, "certificate_type_code") or ""
        licence_type = get_type_or_raise(session, type_code)
        face = {f["key"]: _text(form, f"face.{f['key']}") for f in _fields(licence_type)}
        body = LicenceRequest.model_validate({
            "certificate_type_code": type_code, "certificate_holder_type": licence_type.holder_type,
            "certificate_holder_code": (_text(form, "holder_code") or "").upper(),
            "certificate_holder_name": _text(form, "holder_name") or "",
            "certificate_validity_start": _text(form, "validity_start"),
            "certificate_validity_end": _text(form, "validity_end"),
            "face": {key: value for key, value in face.items() if value is not None},
        })  # fmt: skip
        out = licences.issue_licence(
            body, Response(), session, runtime, officer.claims, idempotency_key=_text(form, "idempotency_key")
        )
        return f"/console/licences/{out.certificate_identifier}"

    return _posted(request, session, runtime, form, scope=ISSUE, act=act)


# ------------------------------------------------------------------------------------------------ one licence


@router.get("/licences/{identifier}", response_class=HTMLResponse)
def licence_page(
    request: Request, identifier: Annotated[str, IDENTIFIER], session: SessionDep, runtime: RuntimeDep
) -> Response:
    officer = officer_for(request, session, runtime, ISSUE)
    if not isinstance(officer, Officer):
        return officer
    try:
        out = licences.get_licence(identifier, session, runtime, officer.claims)  # the read is audited
    except DomainError as exc:
        return _refused(request, session, runtime, officer, exc)
    schema = get_type_or_raise(session, out.certificate_type_code).face_schema
    face = [
        (str(prop.get("title", key)), display_value(prop, out.face[key]))
        for key, prop in schema["properties"].items() if key in out.face
    ]  # fmt: skip
    return _page(request, "console/licence.html", officer, licence=out, face=face)


@router.get("/licences/{identifier}/file")
def licence_file(
    request: Request, identifier: Annotated[str, IDENTIFIER], session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The issuer-sealed PDF, through ``GET /v1/licences/{id}/file`` (audited)."""
    officer = officer_for(request, session, runtime, ISSUE)
    if not isinstance(officer, Officer):
        return officer
    try:
        return licences.get_licence_file(identifier, session, runtime, officer.claims)
    except DomainError as exc:
        return _refused(request, session, runtime, officer, exc)


_TRANSITIONS: dict[str, tuple[Callable[..., Any], type[Any]]] = {
    "suspend": (licences.suspend_licence, SuspendRequest),
    "reinstate": (licences.reinstate_licence, ReinstateRequest),
    "revoke": (licences.revoke_licence, RevokeRequest),
}


@router.post("/licences/{identifier}/{transition}")
def change_status(  # noqa: PLR0917 - FastAPI injects dependencies by parameter name
    request: Request,
    identifier: Annotated[str, IDENTIFIER],
    transition: Literal["suspend", "reinstate", "revoke"],
    form: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    def act(officer: Officer) -> str:
        handler, body_type = _TRANSITIONS[transition]
        body = body_type.model_validate({"reason": _text(form, "reason")})
        handler(identifier, body, session, runtime, officer.claims)
        return f"/console/licences/{identifier}"

    return _posted(request, session, runtime, form, scope=ISSUE, act=act)


# ------------------------------------------------------------------------------------------------ batches


@router.get("/batches", response_class=HTMLResponse)
def batches_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    officer = officer_for(request, session, runtime, ISSUE)
    if not isinstance(officer, Officer):
        return officer
    rows = session.scalars(
        select(LicenceBatch)
        .where(LicenceBatch.department_code == officer.claims.department_code)
        .order_by(LicenceBatch.created_at.desc())
        .limit(LIST_SIZE)
    ).all()
    counts = batches.progress_of(session, [row.id for row in rows])
    listed = [(row, counts[row.id]) for row in rows]
    return _page(request, "console/batches.html", officer, batches=listed)


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(
    request: Request,
    batch_id: Annotated[str, PathParam(max_length=32)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    officer = officer_for(request, session, runtime, ISSUE)
    if not isinstance(officer, Officer):
        return officer
    try:
        batch = licences.get_batch(batch_id, session, officer.claims)
    except DomainError as exc:
        return _refused(request, session, runtime, officer, exc)
    return _page(request, "console/batch.html", officer, batch=batch)


# ------------------------------------------------------------------------------------------------ access requests


@router.get("/access-requests", response_class=HTMLResponse)
def access_requests_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    officer = officer_for(request, session, runtime, WRITE)
    if not isinstance(officer, Officer):
        return officer
    received = catalog_access.list_access_requests(session, runtime, officer.claims, role="provider", limit=LIST_SIZE)
    made = catalog_access.list_access_requests(session, runtime, officer.claims, role="consumer", limit=LIST_SIZE)
    return _page(request, "console/access_requests.html", officer, received=received, made=made)


@router.post("/access-requests/{request_id}/{decision}")
def decide_access_request(  # noqa: PLR0917 - FastAPI injects dependencies by parameter name
    request: Request,
    request_id: Annotated[str, PathParam(max_length=32)],
    decision: Literal["approve", "reject"],
    form: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    def act(officer: Officer) -> str:
        reason = _text(form, "reason")
        if decision == "approve":
            catalog_access.approve_access_request(
                request_id, ApproveIn(reason=reason), session, runtime, officer.claims
            )
        else:
            catalog_access.reject_access_request(request_id, RejectIn(reason=reason), session, runtime, officer.claims)
        return "/console/access-requests"

    return _posted(request, session, runtime, form, scope=WRITE, act=act)


# ------------------------------------------------------------------------------------------------ objections


@router.get("/objections", response_class=HTMLResponse)
def objections_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    officer = officer_for(request, session, runtime, WRITE)
    if not isinstance(officer, Officer):
        return officer
    rows = catalog_objections.list_objections(session, runtime, officer.claims, role="handler", limit=LIST_SIZE)
    steps = {row.id: [_VERB_OF[s] for s in objections.NEXT[row.status]] for row in rows}
    return _page(
        request, "console/objections.html", officer, objections=rows, steps=steps,
        reason_required=[v for v, s in objections.VERBS.items() if s in objections.REASON_REQUIRED],
    )  # fmt: skip


_VERB_OF = {state: verb for verb, state in objections.VERBS.items()}


@router.post("/objections/{objection_id}")
def objection_step(
    request: Request,
    objection_id: Annotated[str, PathParam(max_length=32)],
    form: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    def act(officer: Officer) -> str:
        verb = _text(form, "verb") or ""
        if verb not in objections.VERBS:
            raise FormInvalid("choose what to do with the objection")
        note = _text(form, "note")
        handler = getattr(catalog_objections, f"{verb}_objection")
        if objections.VERBS[verb] in objections.REASON_REQUIRED:
            handler(objection_id, ReasonIn(reason=note or ""), session, runtime, officer.claims)
        else:
            handler(objection_id, session, runtime, officer.claims, NoteIn(note=note))
        return "/console/objections"

    return _posted(request, session, runtime, form, scope=WRITE, act=act)
