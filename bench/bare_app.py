"""Bare FastAPI baseline: the framework and server cost with no middleware, database or crypto.

Each endpoint comes twice. FastAPI runs a ``def`` endpoint on its thread pool (a hop to a worker thread and
back per request) and an ``async def`` endpoint on the event loop. The hub's hot routes (scan, verify,
fetch) are ``async def``, so the ``-async`` twins are the like-for-like floor; the ``def`` ones are the
baseline of the earlier results, kept so figures stay comparable across runs. On a 2-core VM the thread
hop made the ``def`` endpoint two to three times slower than its twin (2026-12-04).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form
from pydantic import BaseModel, Field

app = FastAPI()


@app.get("/ping")
def ping() -> dict[str, bool]:
    return {"ok": True}


@app.get("/ping-async")
async def ping_async() -> dict[str, bool]:
    return {"ok": True}


@app.post("/form")
def form(grant_type: Annotated[str, Form(max_length=100)]) -> dict[str, str]:
    """Parses a form field like the token endpoint does, so form handling is in the baseline too."""
    return {"grant_type": grant_type}


class VerifyBody(BaseModel):
    certificate_identifier: str = Field(min_length=1, max_length=120)


@app.post("/json")
def json_body(body: VerifyBody) -> dict[str, str]:
    """Parses and validates a JSON body like the exchange endpoints do (the exchange benchmark's baseline)."""
    return {"certificate_identifier": body.certificate_identifier, "status": "valid"}


@app.post("/json-async")
async def json_body_async(body: VerifyBody) -> dict[str, str]:
    """``POST /json`` on the event loop instead of the thread pool."""
    return {"certificate_identifier": body.certificate_identifier, "status": "valid"}
