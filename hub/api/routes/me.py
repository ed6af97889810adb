"""Holder API under ``/v1/me/`` (ID token as bearer)."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api.deps import HolderDep
from hub.api.schemas import HolderOut

router = APIRouter(prefix="/v1/me", tags=["holder"])


@router.get("")
def me(holder: HolderDep) -> HolderOut:
    """Who the ID token signs in: one account per (holder type, code)."""
    return HolderOut(holder_type=holder.holder_type, holder_code=holder.holder_code, name=holder.name)
