"""FastAPI dependencies: the per-request unit of work and the one authorisation dependency."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from hub import audited
from hub.db import begin_read_only
from hub.errors import DomainError
from hub.identity import service as identity
from hub.identity.errors import IdTokenInvalid, ScopeMissing, StaffRoleNotAllowed, TokenMissing
from hub.identity.models import Department, Holder
from hub.identity.oidc import StaffIdentity, verify_id_token, verify_staff_id_token
from hub.identity.scopes import SCOPES
from hub.identity.tokens import AccessClaims
from hub.keys import service as keys
from hub.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """Async on purpose: FastAPI runs a plain ``def`` dependency on the thread pool, a hop per call for a lookup."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # RFC 9110 §9.2.1
_F = TypeVar("_F", bound=Callable[..., Any])


def read_only(endpoint: _F) -> _F:
    """Mark a POST endpoint whose unit of work changes nothing (its only write is its audit entry).

    Its session begins read-only like a GET's, so the entry goes through the group committer: many
    concurrent calls share one durable commit instead of queueing on the sequencer one by one.
    """
    endpoint.__dict__["read_only_unit_of_work"] = True
    return endpoint


def _declared_read_only(request: Request) -> bool:
    endpoint = request.scope.get("endpoint")
    return request.method in SAFE_METHODS or bool(getattr(endpoint, "read_only_unit_of_work", False))


def get_session(request: Request, runtime: RuntimeDep) -> Iterator[Session]:
    """The one place a request commits: after the handler returns, before the response is sent."""
    with unit_of_work(runtime, read_only=_declared_read_only(request)) as session:
        yield session


@contextmanager
def unit_of_work(runtime: Runtime, *, read_only: bool) -> Iterator[Session]:
    """A request's session: committed at the end, rolled back on error.

    A refusal that carries an audit event is recorded after the request's own transaction has
    rolled back (so nothing else of the refused request survives), and its receipt goes back with
    the problem response. Handlers get it through ``SessionDep``.
    """
    try:
        with runtime.session_scope() as session:
            if read_only:
                begin_read_only(session)
            yield session
    except DomainError as exc:
        _record_refusal_event(runtime, exc)
        raise


def _record_refusal_event(runtime: Runtime, exc: DomainError) -> None:
    if exc.audit_event is not None and exc.receipt is None:
        exc.receipt = runtime.audit.record([exc.audit_event])[0].to_json()


def record_refusal(session: Session, runtime: Runtime, exc: DomainError) -> None:
    """A page that answers a refusal itself: roll its changes back, then record the refusal's entry (if any)."""
    session.rollback()
    _record_refusal_event(runtime, exc)


# scope="function": the commit runs before the response leaves (DESIGN.md "no audit, no data").
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

bearer = HTTPBearer(auto_error=False, description="Access token from POST /oauth/token")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require_scope(scope: str | None) -> Any:
    """Every department endpoint declares its scope through this, so the check lives in one place.

    ``None`` accepts any valid access token (for endpoints every department may call).
    """

    def authorise(request: Request, session: SessionDep, runtime: RuntimeDep, credentials: BearerDep) -> AccessClaims:
        if credentials is None:
            raise TokenMissing("send 'Authorization: Bearer <access token>' from POST /oauth/token")
        claims = identity.authenticate_bearer(session, runtime.settings, runtime.key_cache, credentials.credentials)
        if scope is not None and scope not in claims.scopes:
            raise ScopeMissing(scope)
        request.state.caller = claims
        return claims

    return Depends(authorise)


_holder_bearer = HTTPBearer(
    auto_error=False, scheme_name="HolderIdToken", description="OpenID Connect ID token of the holder"
)
HolderBearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_holder_bearer)]


def _holder_jwk_source(session: Session, runtime: Runtime) -> Callable[[str], dict[str, Any] | None]:
    remote = runtime.holder_jwks
    if remote is not None:
        return remote.jwk
    published = {
        row.kid: row.public_jwk
        for row in keys.published_keys(session, keys.DEV_IDP, timedelta(seconds=runtime.settings.key_overlap_seconds))
    }
    return published.get


def current_holder(session: SessionDep, runtime: RuntimeDep, credentials: HolderBearerDep) -> Holder:
    """The signed-in holder of a ``/v1/me/`` call (DESIGN.md §4: ID token as bearer)."""
    if credentials is None:
        raise TokenMissing("send 'Authorization: Bearer <ID token>' from the identity provider")
    return holder_from_id_token(session, runtime, credentials.credentials)


def _issuer_or_raise(runtime: Runtime) -> str:
    if runtime.settings.holder_issuer is None:
        raise TokenMissing("no identity provider is configured (HUB_OIDC_ISSUER)")
    return runtime.settings.holder_issuer


@contextmanager
def _sign_in_audited(action: str) -> Iterator[None]:
    """A failed sign-in is audited (issue 3); the token itself is never logged."""
    try:
        yield
    except DomainError as exc:
        exc.audit_event = audited.event(
            action=action, outcome="denied", actor_type="public", actor="anonymous", error_code=exc.code
        )
        raise


def holder_from_id_token(session: Session, runtime: Runtime, id_token: str) -> Holder:
    """The holder an ID token signs in (API bearer or the portal's session cookie); a failure is audited."""
    with _sign_in_audited("identity.holder.signed_in"):
        identity_ = verify_id_token(
            id_token,
            issuer=_issuer_or_raise(runtime),
            audience=runtime.settings.oidc_audience,
            jwk_for_kid=_holder_jwk_source(session, runtime),
        )
    return identity.resolve_holder(
        session, holder_type=identity_.holder_type, holder_code=identity_.holder_code, name=identity_.name
    )


STAFF_ROLES = frozenset(SCOPES) - {"admin"}  # administration stays with API clients and the CLI


def staff_from_id_token(session: Session, runtime: Runtime, id_token: str) -> tuple[StaffIdentity, AccessClaims]:
    """The officer a console session cookie signs in, and the claims the API handlers take; failures audited.

    The identity provider vouches for the officer's department and roles; the hub checks the department
    is registered and the roles are scopes a person may hold. ``client_id`` is ``staff:<officer id>``, so
    every audit entry of a console action names the officer.
    """
    with _sign_in_audited("identity.staff.signed_in"):
        staff = verify_staff_id_token(
            id_token,
            issuer=_issuer_or_raise(runtime),
            audience=runtime.settings.oidc_audience,
            jwk_for_kid=_holder_jwk_source(session, runtime),
        )
        if session.get(Department, staff.department_code) is None:
            raise IdTokenInvalid("the ID token names a department the hub does not know")
        if not staff.roles <= STAFF_ROLES:
            raise StaffRoleNotAllowed(f"not for a person: {' '.join(sorted(staff.roles - STAFF_ROLES))}")
    claims = AccessClaims(
        client_id=f"staff:{staff.officer_id}",
        department_code=staff.department_code,
        scopes=staff.roles,
        jti="",
        expires_at=staff.expires_at,
    )
    return staff, claims


HolderDep = Annotated[Holder, Depends(current_holder)]
