"""Exchange API (DESIGN.md §4): verify now; materials check and fetch build on the catalogue's grants.

Every call is audited, refusals included: the caller's authentication and scope are checked by a
dependency that records the refusal (so "no token" and "wrong scope" leave an entry too), and each
refusal's problem+json carries its receipt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import pydantic_core
from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from audit.entries import AuditEvent
from catalog.models import Matter
from hub import audited
from hub.api.deps import BearerDep, RuntimeDep, SessionDep, bearer, read_only
from hub.api.schemas import ReceiptOut, Strict
from hub.clock import utcnow
from hub.db import begin_read_only
from hub.errors import DomainError
from hub.exchange import copies, ratelimit
from hub.exchange import fetch as exchange_fetch
from hub.exchange import materials as exchange_materials
from hub.exchange import verify as exchange_verify
from hub.exchange.models import PurposeCopy
from hub.identity import service as identity
from hub.identity.errors import ClientDisabled, ScopeMissing, TokenMissing
from hub.identity.models import Department
from hub.identity.tokens import AccessClaims
from hub.observability import request_id_var
from hub.runtime import Runtime
from licences import lifecycle
from licences.types import get_type_or_raise


class _JsonCallRoute(APIRoute):
    """Verify and fetch: a well-formed call goes straight to its handler; anything else takes FastAPI's own path.

    FastAPI's request handler parses the content type with ``email.message``, then solves the route's
    dependencies and validates the body through its generic machinery on every call: about an eighth of the API
    process's time per verify (py-spy, 64 clients). For a call sent as ``application/json`` whose body
    validates, this handler does the same work directly: ``json.loads``, the body model's own validation (the
    same model FastAPI validates against), and the same ``HTTPBearer`` for the credentials. Every other call
    (another content type, bad JSON, a body that does not validate) is handed to FastAPI's handler, which
    reads the cached body and refuses it exactly as before. The OpenAPI description comes from the signature;
    the handlers write their answers (``VerifyOut``, ``FetchOut``, in the models' field order) with
    pydantic-core's encoder, without building the models around values the batch already built.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        endpoint = self.endpoint
        model = self.body_field.field_info.annotation if self.body_field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{self.path}: the fast path needs one JSON body model")

        async def handle(request: Request) -> Response:
            if request.headers.get("content-type") == JSON:
                try:
                    body = model.model_validate(json.loads(await request.body()))
                except (ValueError, RecursionError):  # bad JSON, or a ValidationError: FastAPI's answer
                    return await standard(request)
                response: Response = await endpoint(request, body, await bearer(request))
                return response
            return await standard(request)

        return handle


router = APIRouter(prefix="/v1/exchange", tags=["exchange"])
# The two hot calls, on the route class above; registered before ``router`` (hub.api.app).
calls = APIRouter(prefix="/v1/exchange", tags=["exchange"], route_class=_JsonCallRoute)
JSON = "application/json"
# Handlers on the event loop whose work the audit committer does in batches: their own admission lane.
POOL_FREE_PATHS = frozenset({"/v1/exchange/verify", "/v1/exchange/fetch"})
PDF = "application/pdf"
# Every exchange call counts against its client's burst limit (hub/exchange/ratelimit.py).
RATE_LIMITED: dict[int | str, dict[str, Any]] = {429: {"description": "Over this client's burst limit; retry after"}}


def authorise_caller(
    request: Request, session: Session, runtime: Runtime, credentials: Any, *, scope: str, action: str
) -> AccessClaims:
    """Authenticate a department caller for ``scope`` and apply its burst limit; refusals are audited as ``action``."""
    try:
        if credentials is None:
            raise TokenMissing("send 'Authorization: Bearer <access token>' from POST /oauth/token")
        claims = identity.authenticate_bearer(session, runtime.settings, runtime.key_cache, credentials.credentials)
        if scope not in claims.scopes:
            raise ScopeMissing(scope)
    except DomainError as exc:
        exc.audit_event = _refused(exc, None, action)
        raise
    try:
        ratelimit.check(runtime.client_limiter, claims.client_id)
    except DomainError as exc:
        _mark_refused(exc, claims, action)
        raise
    request.state.caller = claims
    return claims


def audited_caller(scope: str, action: str) -> Any:
    """:func:`authorise_caller` as a dependency."""

    def authorise(request: Request, session: SessionDep, runtime: RuntimeDep, credentials: BearerDep) -> AccessClaims:
        return authorise_caller(request, session, runtime, credentials, scope=scope, action=action)

    return Depends(authorise)


VERIFIED = "exchange.licence.verified"


class VerifyRequest(Strict):
    certificate_identifier: str | None = Field(default=None, min_length=1, max_length=120)
    presentation: str | None = Field(default=None, min_length=1, max_length=8192)
    sha256: str | None = Field(default=None, min_length=64, max_length=64)


class VerifyOut(BaseModel):
    status: Literal["valid", "suspended", "revoked", "expired", "superseded"]
    certificate_identifier: str
    certificate_type_code: str
    certificate_issuing_authority_code: str
    valid_from: str
    valid_until: str | None = Field(description="None: 长期 (no end)")
    disputed: bool
    checked_at: str
    receipt: ReceiptOut


def _refused(exc: DomainError, caller: AccessClaims | None, action: str, **fields: Any) -> AuditEvent:
    """The entry of a refused call: the department's, or anonymous when the caller is not trusted.

    An untrusted caller (no or bad token, disabled client) is recorded without what its call stated.
    """
    if caller is None or isinstance(exc, ClientDisabled):
        trace = {key: fields[key] for key in ("request_id", "time") if key in fields}
        return audited.event(
            action=action, outcome="denied", actor_type="public", actor="anonymous", error_code=exc.code, **trace
        )
    return audited.event(
        action=action, outcome="denied", actor_type="department", actor=caller.department_code,
        client_id=caller.client_id, error_code=exc.code, **fields,
    )  # fmt: skip


def _mark_refused(exc: DomainError, caller: AccessClaims, action: str, **fields: Any) -> None:
    """Attach the refusal's audit entry; the session dependency records it after the rollback."""
    exc.audit_event = _refused(exc, caller, action, **fields)


P = TypeVar("P", "_PendingVerify", "_PendingFetch")
Answer = TypeVar("Answer")


def _for_enabled_clients(
    session: Session, pending: list[P], run: Callable[[list[P]], list[Answer]]
) -> list[Answer | ClientDisabled]:
    """``run`` over the calls whose client is still enabled (one query for the batch); the others get ClientDisabled."""
    disabled = identity.disabled_clients(session, {p.caller.client_id for p in pending})
    live = [p for p in pending if p.caller.client_id not in disabled]
    answers = dict(zip((id(p) for p in live), run(live), strict=True))
    return [answers[id(p)] if id(p) in answers else ClientDisabled() for p in pending]


@calls.post("/verify", response_model=VerifyOut, responses=RATE_LIMITED)
async def verify_licence(request: Request, body: VerifyRequest, credentials: BearerDep) -> Response:
    """Status and validity of a licence named by identifier, presentation token or file SHA-256; no face data.

    The exchange's most frequent call never waits on the thread pool. On the event loop: the access token
    (its verdict is cached per token), the scope, the burst limit, and the target's shape. Then the audit
    committer, for every verify call of its batch at once, reads whether each caller's client is still
    enabled, checks presentation tokens, reads the named licences and their dispute flags, and records each
    call's entry; the answer leaves once that entry is durable.
    """
    runtime: Runtime = request.app.state.runtime
    caller = await authorise_on_loop(request, runtime, credentials, scope="exchange:verify", action=VERIFIED)
    try:
        call = exchange_verify.prepare(
            certificate_identifier=body.certificate_identifier, presentation=body.presentation, sha256=body.sha256
        )
    except DomainError as exc:
        _mark_refused(exc, caller, VERIFIED)
        await _record_refusal(runtime, exc)
        raise
    pending = _PendingVerify(call, caller, request_id_var.get() or "-")
    answer, receipt = await runtime.audit.read_and_record(_read_verifies, pending)
    if isinstance(answer, DomainError):
        answer.receipt = receipt.to_json()
        raise answer
    return Response(pydantic_core.to_json(answer | {"receipt": receipt.to_json()}), media_type=JSON)


async def authorise_on_loop(
    request: Request, runtime: Runtime, credentials: Any, *, scope: str, action: str
) -> AccessClaims:
    """:func:`authorise_caller` for handlers on the event loop, but for the client-enabled check.

    That check needs the database, so the handler's batched read makes it (``identity.disabled_clients``).
    A token not seen before is verified on a worker thread (its key may need reading); refusals are
    recorded through the group committer before they are raised.
    """
    try:
        if credentials is None:
            raise TokenMissing("send 'Authorization: Bearer <access token>' from POST /oauth/token")
        token = credentials.credentials
        claims = runtime.key_cache.verified(token)
        if claims is None:  # a token not seen in the last ttl: its key may need reading
            claims = await run_in_threadpool(_decode_bearer, runtime, token)
        if scope not in claims.scopes:
            raise ScopeMissing(scope)
    except DomainError as exc:
        exc.audit_event = _refused(exc, None, action)
        await _record_refusal(runtime, exc)
        raise
    try:
        if runtime.client_limiter.blocking:
            await run_in_threadpool(ratelimit.check, runtime.client_limiter, claims.client_id)
        else:
            ratelimit.check(runtime.client_limiter, claims.client_id)
    except DomainError as exc:
        _mark_refused(exc, claims, action)
        await _record_refusal(runtime, exc)
        raise
    request.state.caller = claims
    return claims


def _decode_bearer(runtime: Runtime, token: str) -> AccessClaims:
    with runtime.session_factory() as session:
        begin_read_only(session)
        return identity.decode_bearer(session, runtime.settings, runtime.key_cache, token)


async def _record_refusal(runtime: Runtime, exc: DomainError) -> None:
    if exc.audit_event is not None and exc.receipt is None:
        exc.receipt = (await runtime.audit.record_async([exc.audit_event]))[0].to_json()


@dataclass(frozen=True, slots=True)
class _PendingVerify:
    call: exchange_verify.VerifyCall
    caller: AccessClaims
    request_id: str


def _read_verifies(
    runtime: Runtime, session: Session, pending: list[_PendingVerify]
) -> list[tuple[dict[str, Any] | DomainError, AuditEvent]]:
    """In the audit committer: the batch's verify calls read together, each with its entry.

    Answers are plain values (the response's fields but its receipt, or the refusal), so a committer in a
    process of its own can send them back.
    """
    issuer = runtime.settings.public_url.rstrip("/")
    answers = _for_enabled_clients(
        session, pending,
        lambda live: exchange_verify.resolve(session, [p.call for p in live], keys=runtime.presentation_keys,
                                             issuer=issuer),
    )  # fmt: skip
    return [
        (_verified_out(answer), _verify_event(runtime, p, answer)) for p, answer in zip(pending, answers, strict=True)
    ]


def _verified_out(answer: exchange_verify.Verified | DomainError) -> dict[str, Any] | DomainError:
    if isinstance(answer, DomainError):
        return answer
    licence = answer.licence
    return {
        "status": answer.status, "certificate_identifier": licence.identifier,
        "certificate_type_code": licence.type_code, "certificate_issuing_authority_code": licence.issuer_code,
        "valid_from": licence.validity_start.isoformat(),
        "valid_until": licence.validity_end.isoformat() if licence.validity_end else None,
        "disputed": answer.disputed, "checked_at": answer.checked_at.isoformat(),
    }  # fmt: skip


def _verify_event(
    runtime: Runtime, pending: _PendingVerify, answer: exchange_verify.Verified | DomainError
) -> AuditEvent:
    caller, at = pending.caller, pending.call.checked_at
    if isinstance(answer, DomainError):
        return _refused(answer, caller, VERIFIED, request_id=pending.request_id, time=at)
    licence = answer.licence
    return audited.event(
        action=VERIFIED, outcome="ok", actor_type="department", actor=caller.department_code,
        client_id=caller.client_id, certificate_identifier=licence.identifier,
        holder_ref=audited.holder_ref(runtime, licence.holder_type, licence.holder_code),
        extra={"via": answer.via}, request_id=pending.request_id, time=at,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------- purpose-stamped copies

DOWNLOADED = "exchange.copy.downloaded"
FetcherDep = Annotated[AccessClaims, audited_caller("exchange:fetch", DOWNLOADED)]


@router.get(
    "/copies/{copy_id}",
    response_class=Response,
    responses={
        200: {"content": {PDF: {}}, "description": "The purpose-stamped copy (加注件), or the original"},
        410: {"description": "The file URL has expired; fetch again for a new one"},
        **RATE_LIMITED,
    },
)
def download_copy(
    copy_id: Annotated[str, PathParam(pattern="^[0-9a-f]{32}$")],
    session: SessionDep,
    runtime: RuntimeDep,
    caller: FetcherDep,
) -> Response:
    """The file a fetch's ``file_url`` promised: rendered and sealed by the platform seal on first download."""
    now = utcnow()
    try:
        copy = copies.get_for_download(session, copy_id, caller.department_code, now=now)
        licence = lifecycle.get_licence_or_raise(session, copy.licence_identifier)
        source = copies.CopySource(licence, get_type_or_raise(session, licence.type_code), _purpose(session, copy))
        data = copies.file_for(session, runtime.licence_context, copy, source, now=now)
    except DomainError as exc:
        _mark_refused(exc, caller, DOWNLOADED)
        raise
    event = audited.event(
        action=DOWNLOADED, outcome="ok", actor_type="department", actor=caller.department_code,
        client_id=caller.client_id, certificate_identifier=licence.identifier,
        holder_ref=audited.holder_ref(runtime, licence.holder_type, licence.holder_code),
        matter_code=copy.matter_code, case_number=copy.case_number, officer_id=copy.officer_id,
        fields=tuple(copy.fields), extra={"copy_id": copy.id, "original": "yes" if copy.original else "no"},
    )  # fmt: skip
    receipt = audited.record(session, runtime, event)
    disposition = f'attachment; filename="{licence.identifier}-{"original" if copy.original else "copy"}.pdf"'
    return Response(
        data, media_type=PDF,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store",
                 "Audit-Receipt-Leaf-Index": str(receipt.leaf_index)},
    )  # fmt: skip


def _purpose(session: Session, copy: PurposeCopy) -> copies.CopyPurpose:
    department = session.get(Department, copy.department_code)
    matter = session.get(Matter, copy.matter_code)
    return copies.CopyPurpose(
        department_code=copy.department_code, department_name=department.name if department else copy.department_code,
        matter_code=copy.matter_code, matter_name=matter.name if matter else copy.matter_code,
        case_number=copy.case_number, officer_id=copy.officer_id,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------- fetch and materials check

FETCHED = "exchange.licence.fetched"
CHECKED = "exchange.materials.checked"
CheckCallerDep = Annotated[AccessClaims, audited_caller("exchange:fetch", CHECKED)]
CODE = "^[0-9A-Za-z]{15,18}$"  # a holder code's shape; its check digits are validated by the service


class HolderIn(Strict):
    type: Literal["111", "001"] = Field(description="111: citizen ID number (GB 11643); 001: USCC (GB 32100)")
    code: str = Field(pattern=CODE)


class FetchIn(Strict):
    # Optional here so that a missing purpose is refused by the service with its own code, and audited.
    matter_code: str | None = Field(default=None, max_length=64, description="Required: the matter (事项编码)")
    case_number: str | None = Field(default=None, max_length=64, description="Required: 办件编号 of the case")
    officer_id: str | None = Field(default=None, max_length=64, description="Required: the officer handling it")
    holder: HolderIn
    certificate_type_code: str | None = Field(default=None, min_length=21, max_length=21)
    certificate_identifier: str | None = Field(default=None, min_length=1, max_length=120)
    fields: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=100, description="Face fields wanted (default: every granted one, never more)"
    )


class FetchOut(BaseModel):
    licence: dict[str, Any] = Field(description="DESIGN.md §3 metadata and the granted face fields only")
    disputed: bool
    disputed_items: list[str]
    file_url: str = Field(description="The purpose-stamped copy (加注件); needs this department's token")
    file_url_expires_at: str
    grant_id: str
    receipt: ReceiptOut


class MaterialsCheckIn(Strict):
    matter_code: str = Field(min_length=1, max_length=64)
    holder: HolderIn


class SatisfiedBy(BaseModel):
    certificate_identifier: str
    certificate_type_code: str


class MaterialOut(BaseModel):
    material_code: str
    name: str
    required: bool
    satisfied_by: SatisfiedBy | None
    reason: str = Field(description="satisfied, or the stable code of why not (the fetch would say the same)")


class MaterialsCheckOut(BaseModel):
    materials: list[MaterialOut]
    receipt: ReceiptOut


@calls.post("/fetch", response_model=FetchOut, responses=RATE_LIMITED)
async def fetch_licence(request: Request, body: FetchIn, credentials: BearerDep) -> Response:
    """The granted fields of a holder's licence for a matter and case; every check audited, refusals included.

    Like verify, off the thread pool: the token, scope and burst limit on the event loop; then the audit
    committer's write thread runs the batch's fetches together in one transaction (each call's checks in
    order, quota counts and promised copies written once per batch) and commits, and the answers leave
    once their entries are durable.
    """
    runtime: Runtime = request.app.state.runtime
    caller = await authorise_on_loop(request, runtime, credentials, scope="exchange:fetch", action=FETCHED)
    call = exchange_fetch.FetchRequest(
        department_code=caller.department_code, matter_code=body.matter_code or "",
        case_number=body.case_number or "", officer_id=body.officer_id or "", holder_type=body.holder.type,
        holder_code=body.holder.code, certificate_type_code=body.certificate_type_code,
        certificate_identifier=body.certificate_identifier, fields=body.fields,
    )  # fmt: skip
    stated = {"matter_code": body.matter_code, "case_number": body.case_number, "officer_id": body.officer_id,
              "holder_ref": audited.holder_ref(runtime, body.holder.type, body.holder.code)}  # fmt: skip
    pending = _PendingFetch(call, caller, stated, request_id_var.get() or "-")
    answer, receipt = await runtime.audit.write_and_record(_write_fetches, pending)
    if isinstance(answer, DomainError):
        answer.receipt = receipt.to_json()
        raise answer
    public = runtime.settings.public_url.rstrip("/")
    out = {
        "licence": answer.licence, "disputed": answer.disputed, "disputed_items": answer.disputed_items,
        "file_url": f"{public}/v1/exchange/copies/{answer.copy_id}",
        "file_url_expires_at": answer.file_url_expires_at.isoformat(), "grant_id": answer.decision.grant_id,
        "receipt": receipt.to_json(),
    }  # fmt: skip
    return Response(pydantic_core.to_json(out), media_type=JSON)


@dataclass(frozen=True, slots=True)
class _PendingFetch:
    call: exchange_fetch.FetchRequest
    caller: AccessClaims
    stated: dict[str, Any]  # matter, case, officer and holder_ref: on every entry of the call
    request_id: str


def _write_fetches(
    runtime: Runtime, session: Session, pending: list[_PendingFetch]
) -> list[tuple[exchange_fetch.Fetched | DomainError, AuditEvent]]:
    """In the audit committer (its write thread): the batch's fetches in one transaction, each with its entry."""
    at = utcnow()
    answers = _for_enabled_clients(
        session, pending,
        lambda live: exchange_fetch.fetch_many(session, runtime.grant_cache, runtime.settings,
                                               [p.call for p in live], at=at),
    )  # fmt: skip
    return [(answer, _fetch_event(p, answer, at)) for p, answer in zip(pending, answers, strict=True)]


def _fetch_event(pending: _PendingFetch, answer: exchange_fetch.Fetched | DomainError, at: datetime) -> AuditEvent:
    caller = pending.caller
    if isinstance(answer, DomainError):
        return _refused(answer, caller, FETCHED, request_id=pending.request_id, time=at, **pending.stated)
    return audited.event(
        action=FETCHED, outcome="ok", actor_type="department", actor=caller.department_code,
        client_id=caller.client_id, certificate_identifier=answer.certificate_identifier,
        resource_code=answer.decision.resource_code, fields=tuple(answer.fields),
        extra={"grant_id": answer.decision.grant_id, "copy_id": answer.copy_id}, request_id=pending.request_id,
        time=at, **pending.stated,
    )  # fmt: skip


@router.post("/materials-check", responses=RATE_LIMITED)
@read_only
def materials_check(
    body: MaterialsCheckIn, session: SessionDep, runtime: RuntimeDep, caller: CheckCallerDep
) -> MaterialsCheckOut:
    """For each material the matter requires: the holder's licence that satisfies it, or why none does (免证办)."""
    ref = audited.holder_ref(runtime, body.holder.type, body.holder.code)
    try:
        answers = exchange_materials.check(
            session, runtime.grant_cache, department_code=caller.department_code, matter_code=body.matter_code,
            holder_type=body.holder.type, holder_code=body.holder.code, at=utcnow(),
        )  # fmt: skip
    except DomainError as exc:
        _mark_refused(exc, caller, CHECKED, matter_code=body.matter_code, holder_ref=ref)
        raise
    event = audited.event(
        action=CHECKED, outcome="ok", actor_type="department", actor=caller.department_code,
        client_id=caller.client_id, matter_code=body.matter_code, holder_ref=ref,
        extra={"satisfied": ",".join(a.material_code for a in answers if a.certificate_identifier)},
    )  # fmt: skip
    receipt = ReceiptOut(**audited.record(session, runtime, event).to_json())
    materials = [
        MaterialOut(
            material_code=a.material_code, name=a.name, required=a.required, reason=a.reason,
            satisfied_by=SatisfiedBy(certificate_identifier=a.certificate_identifier,
                                     certificate_type_code=a.certificate_type_code or "")
            if a.certificate_identifier else None,
        )
        for a in answers
    ]  # fmt: skip
    return MaterialsCheckOut(materials=materials, receipt=receipt)
