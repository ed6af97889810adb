"""Purpose-stamped copies (加注件): what a fetching department downloads instead of the original.

A copy names the matter, the department, the case number, the officer and its own expiry, in a diagonal
watermark and in the notes; it prints only the granted face fields; and it is sealed (PAdES B-T) by the
hub's platform seal (电子证照平台专用章), not the issuer's, because the hub made it. Provincial sharing
platforms hand out such 加注件 so that a copy found later says what it was for and until when.

When the grant covers every face field the department gets the issuer-sealed original instead (it
proves more, and hides nothing the grant did not already allow).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from psycopg.types.json import Json
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from hub.clock import CHINA_TIME
from hub.db import copy_rows, is_postgresql
from hub.errors import DomainError, NotFound
from hub.exchange.models import PurposeCopy
from licences.face import face_rows
from licences.issuance import LicenceContext, metadata
from licences.models import Licence, LicenceType
from licences.render import TEMPLATES, Box, LicenceDocument, LicenceFaceOverflow, render_licence
from seals import service as pki
from seals.models import Seal
from seals.sealing import Placement, seal_document

PLATFORM = "platform"


class CopyNotFound(NotFound):
    code = "copy_not_found"
    title = "No purpose-stamped copy of yours has this id"


class CopyExpired(DomainError):
    status = 410
    code = "copy_url_expired"
    title = "This file URL has expired; fetch again for a new one"


class PlatformSealMissing(DomainError):
    status = 503
    code = "platform_seal_missing"
    title = "The hub has no active platform seal (电子证照平台专用章) to seal copies with"


@dataclass(frozen=True)
class CopyPurpose:
    """Why a copy exists: printed on it, and stored with it."""

    department_code: str
    department_name: str
    matter_code: str
    matter_name: str
    case_number: str
    officer_id: str


def promise(
    session: Session,
    licence: Licence,
    purpose: CopyPurpose,
    *,
    fields: list[str],
    all_fields: bool,
    now: datetime,
    url_ttl: timedelta,
    valid_for: timedelta,
) -> PurposeCopy:
    """Record the copy a fetch returns a URL for; nothing is rendered until it is downloaded."""
    copy = PurposeCopy(**promised_row(
        licence.identifier, purpose.department_code, purpose.matter_code, purpose.case_number, purpose.officer_id,
        fields=fields, all_fields=all_fields, now=now, url_expires_at=now + url_ttl, copy_valid_until=now + valid_for,
    ))  # fmt: skip
    session.add(copy)
    session.flush()
    return copy


def promised_row(
    licence_identifier: str, department_code: str, matter_code: str, case_number: str, officer_id: str, *,
    fields: list[str], all_fields: bool, now: datetime, url_expires_at: datetime, copy_valid_until: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The row of a promised copy, with a fresh 128-bit id (the URL's capability)."""
    return {
        "id": secrets.token_hex(16), "licence_identifier": licence_identifier, "department_code": department_code,
        "matter_code": matter_code, "case_number": case_number, "officer_id": officer_id, "fields": list(fields),
        "original": all_fields, "url_expires_at": url_expires_at, "copy_valid_until": copy_valid_until,
        "created_at": now,
    }  # fmt: skip


def promise_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert many promised copies at once (a batch of fetches): COPY on PostgreSQL, one executemany elsewhere.

    psycopg's executemany prepares and sends each row from Python: 12 % of the audit process's time per
    fetch (py-spy, 64 clients), where COPY streams the batch in one command.
    """
    if not rows:
        return
    if is_postgresql(session):
        columns = list(rows[0])
        values = ([Json(v) if k == "fields" else v for k, v in row.items()] for row in rows)
        copy_rows(session, PurposeCopy.__tablename__, columns, values)
        return
    # Core, not the ORM's bulk insert: the same executemany without its per-row bookkeeping
    session.execute(insert(cast("Table", PurposeCopy.__table__)), rows)


def get_for_download(session: Session, copy_id: str, department_code: str, *, now: datetime) -> PurposeCopy:
    """The copy, locked, if it is this department's and its URL is still live."""
    copy = session.get(PurposeCopy, copy_id, with_for_update=True)
    if copy is None or copy.department_code != department_code:
        raise CopyNotFound(f"no copy {copy_id}")
    if copy.url_expires_at <= now:
        raise CopyExpired
    return copy


def platform_seal(session: Session) -> Seal:
    seal = session.scalar(
        select(Seal).where(Seal.kind == PLATFORM, Seal.status == "active").order_by(Seal.created_at.desc()).limit(1)
    )
    if seal is None:
        raise PlatformSealMissing
    return seal


def stamp_lines(copy: PurposeCopy, purpose: CopyPurpose) -> tuple[str, list[str]]:
    """The watermark and the notes of a copy: who may use it, for what, until when."""
    until = copy.copy_valid_until.astimezone(CHINA_TIME)
    until_text = f"{until.year}年{until.month:02d}月{until.day:02d}日"
    watermark = f"仅供{purpose.department_name}办理{purpose.matter_name}使用"
    use = (
        f"加注件：仅供{purpose.department_name}办理“{purpose.matter_name}”（事项编码 {purpose.matter_code}）使用，"
        f"办件编号 {purpose.case_number}，经办人 {purpose.officer_id}，{until_text}前有效，他用无效；"
        "仅显示授权共享的照面信息。"
    )
    notes = [use]
    return watermark, notes


@dataclass(frozen=True)
class CopySource:
    """What a copy is made from: the licence version, its type, and why it was fetched."""

    licence: Licence
    licence_type: LicenceType
    purpose: CopyPurpose


def render_copy(session: Session, ctx: LicenceContext, copy: PurposeCopy, source: CopySource) -> bytes:
    """Render the granted fields with the purpose stamp and seal it with the platform seal (B-T)."""
    licence, licence_type = source.licence, source.licence_type
    granted = {key: licence.face[key] for key in copy.fields if key in licence.face}
    watermark, notes = stamp_lines(copy, source.purpose)
    printed = {k: v for k, v in metadata(licence).items() if isinstance(v, str)}
    document = LicenceDocument(
        metadata=printed, face=face_rows(licence_type.face_schema, granted), qr_url=ctx.qr_url(licence.id),
        watermark=watermark, notes=notes,
    )  # fmt: skip
    template = TEMPLATES[licence_type.template]
    try:
        rendered = render_licence(document, template=template)
    except LicenceFaceOverflow:  # long department or matter names: smaller notes in a taller box
        box = template.notes_box
        roomier = replace(template, notes_size=6.0, notes_box=Box(box.x, box.y - 4.0, box.width, box.height + 4.0))
        rendered = render_licence(document, template=roomier)
    timestamp = pki.get_timestamper(session, ctx.master_keys).stamp_digest if ctx.timestamped else None
    return seal_document(
        session, ctx.seal_context, ctx.prepared_seals, platform_seal(session), rendered.pdf,
        placement=Placement(rect=rendered.seal_rect, page_index=rendered.page_index), timestamp=timestamp,
    )  # fmt: skip


def file_for(session: Session, ctx: LicenceContext, copy: PurposeCopy, source: CopySource, *, now: datetime) -> bytes:
    """The bytes a download serves: the original, or the copy, generated and stored on first download."""
    if copy.original:
        data = ctx.storage.get(source.licence.file_sha256)
    elif copy.file_sha256 is not None:
        data = ctx.storage.get(copy.file_sha256)
    else:
        data = render_copy(session, ctx, copy, source)
        copy.file_sha256 = ctx.storage.put(data)
    copy.downloaded_at = copy.downloaded_at or now
    session.flush()
    return data
