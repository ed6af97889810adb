"""Catalogue routes: objections (issue 6; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["catalog"])
