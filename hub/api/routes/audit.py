"""Audit log API: public checkpoints, verifier key and proofs; entry search and export for auditors."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from audit import merkle, tree
from audit import service as audit
from audit.errors import CheckpointNotFound
from audit.models import AuditEntry
from audit.note import Signer
from hub import audited
from hub.api.deps import RuntimeDep, SessionDep, require_scope
from hub.codes import validate_holder_code
from hub.errors import InvalidInput
from hub.identity.tokens import AccessClaims

router = APIRouter(prefix="/v1/audit", tags=["audit"])
MAX_INDEX = 2**53  # JSON-safe integers; also keeps SQLite's 64-bit INTEGER from overflowing


class InclusionProof(BaseModel):
    leaf_index: int
    tree_size: int
    hashes: list[str]


class ConsistencyProof(BaseModel):
    first: int
    second: int
    hashes: list[str]


class EntryOut(BaseModel):
    leaf_index: int
    leaf_hash: str
    entry: dict[str, Any] | None = Field(description="The logged entry; null once redacted after retention")
    redacted: bool = False
    integrated_time: int


class CheckpointOut(BaseModel):
    tree_size: int
    root_hash: str
    created: bool


def _not_a_number(value: object) -> object:
    """A date-time is RFC 3339 text (as documented); pydantic alone would also read a bare number as Unix time."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("a date-time with its UTC offset (RFC 3339), not a number")
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={404: {"description": "No checkpoint published yet, or none at this tree size"}},
)
def checkpoint(
    session: SessionDep, tree_size: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None
) -> PlainTextResponse:
    """The latest C2SP signed checkpoint, or the one published at ``tree_size``."""
    found = tree.checkpoint_at(session, tree_size) if tree_size is not None else tree.latest_checkpoint(session)
    if found is None:
        raise CheckpointNotFound("no checkpoint has been published yet")
    return PlainTextResponse(found.signed_note, media_type="text/plain; charset=utf-8")


@router.get("/verifier-key", response_class=PlainTextResponse)
def verifier_key(runtime: RuntimeDep) -> PlainTextResponse:
    """The note verifier key of checkpoints and receipts (C2SP signed-note)."""
    signer = runtime.audit_signer
    return PlainTextResponse(Signer(signer.origin, signer.private_key).verifier_key() + "\n")


@router.get("/proof/inclusion")
def inclusion(
    session: SessionDep,
    leaf_index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    tree_size: Annotated[int, Query(ge=1, le=MAX_INDEX)],
) -> InclusionProof:
    """RFC 9162 §2.1.3 audit path; verify it against the checkpoint of ``tree_size``."""
    hashes = tree.inclusion_proof(session, leaf_index, tree_size)
    return InclusionProof(leaf_index=leaf_index, tree_size=tree_size, hashes=[_b64(h) for h in hashes])


@router.get("/proof/consistency")
def consistency(
    session: SessionDep,
    first: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    second: Annotated[int, Query(ge=1, le=MAX_INDEX)],
) -> ConsistencyProof:
    """RFC 9162 §2.1.4 proof that checkpoint ``first`` is a prefix of checkpoint ``second``."""
    hashes = tree.consistency_proof(session, first, second)
    return ConsistencyProof(first=first, second=second, hashes=[_b64(h) for h in hashes])


@router.post("/checkpoints", dependencies=[require_scope("admin")])
def integrate_now(session: SessionDep, runtime: RuntimeDep) -> CheckpointOut:
    """Integrate committed entries now (the periodic job does this too) and publish a checkpoint."""
    made = tree.integrate(session, runtime.audit_signer)
    latest = made or tree.latest_checkpoint(session)
    if latest is None:  # pragma: no cover - integrate always publishes the first checkpoint
        raise InvalidInput("nothing to integrate")
    return CheckpointOut(tree_size=latest.tree_size, root_hash=_b64(latest.root_hash), created=made is not None)


def _entry_out(entry: AuditEntry) -> EntryOut:
    return EntryOut(
        leaf_index=entry.leaf_index,
        leaf_hash=_b64(entry.leaf_hash),
        entry=audit.entry_body(entry),
        redacted=entry.body is None,
        integrated_time=entry.integrated_time,
    )


@router.get("/entries/{leaf_index}", dependencies=[require_scope("audit:read")])
def entry(session: SessionDep, leaf_index: Annotated[int, Path(ge=0, le=MAX_INDEX)]) -> EntryOut:
    """One entry; ``leaf_hash`` = base64 SHA-256(0x00 ‖ RFC 8785 bytes of ``entry``)."""
    return _entry_out(audit.get_entry_or_raise(session, leaf_index))


@router.get(
    "/entries",
    response_model=None,
    responses={
        200: {
            "model": list[EntryOut],
            "description": "`format=json`: the entries; `jsonl` or `csv`: an export row per entry, with its proof",
            "content": {"application/jsonl": {}, "text/csv": {}},
        }
    },
)
def entries(  # noqa: PLR0917 - every filter of the auditor search is a query parameter
    session: SessionDep,
    runtime: RuntimeDep,
    caller: Annotated[AccessClaims, require_scope("audit:read")],
    holder_type: Annotated[Literal["111", "001"] | None, Query()] = None,
    holder_code: Annotated[str | None, Query(max_length=40)] = None,
    department: Annotated[str | None, Query(max_length=18)] = None,
    officer: Annotated[str | None, Query(max_length=64)] = None,
    licence: Annotated[str | None, Query(max_length=128)] = None,
    matter: Annotated[str | None, Query(max_length=64)] = None,
    case: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[Literal["ok", "denied", "failed"] | None, Query()] = None,
    since: Annotated[AwareDatetime | None, BeforeValidator(_not_a_number)] = None,
    until: Annotated[AwareDatetime | None, BeforeValidator(_not_a_number)] = None,
    after: Annotated[int | None, Query(ge=-1, le=MAX_INDEX)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Annotated[Literal["json", "jsonl", "csv"], Query()] = "json",  # noqa: A002 - the API's name
) -> Any:
    """Search the log (holder by type and code, hashed here); JSON, or JSON Lines / CSV with inclusion proofs."""
    ref = None
    if holder_type is not None or holder_code is not None:
        if holder_type is None or holder_code is None:
            raise InvalidInput("give holder_type and holder_code together")
        ref = audited.holder_ref(runtime, holder_type, validate_holder_code(holder_type, holder_code))
    where = audit.EntryFilter(
        holder_ref=ref,
        department_code=department,
        officer_id=officer,
        certificate_identifier=licence,
        matter_code=matter,
        case_number=case,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
    )
    found = audit.search(session, where, after=after, limit=limit)
    if ref is not None:  # looking up one person is itself a use of their data: it shows in their access log
        audited.record(
            session,
            runtime,
            audited.event(
                action="audit.entries.searched",
                outcome="ok",
                actor_type="department",
                actor=caller.department_code,
                client_id=caller.client_id,
                holder_ref=ref,
            ),
        )
    if format == "json":
        return [_entry_out(e) for e in found]
    size = tree.integrated_size(session)
    fetch = tree.fetcher(session)
    rows = [_export_row(fetch, e, size) for e in found]
    if format == "jsonl":
        lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return StreamingResponse(lines, media_type="application/jsonl")
    return StreamingResponse(_csv(rows), media_type="text/csv; charset=utf-8")


def _export_row(fetch: merkle.SubtreeHashes, entry: AuditEntry, size: int) -> dict[str, Any]:
    # ``size`` is the latest checkpoint's, read once for the whole export.
    proof = merkle.inclusion_proof(entry.leaf_index, size, fetch) if entry.leaf_index < size else None
    return {
        "leaf_index": entry.leaf_index,
        "leaf_hash": _b64(entry.leaf_hash),
        "entry": audit.entry_body(entry),
        "tree_size": size if proof is not None else None,
        "inclusion_proof": [_b64(h) for h in proof] if proof is not None else None,
    }


def _csv(rows: list[dict[str, Any]]) -> Iterator[str]:
    columns = ["leaf_index", "leaf_hash", "time", "action", "outcome", "error_code", "actor", "client_id",
               "officer_id", "matter_code", "case_number", "certificate_identifier", "holder_ref", "fields",
               "tree_size", "inclusion_proof"]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        body = row["entry"] or {}
        flat = {**body, **row, "fields": " ".join(body.get("fields", []))}
        flat["inclusion_proof"] = " ".join(row["inclusion_proof"] or [])
        writer.writerow(flat)
    yield buffer.getvalue()
