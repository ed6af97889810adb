"""Seal management (``/v1/seals``): admins create, suspend, reinstate, revoke and rotate; departments read their own."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from hub.api.deps import RuntimeDep, SessionDep, require_scope
from hub.api.receipts import caller_receipt
from hub.api.schemas import ReceiptOut, Strict
from hub.codes import validate_uscc
from hub.errors import Conflict, InvalidInput
from hub.identity import service as identity
from hub.identity.tokens import AccessClaims
from seals import lifecycle
from seals.image import MAX_UPLOAD_BYTES
from seals.lifecycle import SealOwner
from seals.models import Seal, SealKey

router = APIRouter(prefix="/v1/seals", tags=["seals"])
AdminDep = Annotated[AccessClaims, require_scope("admin")]
ReaderDep = Annotated[AccessClaims, require_scope(None)]
Kind = Literal["official", "licence", "business", "platform"]
Reason = Literal["key_compromise", "cessation_of_operation", "affiliation_changed", "unspecified"]


class SealIn(Strict):
    department_code: str = Field(min_length=18, max_length=18, description="USCC of the department (GB 32100)")
    name: str = Field(min_length=1, max_length=64, examples=["电子证照专用章"])
    kind: Kind = "licence"
    image_base64: str | None = Field(
        default=None,
        max_length=4 * MAX_UPLOAD_BYTES // 3 + 4,
        description="PNG or JPEG, base64; omitted: a standard round red seal is drawn from the department name",
    )


class RevokeIn(Strict):
    reason: Reason


class SealOut(BaseModel):
    id: str
    department_code: str
    code: str = Field(description="印章编码: area code and serial")
    name: str
    kind: str
    status: Literal["active", "suspended", "revoked", "superseded"]
    key_id: str
    key_backend: str
    certificate_serial: str
    certificate_pem: str
    not_before: datetime
    not_after: datetime
    image_sha256: str
    image_generated: bool
    replaces: str | None
    created_at: datetime
    updated_at: datetime
    receipt: ReceiptOut | None = None


def _out(session: Session, seal: Seal, receipt: ReceiptOut | None = None) -> SealOut:
    issued = lifecycle.certificate_of(session, seal)
    pem = x509.load_der_x509_certificate(issued.certificate).public_bytes(serialization.Encoding.PEM).decode()
    return SealOut(
        id=seal.id, department_code=seal.department_code, code=seal.code, name=seal.name, kind=seal.kind,
        status=seal.status,
        key_id=seal.key_id, key_backend=_key_backend(session, seal), certificate_serial=seal.certificate_serial,
        certificate_pem=pem, not_before=issued.not_before, not_after=issued.not_after, image_sha256=seal.image_sha256,
        image_generated=seal.image_generated, replaces=seal.replaces, created_at=seal.created_at,
        updated_at=seal.updated_at, receipt=receipt,
    )  # fmt: skip


def _key_backend(session: Session, seal: Seal) -> str:
    key = session.get(SealKey, seal.key_id)
    return key.backend if key is not None else "unknown"


def _owner(session: Session, department_code: str) -> SealOwner:
    department = identity.get_department_or_raise(session, validate_uscc(department_code))
    if not department.active:
        raise Conflict(f"department {department.code} is disabled and gets no seals")
    return SealOwner(code=department.code, name=department.name, area_code=department.area_code)


def _audit(session: Session, runtime: RuntimeDep, caller: AccessClaims, action: str, seal: Seal) -> ReceiptOut:
    extra = {"seal_id": seal.id, "seal_department": seal.department_code, "certificate_serial": seal.certificate_serial}
    return caller_receipt(session, runtime, caller, action, actor_type="admin", extra=extra)


def _readable(session: Session, caller: AccessClaims, seal_id: str) -> Seal:
    """A department sees its own seals, an admin every seal; others get the same 404 as a missing one (no IDOR)."""
    seal = lifecycle.get_seal_or_raise(session, seal_id)
    if "admin" not in caller.scopes and seal.department_code != caller.department_code:
        raise lifecycle.SealNotFound(f"no seal with id {seal_id}")
    return seal


@router.post("", status_code=status.HTTP_201_CREATED)
def create_seal(body: SealIn, session: SessionDep, runtime: RuntimeDep, caller: AdminDep) -> SealOut:
    image = None
    if body.image_base64 is not None:
        try:
            image = base64.b64decode(body.image_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("image_base64 is not valid base64") from exc
    seal = lifecycle.create_seal(
        session, runtime.seal_context, owner=_owner(session, body.department_code), name=body.name, kind=body.kind,
        image=image,
    )  # fmt: skip
    return _out(session, seal, _audit(session, runtime, caller, "seals.seal.created", seal))


@router.get("")
def list_seals(
    session: SessionDep,
    caller: ReaderDep,
    department_code: Annotated[str | None, Query(min_length=18, max_length=18)] = None,
) -> list[SealOut]:
    if "admin" not in caller.scopes:
        department_code = caller.department_code  # a department lists its own seals only
    return [_out(session, s) for s in lifecycle.list_seals(session, department_code=department_code)]


@router.get("/{seal_id}")
def get_seal(seal_id: str, session: SessionDep, caller: ReaderDep) -> SealOut:
    return _out(session, _readable(session, caller, seal_id))


@router.get("/{seal_id}/image", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def seal_image(seal_id: str, session: SessionDep, runtime: RuntimeDep, caller: ReaderDep) -> Response:
    seal = _readable(session, caller, seal_id)
    return Response(runtime.storage.get(seal.image_sha256), media_type="image/png")


@router.get(
    "/{seal_id}/certificate", response_class=Response, responses={200: {"content": {"application/pkix-cert": {}}}}
)
def seal_certificate(seal_id: str, session: SessionDep, caller: ReaderDep) -> Response:
    seal = _readable(session, caller, seal_id)
    return Response(lifecycle.certificate_of(session, seal).certificate, media_type="application/pkix-cert")


@router.post("/{seal_id}/suspend")
def suspend_seal(seal_id: str, session: SessionDep, runtime: RuntimeDep, caller: AdminDep) -> SealOut:
    seal = lifecycle.suspend_seal(session, runtime.seal_context, seal_id)
    return _out(session, seal, _audit(session, runtime, caller, "seals.seal.suspended", seal))


@router.post("/{seal_id}/reinstate")
def reinstate_seal(seal_id: str, session: SessionDep, runtime: RuntimeDep, caller: AdminDep) -> SealOut:
    seal = lifecycle.reinstate_seal(session, runtime.seal_context, seal_id)
    return _out(session, seal, _audit(session, runtime, caller, "seals.seal.reinstated", seal))


@router.post("/{seal_id}/revoke")
def revoke_seal(seal_id: str, body: RevokeIn, session: SessionDep, runtime: RuntimeDep, caller: AdminDep) -> SealOut:
    seal = lifecycle.revoke_seal(session, runtime.seal_context, seal_id, reason=body.reason)
    return _out(session, seal, _audit(session, runtime, caller, "seals.seal.revoked", seal))


@router.post("/{seal_id}/rotate", status_code=status.HTTP_201_CREATED)
def rotate_seal(seal_id: str, session: SessionDep, runtime: RuntimeDep, caller: AdminDep) -> SealOut:
    old = lifecycle.get_seal_or_raise(session, seal_id)
    seal = lifecycle.rotate_seal(session, runtime.seal_context, seal_id, owner=_owner(session, old.department_code))
    return _out(session, seal, _audit(session, runtime, caller, "seals.seal.rotated", seal))
