"""The auditor console ``/audit`` (issue 8): search the log, open an entry with its inclusion proof.

Needs an officer with the ``audit:read`` role (hub.api.routes.staff). The search is ``GET /v1/audit/entries``'s own
handler, so looking up a person is audited and shows in their access log exactly as through the API. An entry
page proves the entry the way an outside auditor would: the body hashes to the stored leaf hash, the inclusion
proof leads from the leaf hash to the root of the latest checkpoint, and the checkpoint carries the log's
signature under the published verifier key. Each step's result is shown, so a tampered row is visible here too.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from audit import merkle, tree
from audit import service as audit
from audit.entries import canonical
from audit.models import AuditEntry
from audit.note import NoteError, Signer, open_checkpoint
from hub.api.deps import RuntimeDep, SessionDep
from hub.api.routes import audit as audit_api
from hub.api.routes.staff import Officer, officer_for, render_staff
from hub.errors import DomainError
from hub.runtime import Runtime

router = APIRouter(prefix="/audit", tags=["pages"], include_in_schema=False)
PAGE_SIZE = 50
SCOPE = "audit:read"


_WORDS = ("holder_type", "holder_code", "department", "officer", "licence", "matter", "case", "action", "outcome")


class SearchForm(BaseModel):
    """The search form's fields; an empty field is no filter. Times are UTC, as the log's."""

    holder_type: Literal["", "111", "001"] = ""
    holder_code: str = Field(default="", max_length=40)
    department: str = Field(default="", max_length=18)
    officer: str = Field(default="", max_length=64)
    licence: str = Field(default="", max_length=128)
    matter: str = Field(default="", max_length=64)
    case: str = Field(default="", max_length=64)
    action: str = Field(default="", max_length=64)
    outcome: Literal["", "ok", "denied", "failed"] = ""
    since: str = Field(default="", max_length=30)
    until: str = Field(default="", max_length=30)
    after: int | None = Field(default=None, ge=-1, le=audit_api.MAX_INDEX)

    def filters(self) -> dict[str, Any]:
        """Keyword arguments of ``GET /v1/audit/entries``'s handler."""
        chosen: dict[str, Any] = {name: getattr(self, name).strip() or None for name in _WORDS}
        chosen["since"], chosen["until"] = _time(self.since, "since"), _time(self.until, "until")
        return chosen

    def searched(self) -> bool:
        return any(value is not None for value in self.filters().values()) or self.after is not None


class TimeInvalid(DomainError):
    status = 422
    code = "time_invalid"
    title = "Give times as YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"


def _time(text: str, what: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise TimeInvalid(f"'{what}' is not a date or time") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.get("", response_class=HTMLResponse)
def search_page(
    request: Request, form: Annotated[SearchForm, Query()], session: SessionDep, runtime: RuntimeDep
) -> Response:
    officer = officer_for(request, session, runtime, SCOPE)
    if not isinstance(officer, Officer):
        return officer
    found: list[Any] = []
    error = None
    if form.searched():
        try:
            found = audit_api.entries(
                session, runtime, officer.claims, after=form.after, limit=PAGE_SIZE, format="json", **form.filters()
            )
        except DomainError as exc:
            session.rollback()
            error = {"code": exc.code, "detail": exc.detail}
    more = len(found) == PAGE_SIZE
    next_query = _next_page(request, found[-1].leaf_index) if more else None
    return render_staff(
        request, "audit/search.html", 422 if error else 200, officer=officer, form=form, found=found,
        searched=form.searched(), error=error, next_query=next_query,
    )  # fmt: skip


def _next_page(request: Request, last: int) -> str:
    params = {key: value for key, value in request.query_params.items() if key != "after" and value}
    return urlencode({**params, "after": str(last)})


@dataclass(frozen=True)
class Proof:
    """Each check an outside auditor makes, and its result (``None``: could not be made yet)."""

    body_matches: bool | None
    checkpoint: str | None = None
    checkpoint_signed: bool | None = None
    tree_size: int | None = None
    root_hash: str | None = None
    hashes: tuple[str, ...] = ()
    included: bool | None = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _prove(entry: AuditEntry, session: Session, runtime: Runtime) -> Proof:
    body = audit.entry_body(entry)
    body_matches = None if body is None else merkle.leaf_hash(canonical(body)) == entry.leaf_hash
    latest = tree.latest_checkpoint(session)
    if latest is None or entry.leaf_index >= latest.tree_size:
        return Proof(body_matches)
    signer = runtime.audit_signer
    try:
        checkpoint = open_checkpoint(latest.signed_note, Signer(signer.origin, signer.private_key).verifier())
    except NoteError:
        return Proof(body_matches, checkpoint=latest.signed_note, checkpoint_signed=False)
    hashes = tree.inclusion_proof(session, entry.leaf_index, checkpoint.size)
    try:
        merkle.verify_inclusion(entry.leaf_hash, entry.leaf_index, checkpoint.size, hashes, checkpoint.root_hash)
        included = True
    except merkle.ProofError:
        included = False
    return Proof(
        body_matches, checkpoint=latest.signed_note, checkpoint_signed=True, tree_size=checkpoint.size,
        root_hash=_b64(checkpoint.root_hash), hashes=tuple(_b64(h) for h in hashes), included=included,
    )  # fmt: skip


@router.get("/entries/{leaf_index}", response_class=HTMLResponse)
def entry_page(
    request: Request,
    leaf_index: Annotated[int, Path(ge=0, le=audit_api.MAX_INDEX)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    officer = officer_for(request, session, runtime, SCOPE)
    if not isinstance(officer, Officer):
        return officer
    try:
        entry = audit.get_entry_or_raise(session, leaf_index)
    except DomainError as exc:
        return render_staff(request, "staff/error.html", exc.status, officer=officer, error={"code": exc.code})
    signer = runtime.audit_signer
    return render_staff(
        request, "audit/entry.html", officer=officer, entry=entry, body=audit.entry_body(entry),
        leaf_hash=_b64(entry.leaf_hash), proof=_prove(entry, session, runtime),
        verifier_key=Signer(signer.origin, signer.private_key).verifier_key(),
    )  # fmt: skip
