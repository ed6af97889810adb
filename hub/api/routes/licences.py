"""Licence types, issuance (single and batch), the sealed file, lifecycle and status lists (DESIGN.md §4)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from hub import audited
from hub.api.deps import RuntimeDep, SessionDep, require_scope
from hub.api.receipts import caller_receipt
from hub.api.schemas import ReceiptOut
from hub.errors import Forbidden
from hub.identity import service as identity
from hub.identity.errors import ScopeMissing
from hub.identity.tokens import AccessClaims
from hub.jobs import after_commit
from hub.keys import service as keys
from licences import batches, holders, idempotency, lifecycle
from licences import types as licence_types
from licences.issuance import Actor, Issuer, issue, metadata
from licences.models import Licence
from licences.schemas import (
    AmendRequest,
    LicenceRequest,
    LicenceTypeIn,
    ReinstateRequest,
    RenewRequest,
    RevokeRequest,
    SuspendRequest,
)
from licences.status_lists import list_url
from licences.statuslist import position

router = APIRouter(tags=["licences"])
AnyCaller = Annotated[AccessClaims, require_scope(None)]
IssuerDep = Annotated[AccessClaims, require_scope("licence:issue")]
PDF = "application/pdf"
VC_JWT = "application/vc+jwt"  # VC-JOSE-COSE media type of a JWT-secured credential


class LicenceTypeOut(BaseModel):
    certificate_type_code: str
    certificate_type_name: str
    holder_type: str
    face_schema: dict[str, Any]
    defining_authority_code: str
    defining_authority_name: str
    validity: dict[str, Any]
    issuer_codes: list[str]
    template: str
    catalogue_resource_code: str | None
    receipt: ReceiptOut | None = None


class StatusEntryOut(BaseModel):
    status_list: str = Field(description="URL of the W3C Bitstring Status List credential")
    index: int


class LicenceView(BaseModel):
    """DESIGN.md §3 metadata and the face: what the issuer and the holder see of a licence."""

    certificate_identifier: str
    certificate_name: str
    certificate_number: str
    certificate_type_code: str
    certificate_type_name: str
    certificate_version: str
    certificate_issuing_authority_name: str
    certificate_issuing_authority_code: str
    certificate_issue_date: str
    certificate_validity_start: str
    certificate_validity_end: str
    certificate_area_code: str
    certificate_holder_name: str
    certificate_holder_code: str
    certificate_holder_type: str
    status: Literal["valid", "suspended", "revoked", "expired", "superseded"]
    status_reason: str | None
    face: dict[str, Any]
    supersedes: str | None
    superseded_by: str | None


class LicenceOut(LicenceView):
    """The licence, and where to find its sealed file and its status list entry."""

    file_sha256: str
    file_url: str
    status_entry: StatusEntryOut
    batch_id: str | None
    receipt: ReceiptOut | None = None


class BatchOut(BaseModel):
    batch_id: str
    status: Literal["queued", "running", "completed"]
    total: int
    pending: int
    issued: int
    failed: int
    created_at: datetime
    finished_at: datetime | None
    errors: list[dict[str, Any]] = Field(description="First failed rows: line, code, detail (see /errors)")
    receipt: ReceiptOut | None = None


def licence_view(licence: Licence) -> LicenceView:
    return LicenceView(**_view_fields(licence))


def _view_fields(licence: Licence) -> dict[str, Any]:
    return metadata(licence) | {
        "status_reason": licence.status_reason, "face": licence.face,
        "supersedes": licence.supersedes, "superseded_by": licence.superseded_by,
    }  # fmt: skip


def licence_out(runtime: RuntimeDep, licence: Licence, receipt: ReceiptOut | None = None) -> LicenceOut:
    list_id, index = position(licence.pk)
    public = runtime.settings.public_url.rstrip("/")
    return LicenceOut(
        **_view_fields(licence),
        file_sha256=licence.file_sha256,
        file_url=f"{public}/v1/licences/{licence.identifier}/file",
        status_entry=StatusEntryOut(status_list=list_url(public, list_id), index=index),
        batch_id=licence.batch_id,
        receipt=receipt,
    )


def _receipt(session: Session, runtime: RuntimeDep, caller: AccessClaims, action: str, **fields: Any) -> ReceiptOut:
    return caller_receipt(session, runtime, caller, action, actor_type="department", **fields)


def _owner(caller: AccessClaims) -> str | None:
    """Whose records the caller may see: its own department's, or everyone's for an admin (None)."""
    return None if "admin" in caller.scopes else caller.department_code


def _actor(caller: AccessClaims) -> Actor:
    return Actor("admin" if "admin" in caller.scopes else "department", caller.department_code, caller.client_id)


def _issuer(session: Session, caller: AccessClaims) -> Issuer:
    department = identity.get_department_or_raise(session, caller.department_code)
    return Issuer(department.code, department.name, department.area_code)


# ---------------------------------------------------------------------------------------- types


@router.get("/v1/licence-types")
def list_licence_types(session: SessionDep, _caller: AnyCaller) -> list[LicenceTypeOut]:
    """Every licence type with its face schema (JSON Schema 2020-12; each field's share type and label)."""
    return [LicenceTypeOut(**licence_types.type_out(row)) for row in licence_types.list_types(session)]


@router.get("/v1/licence-types/{type_code}")
def get_licence_type(type_code: str, session: SessionDep, _caller: AnyCaller) -> LicenceTypeOut:
    return LicenceTypeOut(**licence_types.type_out(licence_types.get_type_or_raise(session, type_code)))


@router.post("/v1/licence-types", status_code=status.HTTP_201_CREATED)
def define_licence_type(
    body: LicenceTypeIn, session: SessionDep, runtime: RuntimeDep, caller: AnyCaller
) -> LicenceTypeOut:
    """Define a licence type: an admin, or the defining authority itself (its USCC heads the type code)."""
    if "admin" not in caller.scopes:
        if "catalog:write" not in caller.scopes:
            raise ScopeMissing("catalog:write")
        if not body.certificate_type_code.startswith(caller.department_code):
            raise Forbidden("a department defines only types whose code starts with its own USCC")
    row = licence_types.define_type(session, body)
    receipt = _receipt(
        session, runtime, caller, "licence.type.defined", resource_code=row.catalogue_resource_code,
        extra={"certificate_type_code": row.type_code},
    )  # fmt: skip
    return LicenceTypeOut(**licence_types.type_out(row), receipt=receipt)


# ---------------------------------------------------------------------------------------- issuance


@router.post("/v1/licences", status_code=status.HTTP_201_CREATED)
def issue_licence(  # noqa: PLR0917 - FastAPI injects dependencies by parameter name
    body: LicenceRequest,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    caller: IssuerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> LicenceOut:
    """Validate, identify (GB/T 36904), render, seal (PAdES B-T), store, then record the licence.

    ``Idempotency-Key`` is required: the same key with the same body returns the same licence
    (header ``Idempotent-Replayed: true``); with a different body it is refused.
    """
    key = idempotency.check_key(idempotency_key)
    digest = idempotency.request_digest(body.model_dump(mode="json"))
    replay = idempotency.claim(session, caller.department_code, key, digest)
    if replay is not None:
        licence = lifecycle.get_licence_or_raise(session, replay)
        response.headers["Idempotent-Replayed"] = "true"
        receipt = _receipt(
            session, runtime, caller, "licence.licence.issue_replayed", certificate_identifier=licence.identifier,
            holder_ref=audited.holder_ref(runtime, licence.holder_type, licence.holder_code),
        )  # fmt: skip
        return licence_out(runtime, licence, receipt)
    issued = issue(session, runtime.licence_context, _issuer(session, caller), body, _actor(caller))
    idempotency.complete(session, caller.department_code, key, issued.licence.identifier)
    response.headers["Location"] = f"/v1/licences/{issued.licence.identifier}"
    assert issued.receipt is not None  # noqa: S101 - issue() records the entry itself unless asked not to
    return licence_out(runtime, issued.licence, ReceiptOut(**issued.receipt.to_json()))


@router.post(
    "/v1/licences/batches",
    status_code=status.HTTP_202_ACCEPTED,
    responses={413: {"description": "More rows than HUB_BATCH_MAX_ROWS"}},
    openapi_extra={
        "requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}, "required": True}
    },
)
def create_batch(request: Request, session: SessionDep, runtime: RuntimeDep, caller: IssuerDep) -> BatchOut:
    """Upload licences as JSON Lines (one POST /v1/licences body per line, up to HUB_BATCH_MAX_ROWS).

    Malformed lines are reported per row; the others are issued exactly once by chunked jobs.
    """
    body = _read_stream(request)
    batch = batches.create_batch(
        session, department_code=caller.department_code, client_id=caller.client_id, body=body,
        max_rows=runtime.settings.batch_max_rows,
    )  # fmt: skip
    session.flush()
    for first, last in batches.dispatch_ranges(session, batch.id, runtime.settings.batch_chunk_rows):
        after_commit(session, runtime.settings, "licences.batch.issue_chunk", batch_id=batch.id, first=first, last=last)
    accepted = _batch_out(session, batch)  # before the commit below lets the chunk jobs start
    receipt = _receipt(
        session, runtime, caller, "licence.batch.created", extra={"batch_id": batch.id, "rows": str(batch.total)}
    )
    return accepted.model_copy(update={"receipt": receipt})


def _read_stream(request: Request) -> Iterator[bytes]:
    """The request body in chunks, read synchronously from the threadpool handler."""
    import anyio.from_thread  # noqa: PLC0415 - only the batch upload streams

    stream = request.stream()
    while True:
        try:
            yield anyio.from_thread.run(stream.__anext__)
        except StopAsyncIteration:
            return


def _batch_out(session: Session, batch: Any, receipt: ReceiptOut | None = None) -> BatchOut:
    counts = batches.progress(session, batch.id)
    errors = [batches.row_error(row) for row in batches.failed_rows(session, batch.id, after=0, limit=100)]
    return BatchOut(
        batch_id=batch.id, status=batch.status, total=batch.total, pending=counts["pending"],
        issued=counts["issued"], failed=counts["failed"], created_at=batch.created_at,
        finished_at=batch.finished_at, errors=errors, receipt=receipt,
    )  # fmt: skip


@router.get("/v1/licences/batches/{batch_id}")
def get_batch(batch_id: str, session: SessionDep, caller: IssuerDep) -> BatchOut:
    """Progress and the first row errors; the uploading department (or an admin) only."""
    return _batch_out(session, batches.get_batch_or_raise(session, batch_id, _owner(caller)))


@router.get("/v1/licences/batches/{batch_id}/errors")
def get_batch_errors(
    batch_id: str,
    session: SessionDep,
    caller: IssuerDep,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # a line number (32-bit column)
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Failed rows after line ``after``, in line order (keyset pagination)."""
    batch = batches.get_batch_or_raise(session, batch_id, _owner(caller))
    return [batches.row_error(row) for row in batches.failed_rows(session, batch.id, after=after, limit=limit)]


# ---------------------------------------------------------------------------------------- one licence


def _reader(caller: AccessClaims) -> str | None:
    """Issuers read their own licences; an admin reads all (other departments use the exchange)."""
    if "admin" not in caller.scopes and not caller.scopes & {"licence:issue", "licence:read"}:
        raise ScopeMissing("licence:read")
    return _owner(caller)


@router.get("/v1/licences/{certificate_identifier}")
def get_licence(certificate_identifier: str, session: SessionDep, runtime: RuntimeDep, caller: AnyCaller) -> LicenceOut:
    licence = lifecycle.issued_by(session, certificate_identifier, _reader(caller))
    receipt = _receipt(
        session, runtime, caller, "licence.licence.read", certificate_identifier=licence.identifier,
        holder_ref=audited.holder_ref(runtime, licence.holder_type, licence.holder_code),
    )  # fmt: skip
    return licence_out(runtime, licence, receipt)


@router.get(
    "/v1/licences/{certificate_identifier}/file", response_class=Response, responses={200: {"content": {PDF: {}}}}
)
def get_licence_file(
    certificate_identifier: str, session: SessionDep, runtime: RuntimeDep, caller: AnyCaller
) -> Response:
    """The issuer-sealed PDF (PAdES B-T), sent after its audit entry is durable."""
    licence = lifecycle.issued_by(session, certificate_identifier, _reader(caller))
    receipt = _receipt(
        session, runtime, caller, "licence.file.downloaded", certificate_identifier=licence.identifier,
        holder_ref=audited.holder_ref(runtime, licence.holder_type, licence.holder_code),
    )  # fmt: skip
    pdf = runtime.storage.get(licence.file_sha256)
    return Response(
        pdf, media_type=PDF,
        headers={"Content-Disposition": f'attachment; filename="{licence.serial}-{licence.version}.pdf"',
                 "Audit-Receipt-Leaf-Index": str(receipt.leaf_index), "ETag": f'"{licence.file_sha256}"'},
    )  # fmt: skip


def _transition(
    certificate_identifier: str,
    session: Session,
    runtime: RuntimeDep,
    caller: AccessClaims,
    *,
    transition: str,
    body: Any,
) -> LicenceOut:
    licence = lifecycle.issued_by(session, certificate_identifier, caller.department_code, lock=True)
    ctx, actor = runtime.licence_context, _actor(caller)
    if transition == "renew":
        done = lifecycle.renew(session, ctx, licence, body, actor)
    elif transition == "amend":
        done = lifecycle.amend(session, ctx, licence, body, actor)
    else:
        done = lifecycle.change_status(session, ctx, licence, transition, actor, reason=getattr(body, "reason", None))
    return licence_out(runtime, done.licence, ReceiptOut(**done.receipt.to_json()))


@router.post("/v1/licences/{certificate_identifier}/suspend")
def suspend_licence(
    certificate_identifier: str, body: SuspendRequest, session: SessionDep, runtime: RuntimeDep, caller: IssuerDep
) -> LicenceOut:
    return _transition(certificate_identifier, session, runtime, caller, transition="suspend", body=body)


@router.post("/v1/licences/{certificate_identifier}/reinstate")
def reinstate_licence(
    certificate_identifier: str, body: ReinstateRequest, session: SessionDep, runtime: RuntimeDep, caller: IssuerDep
) -> LicenceOut:
    return _transition(certificate_identifier, session, runtime, caller, transition="reinstate", body=body)


@router.post("/v1/licences/{certificate_identifier}/revoke")
def revoke_licence(
    certificate_identifier: str, body: RevokeRequest, session: SessionDep, runtime: RuntimeDep, caller: IssuerDep
) -> LicenceOut:
    return _transition(certificate_identifier, session, runtime, caller, transition="revoke", body=body)


@router.post("/v1/licences/{certificate_identifier}/renew", status_code=status.HTTP_201_CREATED)
def renew_licence(
    certificate_identifier: str, body: RenewRequest, session: SessionDep, runtime: RuntimeDep, caller: IssuerDep
) -> LicenceOut:
    """A new version (…002) with a new validity window; the previous one is superseded and linked."""
    return _transition(certificate_identifier, session, runtime, caller, transition="renew", body=body)


@router.post("/v1/licences/{certificate_identifier}/amend", status_code=status.HTTP_201_CREATED)
def amend_licence(
    certificate_identifier: str, body: AmendRequest, session: SessionDep, runtime: RuntimeDep, caller: IssuerDep
) -> LicenceOut:
    """A new version with corrected face data; the previous one is superseded and linked."""
    return _transition(certificate_identifier, session, runtime, caller, transition="amend", body=body)


# ---------------------------------------------------------------------------------------- public


@router.get("/v1/status-lists/{list_id}", response_class=Response, responses={200: {"content": {VC_JWT: {}}}})
def get_status_list(
    list_id: Annotated[int, Path(ge=0, le=2**31)], session: SessionDep, runtime: RuntimeDep
) -> Response:
    """W3C Bitstring Status List credential (JWT, ES256): 2 bits per licence, see docs/offline-verification.md."""
    key = keys.signing_key(session, runtime.master_keys, keys.STATUS_LIST)
    token = runtime.signed_status_lists.get(session, list_id, public_url=runtime.settings.public_url, key=key)
    return Response(token, media_type=VC_JWT, headers={"Cache-Control": "public, max-age=60"})


@router.get("/v1/presentations/jwks.json")
def presentation_jwks(session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Keys that sign presentation tokens and status lists: what an offline verifier caches."""
    return holders.presentation_jwks(session, runtime.settings.key_overlap_seconds)
