"""What a department's own token says about it: lets integrators check their setup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from hub.api.deps import require_scope
from hub.identity.tokens import AccessClaims

router = APIRouter(prefix="/v1", tags=["auth"])


class WhoAmI(BaseModel):
    client_id: str
    department_code: str
    scopes: list[str]
    expires_at: int


@router.get("/whoami")
def whoami(claims: Annotated[AccessClaims, require_scope(None)]) -> WhoAmI:
    """The caller's client id, department and scopes, as the hub sees its access token."""
    return WhoAmI(
        client_id=claims.client_id,
        department_code=claims.department_code,
        scopes=sorted(claims.scopes),
        expires_at=claims.expires_at,
    )
