"""CSRF protection for the server-rendered forms: a double-submit token.

The page sets a random token in a cookie (HttpOnly, SameSite=Strict, Secure when the hub is served over
HTTPS) and repeats it in a hidden form field; a POST is accepted only when the two match. Another site
can make a browser send the cookie (not with SameSite=Strict, but older browsers) but cannot read it to
fill in the field. Starlette has no CSRF helper and the form set is tiny, so this is written here.
"""

from __future__ import annotations

import hmac
import re
import secrets

from fastapi import Request, Response

from hub.errors import DomainError

COOKIE = "hub_csrf"
FIELD = "csrf_token"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


class CsrfTokenInvalid(DomainError):
    status = 403
    code = "csrf_token_invalid"
    title = "The form is out of date or was not sent from this site; open the page again"


def token_for(request: Request) -> str:
    """The browser's token if it has a well-formed one, else a new one."""
    current = request.cookies.get(COOKIE, "")
    return current if _TOKEN.match(current) else secrets.token_urlsafe(32)


def set_cookie(response: Response, token: str, *, secure: bool, path: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, path=path)


def check(request: Request, submitted: str | None) -> None:
    cookie = request.cookies.get(COOKIE, "")
    if not (_TOKEN.match(cookie) and submitted and hmac.compare_digest(cookie, submitted)):
        raise CsrfTokenInvalid
