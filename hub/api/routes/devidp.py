"""The development identity provider (dev/demo/test only): sign in as any citizen or company."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from hub.api.deps import RuntimeDep, SessionDep
from hub.api.schemas import DevTokenIn, DevTokenOut
from hub.identity.oidc import issue_dev_id_token
from hub.keys import service as keys

router = APIRouter(prefix="/dev/idp", tags=["dev identity provider"])


@router.post("/token")
def token(body: DevTokenIn, session: SessionDep, runtime: RuntimeDep) -> DevTokenOut:
    """An ID token for any holder; this router is not mounted in production."""
    settings = runtime.settings
    return DevTokenOut(
        id_token=issue_dev_id_token(
            keys.signing_key(session, runtime.master_keys, keys.DEV_IDP),
            issuer=settings.dev_idp_issuer,
            audience=settings.oidc_audience,
            holder_type=body.holder_type,
            holder_code=body.holder_code,
            name=body.name,
            nonce=body.nonce,
        )
    )


@router.get("/.well-known/openid-configuration")
def discovery(runtime: RuntimeDep) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3, for what this IdP does."""
    issuer = runtime.settings.dev_idp_issuer
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks.json",
        "token_endpoint": f"{issuer}/token",
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["id_token"],
        "claims_supported": ["sub", "name", "holder_type", "holder_code", "nonce"],
    }


@router.get("/jwks.json")
def jwks(session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    return keys.jwks(session, keys.DEV_IDP, timedelta(seconds=runtime.settings.key_overlap_seconds))
