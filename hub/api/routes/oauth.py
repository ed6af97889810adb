"""OAuth 2.0 token endpoint (client credentials), RFC 8414 metadata and the hub's JWKS."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Response

from hub import audited
from hub.api.deps import RuntimeDep, SessionDep
from hub.api.schemas import TokenResponse
from hub.db import begin_read_only
from hub.errors import DomainError
from hub.identity import service as identity
from hub.identity.scopes import SCOPES
from hub.keys import service as keys

router = APIRouter(tags=["auth"])


@router.post("/oauth/token", response_model=TokenResponse)
def token(  # noqa: PLR0917 - FastAPI reads each form field as a parameter
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    grant_type: Annotated[str | None, Form(max_length=100)] = None,
    scope: Annotated[str | None, Form(max_length=500)] = None,
    client_id: Annotated[str | None, Form(max_length=200)] = None,
    client_assertion_type: Annotated[str | None, Form(max_length=200)] = None,
    client_assertion: Annotated[str | None, Form(max_length=8000)] = None,
    authorization: Annotated[str | None, Header(max_length=2000)] = None,
) -> dict[str, Any]:
    """Client credentials grant; authenticate with client_secret_basic or private_key_jwt (RFC 7523)."""
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    response.headers["Pragma"] = "no-cache"
    if client_assertion is None:
        # client_secret_basic writes nothing, so the ~150 ms Argon2id check must not hold SQLite's
        # single write lock (private_key_jwt spends its jti, so it stays a writer).
        begin_read_only(session)
    request = identity.TokenRequest(
        grant_type=grant_type,
        scope=scope,
        client_id=client_id,
        client_assertion_type=client_assertion_type,
        client_assertion=client_assertion,
        authorization=authorization,
    )
    try:
        issued = identity.issue_token(session, runtime.settings, runtime.master_keys, request)
    except DomainError as exc:  # every failed sign-in of a department system is audited
        claimed = (identity.claimed_client_id(request) or "")[:64] or None
        exc.audit_event = audited.event(
            action="auth.token.issued", outcome="denied", actor_type="public", actor="anonymous",
            error_code=exc.code, client_id=claimed,
        )  # fmt: skip
        raise
    receipt = audited.record(
        session,
        runtime,
        audited.event(
            action="auth.token.issued",
            outcome="ok",
            actor_type="department",
            actor=issued.department_code,
            client_id=issued.client_id,
            extra={"scope": issued.body["scope"]},
        ),
    )
    return {**issued.body, "receipt": receipt.to_json()}


@router.get("/.well-known/oauth-authorization-server")
def metadata(runtime: RuntimeDep) -> dict[str, Any]:
    """RFC 8414 §2 authorization server metadata."""
    settings = runtime.settings
    return {
        "issuer": settings.issuer,
        "token_endpoint": settings.token_endpoint,
        "jwks_uri": f"{settings.issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"],
        "scopes_supported": sorted(SCOPES),
    }


@router.get("/.well-known/jwks.json")
def jwks(session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Verification keys of access tokens: the active key and retired ones still covering live tokens."""
    return keys.jwks(session, keys.ACCESS_TOKEN, timedelta(seconds=runtime.settings.key_overlap_seconds))
