"""The page a phone opens after scanning a licence QR code: ``GET /v/{token}`` (扫码亮证).

HTML by default, JSON with ``Accept: application/json`` (DESIGN.md §4). Every scan is audited
against the licence holder before the verdict is sent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response

from hub import audited
from hub.api.deps import RuntimeDep, SessionDep
from hub.api.routes.pages import PAGE_HEADERS, templates
from licences import holders

router = APIRouter(tags=["public"])
MAX_TOKEN = 4096  # a presentation token is ~1 kB; anything far larger is refused before parsing
_VERDICT_CLASS = {"valid": "ok", "suspended": "warn", "code_expired": "warn"}


@router.get("/v/{token}", response_class=HTMLResponse, responses={200: {"content": {"application/json": {}}}})
def scan(
    request: Request,
    token: Annotated[str, PathParam(max_length=MAX_TOKEN)],
    session: SessionDep,
    runtime: RuntimeDep,
    accept: Annotated[str, Header()] = "text/html",
) -> Response:
    """Verify a scanned code and show the licence's live status with only the disclosed fields."""
    result = holders.scan(
        session,
        token,
        keys_source=runtime.presentation_keys,
        issuer=runtime.settings.public_url.rstrip("/"),
    )
    licence = result.licence
    event = audited.event(
        action="licence.presentation.scanned", outcome="ok" if result.token_valid else "denied",
        actor_type="public", actor="anonymous", error_code=result.error_code,
        holder_ref=audited.holder_ref(runtime, licence.holder_type, licence.holder_code) if licence else None,
        certificate_identifier=licence.identifier if licence else None,
        fields=tuple(result.disclosed) or None,
        extra={"verdict": result.verdict, **({"jti": result.jti} if result.jti else {})},
    )  # fmt: skip
    receipt = audited.record(session, runtime, event).to_json()
    body = result.to_json() | {"receipt": receipt}
    headers = PAGE_HEADERS
    if "application/json" in accept and "text/html" not in accept:
        return JSONResponse(body, headers=headers)
    context = {"r": body, "tone": _VERDICT_CLASS.get(result.verdict, "bad")}
    return templates.TemplateResponse(request, "scan.html", context, headers=headers)
