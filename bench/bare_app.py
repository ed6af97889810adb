"""Bare FastAPI baseline: the framework and server cost with no middleware, database or crypto."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form
from pydantic import BaseModel, Field

app = FastAPI()


@app.get("/ping")
def ping() -> dict[str, bool]:
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
