"""Pages for people (issue 8): ``GET|POST /verify``, upload a licence PDF and read its seal report.

Server-rendered (Jinja2), no JavaScript, no external resources; the words live in the templates. The form
is protected by a double-submit CSRF token (hub.api.csrf) and every page carries a strict
Content-Security-Policy. The check itself is ``POST /v1/verify/file``'s, audited the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from hub.api import csrf
from hub.api.deps import RuntimeDep, SessionDep, read_only
from hub.api.routes.verify import FileTooLarge, read_capped, verify_upload
from hub.errors import DomainError, InvalidInput
from seals.verify import MAX_FILE_BYTES

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parents[2] / "templates")

# No scripts, no frames, styles and images from the hub only, forms post back to the hub only.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class FileMissing(InvalidInput):
    code = "file_missing"
    title = "Choose a PDF file to verify"


def secure_cookies(request: Request) -> bool:
    """Cookies are marked Secure when the hub is served over HTTPS (its public URL says so)."""
    return str(request.app.state.runtime.settings.public_url).startswith("https://")


@dataclass(frozen=True)
class SessionCookie:
    """A signed-in browser's ID token: HttpOnly, SameSite, Secure over HTTPS, scoped to ``path``."""

    name: str
    path: str
    samesite: Literal["lax", "strict"]

    def start(self, request: Request, response: Response, id_token: str) -> Response:
        secure = secure_cookies(request)
        response.set_cookie(self.name, id_token, httponly=True, samesite=self.samesite, secure=secure, path=self.path)
        return response

    def end(self, request: Request, csrf_token: str | None, *, stay: str, leave: str) -> Response:
        """Sign out (a form post with its CSRF token; without it, nothing happens and the page stays)."""
        try:
            csrf.check(request, csrf_token)
        except DomainError:
            return RedirectResponse(stay, status_code=303)
        response = RedirectResponse(leave, status_code=303)
        response.delete_cookie(
            self.name, path=self.path, secure=secure_cookies(request), httponly=True, samesite=self.samesite
        )
        return response


def render_page(
    request: Request,
    name: str,
    *,
    status: int,
    cookie_path: str,
    headers: dict[str, str] = PAGE_HEADERS,
    **context: Any,
) -> HTMLResponse:
    """A page with its forms' CSRF token, the token's cookie (scoped to ``cookie_path``) and the page headers."""
    token = csrf.token_for(request)
    response = templates.TemplateResponse(
        request, name, {"csrf_token": token, **context}, status_code=status, headers=headers
    )
    csrf.set_cookie(response, token, secure=secure_cookies(request), path=cookie_path)
    return response


def _page(request: Request, status: int, **context: Any) -> HTMLResponse:
    return render_page(
        request, "verify.html", status=status, cookie_path="/verify", max_mib=MAX_FILE_BYTES >> 20, **context
    )


def verify_page_too_large(request: Request) -> HTMLResponse:
    """The form again saying 文件太大, for an upload refused unread by hub.api.body_limit."""
    return _page(request, 413, report=None, error={"code": FileTooLarge.code, "title": FileTooLarge.title})


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request) -> HTMLResponse:
    """The upload form."""
    return _page(request, 200, report=None, error=None)


@router.post("/verify", response_class=HTMLResponse)
@read_only
def verify_page_upload(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile | None, File()] = None,
    csrf_token: Annotated[str | None, Form(max_length=100)] = None,
) -> HTMLResponse:
    """The seal report of the uploaded file, in plain words, under the form for the next one."""
    try:
        csrf.check(request, csrf_token)
        if file is None or not file.filename:
            raise FileMissing
        report = verify_upload(session, runtime, read_capped(file))
    except DomainError as exc:
        return _page(request, exc.status, report=None, error={"code": exc.code, "title": exc.title})
    return _page(request, 200, report=report, error=None)
