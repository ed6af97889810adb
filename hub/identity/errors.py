"""Authentication and authorisation failures, each with a stable code (and RFC 6749/6750 ``error``)."""

from __future__ import annotations

from typing import Any

from hub.errors import DomainError, Forbidden, InvalidInput, Unauthenticated


class OAuthError(DomainError):
    """Token endpoint errors also carry RFC 6749 §5.2 ``error`` so OAuth libraries understand them."""

    oauth_error = "invalid_request"

    def problem(self) -> dict[str, Any]:
        body = super().problem()
        body["error"] = self.oauth_error
        body["error_description"] = self.detail
        return body


class ClientAuthenticationFailed(OAuthError):
    status = 401
    code = "client_authentication_failed"
    title = "Client authentication failed"
    oauth_error = "invalid_client"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = 'Basic realm="licence-hub"'  # RFC 6749 §5.2


class ClientAssertionInvalid(ClientAuthenticationFailed):
    code = "client_assertion_invalid"
    title = "The client assertion is not valid"


class ClientAssertionExpired(ClientAuthenticationFailed):
    code = "client_assertion_expired"
    title = "The client assertion has expired or lives too long"


class ClientAssertionReplayed(ClientAuthenticationFailed):
    code = "client_assertion_replayed"
    title = "The client assertion was already used"


class TokenRequestInvalid(OAuthError):
    status = 400
    code = "token_request_invalid"
    title = "The token request is malformed"
    oauth_error = "invalid_request"


class GrantTypeUnsupported(OAuthError):
    status = 400
    code = "grant_type_unsupported"
    title = "Only the client_credentials grant is supported"
    oauth_error = "unsupported_grant_type"


class ScopeNotAllowed(OAuthError):
    status = 400
    code = "scope_not_allowed"
    title = "The requested scope exceeds what the client was granted"
    oauth_error = "invalid_scope"


class BearerError(Unauthenticated):
    """RFC 6750 §3: every 401 from the resource server carries WWW-Authenticate."""

    bearer_error = "invalid_token"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = f'Bearer realm="licence-hub", error="{self.bearer_error}"'


class TokenMissing(BearerError):
    code = "token_missing"
    title = "An access token is required"
    bearer_error = "invalid_request"


class TokenInvalid(BearerError):
    code = "token_invalid"
    title = "The access token is not valid"


class TokenExpired(BearerError):
    code = "token_expired"
    title = "The access token has expired"


class TokenAudienceMismatch(BearerError):
    code = "token_audience_mismatch"
    title = "The access token was issued for another audience"


class ClientDisabled(BearerError):
    code = "client_disabled"
    title = "The client or its department has been disabled"


class ScopeMissing(Forbidden):
    """RFC 6750 §3.1 insufficient_scope."""

    code = "scope_missing"
    title = "The access token lacks the scope this operation needs"

    def __init__(self, scope: str) -> None:
        super().__init__(f"this operation needs the scope '{scope}'", required_scope=scope)
        self.headers["WWW-Authenticate"] = f'Bearer realm="licence-hub", error="insufficient_scope", scope="{scope}"'


class IdTokenInvalid(BearerError):
    code = "id_token_invalid"
    title = "The ID token is not valid"


class IdTokenExpired(IdTokenInvalid):
    code = "id_token_expired"
    title = "The ID token has expired"


class IdTokenIssuerUnknown(IdTokenInvalid):
    code = "id_token_issuer_unknown"
    title = "The ID token comes from an issuer this hub does not trust"


class IdTokenAudienceMismatch(IdTokenInvalid):
    code = "id_token_audience_mismatch"
    title = "The ID token was issued for another client"


class IdTokenNonceMismatch(IdTokenInvalid):
    code = "id_token_nonce_mismatch"
    title = "The ID token's nonce does not match this sign-in"


class DevIdentityProviderDisabled(Forbidden):
    code = "dev_idp_disabled"
    title = "The development identity provider is disabled outside dev/demo"


class JwksInvalid(InvalidInput):
    code = "jwks_invalid"
    title = "The JWK set is not acceptable"


class StaffRoleNotAllowed(Forbidden):
    code = "staff_role_not_allowed"
    title = "The identity provider gave the officer a role no person may hold in the hub"
