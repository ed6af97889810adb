"""Public seal verification: ``POST /v1/verify/file`` returns a per-signature report and an ETSI verdict."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audited
from hub.api.deps import RuntimeDep, SessionDep, read_only
from hub.errors import DomainError
from hub.runtime import Runtime
from licences.holders import live_status
from licences.models import Licence
from seals.models import Seal
from seals.trust import trust_settings
from seals.verify import MAX_FILE_BYTES, Verifier

router = APIRouter(prefix="/v1/verify", tags=["verify"])
_CHUNK = 1 << 16


class FileTooLarge(DomainError):
    status = 413
    code = "file_too_large"
    title = f"A file to verify is at most {MAX_FILE_BYTES // (1024 * 1024)} MiB"


def read_capped(upload: UploadFile) -> bytes:
    """Read at most MAX_FILE_BYTES + 1 bytes: an oversized upload is refused without buffering it all."""
    parts, size = [], 0
    while chunk := upload.file.read(_CHUNK):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise FileTooLarge
        parts.append(chunk)
    return b"".join(parts)


@router.post("/file", responses={413: {"description": FileTooLarge.title}})
@read_only
def verify_file(
    file: Annotated[UploadFile, File(description="The sealed PDF (field name `file`)")],
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Verify every seal in a PDF: intact, trusted chain, revocation at signing time, changes after sealing.

    Anyone may call it (a verifier holding a printed or downloaded licence). The verdict is sent
    only after its audit entry is durable (DESIGN.md "no audit, no data").
    """
    return verify_upload(session, runtime, read_capped(file))


def verify_upload(session: Session, runtime: Runtime, data: bytes) -> dict[str, Any]:
    """The report of ``POST /v1/verify/file`` (also shown by the ``/verify`` page), audited before it is returned."""
    digest = hashlib.sha256(data).hexdigest()
    report = Verifier(trust_settings(session, runtime.extra_trust_roots)).verify(data)
    licence = session.scalar(select(Licence).where(Licence.file_sha256 == digest))
    event = audited.event(
        action="seals.file.verified", outcome="ok", actor_type="public", actor="anonymous",
        certificate_identifier=licence.identifier if licence else None,
        holder_ref=audited.holder_ref(runtime, licence.holder_type, licence.holder_code) if licence else None,
        extra={"sha256": digest, "verdict": report.verdict},
    )  # fmt: skip
    receipt = audited.record(session, runtime, event)
    body = report.to_json()
    for signature in body["signatures"]:
        signature["hub_seal"] = _hub_seal(session, signature["signer"])
    return {**body, "licence": _licence_now(licence), "receipt": receipt.to_json()}


def _licence_now(licence: Licence | None) -> dict[str, Any] | None:
    """The licence this exact file was issued as, with its status now (DESIGN.md §4 ``licence?``)."""
    if licence is None:
        return None
    return {
        "certificate_identifier": licence.identifier, "certificate_type_code": licence.type_code,
        "certificate_type_name": licence.type_name, "certificate_issuing_authority_name": licence.issuer_name,
        "certificate_issuing_authority_code": licence.issuer_code, "status": live_status(licence),
        "status_reason": licence.status_reason, "valid_from": licence.validity_start.isoformat(),
        "valid_until": licence.validity_end.isoformat() if licence.validity_end else None,
    }  # fmt: skip


def _hub_seal(session: Session, signer: dict[str, Any] | None) -> dict[str, str] | None:
    """The seal record behind a signature by one of this hub's seal certificates (other hubs' seals: None)."""
    if signer is None:
        return None
    seal = session.scalar(select(Seal).where(Seal.certificate_serial == signer["serial"]))
    if seal is None:
        return None
    return {"id": seal.id, "code": seal.code, "name": seal.name, "department_code": seal.department_code,
            "status": seal.status}  # fmt: skip
