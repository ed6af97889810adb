"""Authorisation matrix (issue 9 item 4): every API operation of the app × every kind of caller.

One row per operation (method + route template) of the app's OpenAPI document — every route with
``include_in_schema=True``: ``/v1/…``, ``/oauth/token``, ``/.well-known/…``, ``/dev/idp/…``, the
operations endpoints and ``/v/{token}``. The HTML pages (``/me``, ``/verify``, ``/audit``, ``/staff``…)
are ``include_in_schema=False`` and out of scope. ``test_every_route_has_a_row`` fails when the app gains
or loses an operation that the table does not list, so the matrix stays complete.

Roles (real credentials only: private_key_jwt access tokens from ``POST /oauth/token``, holder ID tokens
from the development IdP ``POST /dev/idp/token``; nothing about crypto or auth is mocked):

- ``anonymous``: no ``Authorization`` header.
- ``holder_a``, ``holder_b``: two companies signed in with ID tokens; holder A holds the seed licence.
- ``issuer``: the department that issued the seed licence (``licence:issue licence:read catalog:read
  catalog:write exchange:verify``, like the demo's 市场监管局); it owns the seed batch, seal and webhook
  endpoint, provides the licence types' catalogue resources, and so handles the seed access request, grant
  and objections.
- ``other_issuer``: another department with exactly the issuer's scopes, so that its refusals come from
  the object checks and not from the scope check: this is the cross-department identifier-guessing role.
- ``consumer``: a handling department with the seed grant, matter, consent, copy and access request
  (``exchange:fetch exchange:verify catalog:read catalog:write``, like the demo's 人社局); it raised the
  seed department objection.
- ``consumer_nogrant``: a department with the consumer's scopes and no grant.
- ``auditor``: ``audit:read`` only.
- ``admin``: ``admin catalog:read catalog:write`` (the demo's 数据管理局 without ``audit:read``, so the
  auditor stays the only log reader).

What a cell asserts (``check_cell``):

- Never a 5xx; every 4xx is ``application/problem+json`` with a ``code``; every 401 has ``WWW-Authenticate``.
- **Denied** cells name the exact ``(status, code)``. A denial is any one of:
  - 401: no credentials, or credentials of the wrong kind (an ID token where an access token is due, an
    access token where an ID token is due, an ID token offered as a client assertion);
  - 403: a scope is missing, or the role may not do this to this object (``grant_change_forbidden``,
    ``licence_type_not_authorised``, ``grant_missing``, ...);
  - a code in ``AUTH_CODES`` whatever its status: ``400 scope_not_allowed`` (the token endpoint refuses a
    scope the client lacks) and ``422 matter_not_handled_by_consumer`` (data requested for a matter another
    department handles);
  - 404 with the object's own not-found code although the object exists (every id in the table names a
    seed): the hub hides other departments' and holders' objects rather than answering "forbidden". For
    every such cell the same call is made again with an unknown id of the same shape, and must get the same
    status and code, so the refusal is no existence oracle (no IDOR).
- **Allowed** means the authorisation layer let the call through to the operation: a status below 400, or
  a 4xx that is not 401, 403 or 404 and whose code is not in ``AUTH_CODES``, such as 409 for a transition
  the seed's state does not allow or 422 for a body the domain refuses. An allowed caller never gets a 404,
  since every seed it names exists.
- List rows also name a private seed and its owners: an allowed owner's answer contains the seed's id,
  anyone else's must not (no leaks through lists, including the ungranted consumer's materials check).

Cost: the seeds (one licence of holder A issued by the issuer, a batch, a consent, a grant, a pending
access request, a department and a holder objection, a webhook endpoint with a dead delivery, a copy, a
presentation, a checkpoint) are built once per module and backend in one outer transaction; each cell
runs inside a SAVEPOINT rolled back after it (and the per-process caches that mirror rows, such as the grant
cache and the seal key store's signers, are dropped with it), so no cell sees another's changes and the order
of the cells does not matter; the whole transaction is rolled back at the end. About 20 s per backend.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from conftest import MASTER_KEY, PUBLIC_URL, free_port  # type: ignore[import-not-found, unused-ignore]
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, routing
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Connection, Engine, select

from catalog.models import Classification, Resource
from hub.api.app import create_app
from hub.clock import utcnow
from hub.codes import make_uscc
from hub.db import make_session_factory
from hub.identity import service as identity
from hub.identity.service import CLIENT_ASSERTION_TYPE
from hub.runtime import Runtime
from hub.settings import Settings
from hub.storage import LocalBlobStore
from hub.webhooks.models import WebhookDelivery, WebhookEvent
from licences.demo_types import DEMO_TYPES
from licences.models import HolderNotification
from licences.types import ensure_demo_types
from seals import lifecycle as seal_lifecycle
from seals.lifecycle import SealOwner

Ids = Mapping[str, Any]

# ---------------------------------------------------------------------------------------------- roles

ANONYMOUS, HOLDER_A, HOLDER_B = "anonymous", "holder_a", "holder_b"
ISSUER, OTHER_ISSUER, CONSUMER, NOGRANT = "issuer", "other_issuer", "consumer", "consumer_nogrant"
AUDITOR, ADMIN = "auditor", "admin"
HOLDERS = (HOLDER_A, HOLDER_B)
ISSUER_SCOPES = "licence:issue licence:read catalog:read catalog:write exchange:verify"
CONSUMER_SCOPES = "exchange:fetch exchange:verify catalog:read catalog:write"
SCOPES: dict[str, str] = {
    ISSUER: ISSUER_SCOPES,
    OTHER_ISSUER: ISSUER_SCOPES,
    CONSUMER: CONSUMER_SCOPES,
    NOGRANT: CONSUMER_SCOPES,
    AUDITOR: "audit:read",
    ADMIN: "admin catalog:read catalog:write",
}
DEPARTMENTS = tuple(SCOPES)
ROLES = (ANONYMOUS, *HOLDERS, *DEPARTMENTS)

# ---------------------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Allowed:
    """The call reached the operation (module docstring)."""


@dataclass(frozen=True)
class Denied:
    status: int
    code: str


ALLOW = Allowed()
Outcome = Allowed | Denied
# The codes that are denials whatever their status (besides every 401 and 403): asking the token endpoint for a
# scope the client lacks, and requesting data for a matter another department handles.
AUTH_CODES = frozenset({"scope_not_allowed", "matter_not_handled_by_consumer"})
NO_TOKEN = Denied(401, "token_missing")
# A holder's ID token is no access token (wrong key, issuer and audience), and the other way round.
ID_TOKEN_AS_ACCESS_TOKEN = Denied(401, "token_invalid")
ACCESS_TOKEN_AS_ID_TOKEN = Denied(401, "id_token_issuer_unknown")
SCOPE_MISSING = Denied(403, "scope_missing")


def hidden(code: str) -> Denied:
    """The object exists, but this caller gets the same 404 as for an unknown id."""
    return Denied(404, code)


def public(**override: Outcome) -> dict[str, Outcome]:
    """No credentials needed: every role is allowed unless overridden."""
    return {role: override.get(role, ALLOW) for role in ROLES}


def department(
    scope: str | None,
    *,
    owners: tuple[str, ...] = DEPARTMENTS,
    hide: str | None = None,
    **override: Outcome,
) -> dict[str, Outcome]:
    """A department operation: an access token with ``scope`` (None: any scope), then the object check.

    Roles with the scope are allowed when they are ``owners``; the others get the hiding 404 ``hide``.
    """
    out: dict[str, Outcome] = {
        ANONYMOUS: NO_TOKEN,
        HOLDER_A: ID_TOKEN_AS_ACCESS_TOKEN,
        HOLDER_B: ID_TOKEN_AS_ACCESS_TOKEN,
    }
    for role in DEPARTMENTS:
        if role in override:
            out[role] = override[role]
        elif scope is not None and scope not in SCOPES[role].split():
            out[role] = SCOPE_MISSING
        elif role in owners:
            out[role] = ALLOW
        elif hide is not None:
            out[role] = hidden(hide)
        else:  # pragma: no cover - a table mistake
            msg = f"no outcome for {role}"
            raise ValueError(msg)
    return out


def holder(*, owners: tuple[str, ...] = HOLDERS, hide: str | None = None) -> dict[str, Outcome]:
    """A ``/v1/me`` operation: a holder's ID token, then (``hide``) only holder A's objects."""
    out: dict[str, Outcome] = {ANONYMOUS: NO_TOKEN}
    for role in HOLDERS:
        out[role] = ALLOW if role in owners else hidden(hide or "not_found")
    for role in DEPARTMENTS:
        out[role] = ACCESS_TOKEN_AS_ID_TOKEN
    return out


# ---------------------------------------------------------------------------------------------- rows

Body = Callable[[Ids], Any] | None


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # the route's path template, exactly as the app declares it
    expect: Mapping[str, Outcome]
    url: str | None = None  # with {seed} placeholders; default: the route itself
    json: Body = None
    params: Callable[[Ids], dict[str, Any]] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    files: bool = False  # a small upload in the field ``file``
    token_request: bool = False  # the token endpoint: each role presents its own client credentials
    target: str | None = None  # the seed whose id a hiding 404 is compared against an unknown id
    private: tuple[str, tuple[str, ...]] | None = None  # (seed, roles whose allowed answer shows it)

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.route


MATTER = "11330100MB1234567X3000333001"
BUSINESS = next(t for t in DEMO_TYPES if t.name == "营业执照")
DOCTOR = next(t for t in DEMO_TYPES if t.name == "医师执业证书")
BUSINESS_ITEMS = ["unified_social_credit_code", "name", "entity_type", "legal_representative"]
DOCTOR_ITEMS = ["name", "physician_level", "practice_category", "birth_date"]
LEGAL_BASIS = "《就业服务与就业管理规定》第六十二条"
PDF_HEAD = b"%PDF-1.7\n%authz matrix: not a sealed licence\n"


def _holder_a(ids: Ids) -> dict[str, str]:
    return {"type": "001", "code": ids["holder_a_code"]}


def _fetch_body(ids: Ids) -> dict[str, Any]:
    return {
        "matter_code": MATTER, "case_number": "LJ-2026-AUTHZ", "officer_id": "officer-7",
        "holder": _holder_a(ids), "certificate_type_code": BUSINESS.type_code,
    }  # fmt: skip


def _claim(ids: Ids, item: str) -> dict[str, Any]:
    return {"certificate_identifier": ids["licence"], "item_key": item, "claimed_value": "临江市更正后名称有限公司",
            "reason": "登记信息已变更"}  # fmt: skip


def _licence_type(ids: Ids) -> dict[str, Any]:
    """A new type whose code starts with the issuer's USCC: only the issuer (its defining authority) or an admin."""
    return {
        "certificate_type_code": f"{ids['issuer_code']}901", "certificate_type_name": "测试许可证",
        "holder_type": "001", "defining_authority_name": "临江市市场监督管理局", "validity": {"kind": "permanent"},
        "issuer_codes": [ids["issuer_code"]], "face_schema": BUSINESS.face_schema,
    }  # fmt: skip


def _resource(ids: Ids) -> dict[str, Any]:
    return {
        "classification_code": ids["resource_classification"], "provider_code": ids["issuer_code"],
        "name": "授权矩阵测试资源", "summary": "测试用数据资源。", "format": "数据库",
        "items": [{"key": "record_no", "name": "记录编号", "share_type": "unconditional"}],
        "share_type": "unconditional", "share_method": "api", "update_frequency": "daily", "publish_date": "2026-01-15",
    }  # fmt: skip


def _matter(code: str) -> dict[str, Any]:
    materials = [{"code": "M01", "name": "营业执照", "licence_type_codes": [BUSINESS.type_code]}]
    return {"code": code, "name": "企业职工就业登记", "materials": materials}


def _access_request(ids: Ids) -> dict[str, Any]:
    return {"resource_code": ids["resource"], "items": ["name"], "matter_codes": [MATTER],
            "purpose": "办理就业登记时核验企业名称", "legal_basis": LEGAL_BASIS}  # fmt: skip


OBJECTION = "objection_not_found"
REQUEST_HIDDEN = "access_request_not_found"
GRANT_HIDDEN = "grant_not_found"
LICENCE_HIDDEN = "licence_not_found"
BATCH_HIDDEN = "licence_batch_not_found"
NOT_HANDLER = Denied(422, "matter_not_handled_by_consumer")
FORBIDDEN = Denied(403, "forbidden")
# Only the admin client may have the admin scope; every other client asking for it is refused.
TOKEN: dict[str, Outcome] = {
    ANONYMOUS: Denied(401, "client_authentication_failed"),
    HOLDER_A: Denied(401, "client_authentication_failed"),  # an ID token is no client assertion
    HOLDER_B: Denied(401, "client_authentication_failed"),
    **{role: Denied(400, "scope_not_allowed") for role in DEPARTMENTS},
    ADMIN: ALLOW,
}
ADMIN_ONLY = department("admin")
SEAL_READERS = department(None, owners=(ISSUER, ADMIN), hide="seal_not_found")
# A type whose code starts with the issuer's USCC: its defining authority, or an admin.
TYPE_DEFINERS = department(
    None, owners=(ISSUER, ADMIN), other_issuer=FORBIDDEN, consumer=FORBIDDEN, consumer_nogrant=FORBIDDEN,
    auditor=SCOPE_MISSING,
)  # fmt: skip
ISSUERS = department("licence:issue", owners=(ISSUER,), other_issuer=Denied(403, "licence_type_not_authorised"))
BATCH_READERS = department("licence:issue", owners=(ISSUER,), hide=BATCH_HIDDEN)
# Issuers read their own licences (licence:issue or licence:read), an admin reads every one.
LICENCE_READERS = department(
    None, owners=(ISSUER, ADMIN), hide=LICENCE_HIDDEN, consumer=SCOPE_MISSING, consumer_nogrant=SCOPE_MISSING,
    auditor=SCOPE_MISSING,
)  # fmt: skip
LICENCE_CHANGERS = department("licence:issue", owners=(ISSUER,), hide=LICENCE_HIDDEN)
ONLY_A = (HOLDER_A,)
# Each department manages its own endpoints only, an admin's department too.
ENDPOINT_OWNER = department(None, owners=(ISSUER,), hide="webhook_endpoint_not_found")
CLASSIFIERS = department(
    "catalog:write", owners=(ADMIN,), issuer=SCOPE_MISSING, other_issuer=SCOPE_MISSING, consumer=SCOPE_MISSING,
    consumer_nogrant=SCOPE_MISSING,
)  # fmt: skip
NOT_PROVIDER = Denied(403, "provider_not_allowed")
# A new resource provided by the issuer: the issuer itself, or an admin naming it.
PUBLISHERS = department(
    "catalog:write", owners=(ISSUER, ADMIN), other_issuer=NOT_PROVIDER, consumer=NOT_PROVIDER,
    consumer_nogrant=NOT_PROVIDER,
)  # fmt: skip
PROVIDER = department("catalog:write", owners=(ISSUER, ADMIN), hide="resource_not_found")
NOT_THEIRS = Denied(403, "matter_department_forbidden")
# A new matter handled by the consumer: the consumer itself, or an admin naming it.
MATTER_CREATORS = department(
    "catalog:write", owners=(CONSUMER, ADMIN), issuer=NOT_THEIRS, other_issuer=NOT_THEIRS, consumer_nogrant=NOT_THEIRS
)
NOT_HANDLING = Denied(403, "matter_not_handler")
MATTER_CHANGERS = department(
    "catalog:write", owners=(CONSUMER, ADMIN), issuer=NOT_HANDLING, other_issuer=NOT_HANDLING,
    consumer_nogrant=NOT_HANDLING,
)  # fmt: skip
# Data for the consumer's matter: only the consumer may ask (the issuer may not request its own resource: a 422
# from the operation, so allowed); an admin asks as its own department, like any other.
REQUESTERS = department("catalog:write", other_issuer=NOT_HANDLER, consumer_nogrant=NOT_HANDLER, admin=NOT_HANDLER)
# An access request, a grant, a department objection: its consumer (raiser), its provider (handler: the issuer),
# and an admin see it.
PARTIES = (CONSUMER, ISSUER, ADMIN)
REQUEST_READERS = department("catalog:read", owners=PARTIES, hide=REQUEST_HIDDEN)
# The provider decides: the requesting consumer gets the same 404 as a stranger.
DECIDERS = department("catalog:write", owners=(ISSUER, ADMIN), hide=REQUEST_HIDDEN)
WITHDRAWERS = department(
    "catalog:write",
    owners=(CONSUMER, ADMIN),
    hide=REQUEST_HIDDEN,
    issuer=Denied(403, "access_request_withdraw_forbidden"),
)
GRANT_READERS = department("catalog:read", owners=PARTIES, hide=GRANT_HIDDEN)
GRANT_CHANGERS = department(
    "catalog:write", owners=(ISSUER, ADMIN), hide=GRANT_HIDDEN, consumer=Denied(403, "grant_change_forbidden")
)
OBJECTION_PARTIES = department(None, owners=PARTIES, hide=OBJECTION)
# Decisions are the handler's only: the raiser and an admin get the same 404 as a stranger.
HANDLER = department("catalog:write", owners=(ISSUER,), hide=OBJECTION)
# Open to harvesters without a token (the public catalogue); a token is never downgraded to the public audience.
DCAT = public(holder_a=ID_TOKEN_AS_ACCESS_TOKEN, holder_b=ID_TOKEN_AS_ACCESS_TOKEN, auditor=SCOPE_MISSING)
# The seed resource is closed (开放属性 closed): it and its provider exist for departments only.
CLOSED_AGENT = {**DCAT, ANONYMOUS: hidden("agent_not_found")}
CLOSED_DATASET = {**DCAT, ANONYMOUS: hidden("dataset_not_found")}
FETCHERS = department("exchange:fetch", owners=(CONSUMER,), consumer_nogrant=Denied(403, "grant_missing"))
COPY_OWNER = department("exchange:fetch", owners=(CONSUMER,), hide="copy_not_found")


def _reason(text: str) -> Body:
    return lambda _: {"reason": text}


def _empty(_: Ids) -> dict[str, Any]:
    return {}


EMPTY = _empty
L = "{licence}"  # the seed licence's identifier in a URL

# fmt: off
ROWS: tuple[Row, ...] = (
    # ------------------------------------------------------------------------------ operations, OAuth, dev IdP
    Row("GET", "/healthz", public()),
    Row("GET", "/readyz", public()),
    Row("GET", "/metrics", public()),
    Row("GET", "/.well-known/oauth-authorization-server", public()),
    Row("GET", "/.well-known/jwks.json", public()),
    Row("POST", "/oauth/token", TOKEN, token_request=True),
    Row("GET", "/v1/whoami", department(None)),
    Row("POST", "/dev/idp/token", public(),
        json=lambda i: {"holder_type": "001", "holder_code": i["holder_b_code"], "name": "临江智造科技有限公司"}),
    Row("GET", "/dev/idp/.well-known/openid-configuration", public()),
    Row("GET", "/dev/idp/jwks.json", public()),
    # ------------------------------------------------------------------------------ admin
    Row("POST", "/v1/admin/departments", ADMIN_ONLY,
        json=lambda i: {"code": i["new_department_code"], "name": "临江市测试局", "area_code": "330100"}),
    Row("GET", "/v1/admin/departments", ADMIN_ONLY),
    Row("POST", "/v1/admin/clients", ADMIN_ONLY,
        json=lambda i: {"department_code": i["other_issuer_code"], "scopes": "catalog:read", "jwks": i["spare_jwks"]}),
    Row("POST", "/v1/admin/clients/{client_id}/disable", ADMIN_ONLY, url="/v1/admin/clients/{spare_client}/disable"),
    # ------------------------------------------------------------------------------ audit log
    Row("GET", "/v1/audit/checkpoint", public()),
    Row("GET", "/v1/audit/verifier-key", public()),
    Row("GET", "/v1/audit/proof/inclusion", public(),
        params=lambda i: {"leaf_index": i["leaf_index"], "tree_size": i["tree_size"]}),
    Row("GET", "/v1/audit/proof/consistency", public(), params=lambda i: {"first": 1, "second": i["tree_size"]}),
    Row("POST", "/v1/audit/checkpoints", ADMIN_ONLY),
    Row("GET", "/v1/audit/entries/{leaf_index}", department("audit:read")),
    Row("GET", "/v1/audit/entries", department("audit:read"), params=lambda i: {"licence": i["licence"]}),
    # ------------------------------------------------------------------------------ PKI, TSA, seals, verify
    Row("GET", "/v1/pki/roots.pem", public()),
    Row("GET", "/v1/pki/ca/{ca}.cer", public(), url="/v1/pki/ca/issuing.cer"),
    Row("GET", "/v1/pki/tsa.cer", public()),
    Row("GET", "/v1/pki/crl/{ca}.crl", public(), url="/v1/pki/crl/root.crl"),
    Row("POST", "/v1/tsa", public(), content=b"0\x00", headers={"content-type": "application/timestamp-query"}),
    Row("POST", "/v1/seals", ADMIN_ONLY,
        json=lambda i: {"department_code": i["other_issuer_code"], "name": "测试专用章", "kind": "official"}),
    Row("GET", "/v1/seals", department(None), private=("seal", (ISSUER, ADMIN))),
    Row("GET", "/v1/seals/{seal_id}", SEAL_READERS, url="/v1/seals/{seal}", target="seal"),
    Row("GET", "/v1/seals/{seal_id}/image", SEAL_READERS, url="/v1/seals/{seal}/image", target="seal"),
    Row("GET", "/v1/seals/{seal_id}/certificate", SEAL_READERS, url="/v1/seals/{seal}/certificate", target="seal"),
    Row("POST", "/v1/seals/{seal_id}/suspend", ADMIN_ONLY, url="/v1/seals/{seal}/suspend"),
    Row("POST", "/v1/seals/{seal_id}/reinstate", ADMIN_ONLY, url="/v1/seals/{seal}/reinstate"),
    Row("POST", "/v1/seals/{seal_id}/revoke", ADMIN_ONLY, url="/v1/seals/{seal}/revoke",
        json=lambda _: {"reason": "unspecified"}),
    Row("POST", "/v1/seals/{seal_id}/rotate", ADMIN_ONLY, url="/v1/seals/{seal}/rotate"),
    Row("POST", "/v1/verify/file", public(), files=True),
    # ------------------------------------------------------------------------------ licences
    Row("GET", "/v1/licence-types", department(None)),
    Row("GET", "/v1/licence-types/{type_code}", department(None)),
    Row("POST", "/v1/licence-types", TYPE_DEFINERS, json=_licence_type),
    Row("POST", "/v1/licences", ISSUERS, json=lambda i: i["licence_request"],
        headers={"Idempotency-Key": "authz-matrix-issue"}),
    Row("POST", "/v1/licences/batches", department("licence:issue"), content=b'{"not": "a licence"}\n',
        headers={"content-type": "application/x-ndjson"}),
    Row("GET", "/v1/licences/batches/{batch_id}", BATCH_READERS, url="/v1/licences/batches/{batch}", target="batch"),
    Row("GET", "/v1/licences/batches/{batch_id}/errors", BATCH_READERS, url="/v1/licences/batches/{batch}/errors",
        target="batch"),
    Row("GET", "/v1/licences/{certificate_identifier}", LICENCE_READERS, url=f"/v1/licences/{L}", target="licence"),
    Row("GET", "/v1/licences/{certificate_identifier}/file", LICENCE_READERS, url=f"/v1/licences/{L}/file",
        target="licence"),
    Row("POST", "/v1/licences/{certificate_identifier}/suspend", LICENCE_CHANGERS, url=f"/v1/licences/{L}/suspend",
        json=_reason("停业整顿"), target="licence"),
    Row("POST", "/v1/licences/{certificate_identifier}/reinstate", LICENCE_CHANGERS,
        url=f"/v1/licences/{L}/reinstate", json=EMPTY, target="licence"),
    Row("POST", "/v1/licences/{certificate_identifier}/revoke", LICENCE_CHANGERS, url=f"/v1/licences/{L}/revoke",
        json=_reason("依法吊销"), target="licence"),
    Row("POST", "/v1/licences/{certificate_identifier}/renew", LICENCE_CHANGERS, url=f"/v1/licences/{L}/renew",
        json=EMPTY, target="licence"),
    Row("POST", "/v1/licences/{certificate_identifier}/amend", LICENCE_CHANGERS, url=f"/v1/licences/{L}/amend",
        json=lambda i: {"face": i["amended_face"], "reason": "更正登记事项"}, target="licence"),
    Row("GET", "/v1/status-lists/{list_id}", public(), url="/v1/status-lists/{status_list}"),
    Row("GET", "/v1/presentations/jwks.json", public()),
    Row("GET", "/v/{token}", public(), url="/v/{presentation}", headers={"accept": "application/json"}),
    # ------------------------------------------------------------------------------ holders
    Row("GET", "/v1/me", holder()),
    Row("GET", "/v1/me/access-log", holder(), private=("licence", (HOLDER_A,))),
    Row("GET", "/v1/me/timeline", holder(), private=("licence", (HOLDER_A,))),
    Row("GET", "/v1/me/licences", holder(), private=("licence", (HOLDER_A,))),
    Row("GET", "/v1/me/licences/{certificate_identifier}", holder(owners=ONLY_A, hide=LICENCE_HIDDEN),
        url=f"/v1/me/licences/{L}", target="licence"),
    Row("POST", "/v1/me/licences/{certificate_identifier}/presentations", holder(owners=ONLY_A, hide=LICENCE_HIDDEN),
        url=f"/v1/me/licences/{L}/presentations", json=EMPTY, target="licence"),
    Row("GET", "/v1/me/notifications", holder(), private=("notification", (HOLDER_A,))),
    Row("GET", "/v1/me/consents", holder(), private=("consent", (HOLDER_A,))),
    Row("POST", "/v1/me/consents", holder(),
        json=lambda i: {"department_code": i["consumer_code"], "matter_code": MATTER, "case_number": "LJ-2026-B"}),
    Row("DELETE", "/v1/me/consents/{consent_id}", holder(owners=ONLY_A, hide="consent_not_found"),
        url="/v1/me/consents/{consent}", target="consent"),
    Row("POST", "/v1/me/objections", holder(owners=ONLY_A, hide=LICENCE_HIDDEN),
        json=lambda i: _claim(i, "legal_representative"), target="licence"),
    Row("GET", "/v1/me/objections", holder(), private=("holder_objection", (HOLDER_A,))),
    Row("GET", "/v1/me/objections/{objection_id}", holder(owners=ONLY_A, hide=OBJECTION),
        url="/v1/me/objections/{holder_objection}", target="holder_objection"),
    Row("POST", "/v1/me/objections/{objection_id}/close", holder(owners=ONLY_A, hide=OBJECTION),
        url="/v1/me/objections/{holder_objection}/close", json=EMPTY, target="holder_objection"),
    # ------------------------------------------------------------------------------ webhooks
    Row("POST", "/v1/webhooks", department(None), json=lambda i: {"url": i["webhook_url"]}),
    Row("GET", "/v1/webhooks", department(None), private=("endpoint", (ISSUER,))),
    Row("DELETE", "/v1/webhooks/{endpoint_id}", ENDPOINT_OWNER, url="/v1/webhooks/{endpoint}", target="endpoint"),
    Row("GET", "/v1/webhooks/dead-letters", ADMIN_ONLY, private=("delivery", (ADMIN,))),
    Row("POST", "/v1/webhooks/deliveries/{delivery_id}/redeliver", ADMIN_ONLY,
        url="/v1/webhooks/deliveries/{delivery}/redeliver"),
    # ------------------------------------------------------------------------------ catalogue: resources
    Row("GET", "/v1/catalog/classifications", department(None)),
    Row("POST", "/v1/catalog/classifications", CLASSIFIERS,
        json=lambda i: {"code": i["new_classification"], "name": "测试细目"}),
    Row("POST", "/v1/catalog/resources", PUBLISHERS, json=_resource),
    Row("GET", "/v1/catalog/resources", department("catalog:read")),
    Row("GET", "/v1/catalog/resources/{code:path}/versions", department("catalog:read"),
        url="/v1/catalog/resources/{resource}/versions"),
    Row("GET", "/v1/catalog/resources/{code:path}/versions/{version}", department("catalog:read"),
        url="/v1/catalog/resources/{resource}/versions/1"),
    Row("POST", "/v1/catalog/resources/{code:path}/withdraw", PROVIDER,
        url="/v1/catalog/resources/{resource}/withdraw", json=_reason("停止共享"), target="resource"),
    Row("PATCH", "/v1/catalog/resources/{code:path}", PROVIDER, url="/v1/catalog/resources/{resource}",
        json=lambda _: {"summary": "更新后的摘要。"}, target="resource"),
    Row("GET", "/v1/catalog/resources/{code:path}", department("catalog:read"),
        url="/v1/catalog/resources/{resource}"),
    # ------------------------------------------------------------------------------ catalogue: matters
    Row("POST", "/v1/catalog/matters", MATTER_CREATORS,
        json=lambda i: _matter("11330100MB1234567X3000333009") | {"department_code": i["consumer_code"]}),
    Row("GET", "/v1/catalog/matters", department("catalog:read")),
    Row("GET", "/v1/catalog/matters/{code}", department("catalog:read"), url="/v1/catalog/matters/{matter}"),
    Row("PUT", "/v1/catalog/matters/{code}", MATTER_CHANGERS, url="/v1/catalog/matters/{matter}",
        json=lambda _: {key: value for key, value in _matter(MATTER).items() if key != "code"}),
    # ------------------------------------------------------------------------------ catalogue: access and grants
    Row("POST", "/v1/catalog/access-requests", REQUESTERS, json=_access_request),
    Row("GET", "/v1/catalog/access-requests", department("catalog:read"), private=("request", PARTIES)),
    Row("GET", "/v1/catalog/access-requests/{request_id}", REQUEST_READERS,
        url="/v1/catalog/access-requests/{request}", target="request"),
    Row("POST", "/v1/catalog/access-requests/{request_id}/approve", DECIDERS,
        url="/v1/catalog/access-requests/{request}/approve", json=EMPTY, target="request"),
    Row("POST", "/v1/catalog/access-requests/{request_id}/reject", DECIDERS,
        url="/v1/catalog/access-requests/{request}/reject", json=_reason("不符合共享条件"), target="request"),
    Row("POST", "/v1/catalog/access-requests/{request_id}/withdraw", WITHDRAWERS,
        url="/v1/catalog/access-requests/{request}/withdraw", json=EMPTY, target="request"),
    Row("GET", "/v1/catalog/grants", department("catalog:read"), private=("grant", PARTIES)),
    Row("GET", "/v1/catalog/grants/{grant_id}", GRANT_READERS, url="/v1/catalog/grants/{grant}", target="grant"),
    Row("POST", "/v1/catalog/grants/{grant_id}/suspend", GRANT_CHANGERS, url="/v1/catalog/grants/{grant}/suspend",
        json=_reason("核查中"), target="grant"),
    Row("POST", "/v1/catalog/grants/{grant_id}/reinstate", GRANT_CHANGERS,
        url="/v1/catalog/grants/{grant}/reinstate", json=EMPTY, target="grant"),
    Row("POST", "/v1/catalog/grants/{grant_id}/revoke", GRANT_CHANGERS, url="/v1/catalog/grants/{grant}/revoke",
        json=_reason("超范围使用"), target="grant"),
    Row("POST", "/v1/catalog/grants/{grant_id}/renew", GRANT_CHANGERS, url="/v1/catalog/grants/{grant}/renew",
        json=lambda _: {"valid_days": 30}, target="grant"),
    # ------------------------------------------------------------------------------ catalogue: objections
    Row("POST", "/v1/catalog/objections", department("exchange:fetch"),
        json=lambda i: _claim(i, "legal_representative")),
    Row("GET", "/v1/catalog/objections", department(None), private=("objection", PARTIES)),
    Row("GET", "/v1/catalog/objections/{objection_id}", OBJECTION_PARTIES, url="/v1/catalog/objections/{objection}",
        target="objection"),
    Row("POST", "/v1/catalog/objections/{objection_id}/accept", HANDLER,
        url="/v1/catalog/objections/{objection}/accept", json=EMPTY, target="objection"),
    Row("POST", "/v1/catalog/objections/{objection_id}/reject", HANDLER,
        url="/v1/catalog/objections/{objection}/reject", json=_reason("登记信息无误"), target="objection"),
    Row("POST", "/v1/catalog/objections/{objection_id}/flag", HANDLER,
        url="/v1/catalog/objections/{objection}/flag", json=EMPTY, target="objection"),
    Row("POST", "/v1/catalog/objections/{objection_id}/verify", HANDLER,
        url="/v1/catalog/objections/{objection}/verify", json=EMPTY, target="objection"),
    Row("POST", "/v1/catalog/objections/{objection_id}/correct", HANDLER,
        url="/v1/catalog/objections/{objection}/correct", json=_reason("已更正"), target="objection"),
    Row("POST", "/v1/catalog/objections/{objection_id}/uphold", HANDLER,
        url="/v1/catalog/objections/{objection}/uphold", json=_reason("维持原登记"), target="objection"),
    Row("POST", "/v1/catalog/objections/{objection_id}/close", OBJECTION_PARTIES,
        url="/v1/catalog/objections/{objection}/close", json=EMPTY, target="objection"),
    # ------------------------------------------------------------------------------ catalogue: DCAT-AP
    Row("GET", "/v1/catalog/dcat", DCAT),
    Row("GET", "/v1/catalog/dcat/themes", public()),
    Row("GET", "/v1/catalog/dcat/agents/{code}", CLOSED_AGENT, url="/v1/catalog/dcat/agents/{issuer_code}",
        target="issuer_code"),
    Row("GET", "/v1/catalog/dcat/datasets/{code:path}/schema", CLOSED_DATASET,
        url="/v1/catalog/dcat/datasets/{resource}/schema", target="resource"),
    Row("GET", "/v1/catalog/dcat/datasets/{code:path}", CLOSED_DATASET, url="/v1/catalog/dcat/datasets/{resource}",
        target="resource"),
    # ------------------------------------------------------------------------------ exchange
    Row("POST", "/v1/exchange/verify", department("exchange:verify"),
        json=lambda i: {"certificate_identifier": i["licence"]}),
    Row("POST", "/v1/exchange/fetch", FETCHERS, json=_fetch_body),
    # Any department with the scope may ask; only the granted one learns which licence satisfies a material.
    Row("POST", "/v1/exchange/materials-check", department("exchange:fetch"),
        json=lambda i: {"matter_code": MATTER, "holder": _holder_a(i)}, private=("licence", (CONSUMER,))),
    Row("GET", "/v1/exchange/copies/{copy_id}", COPY_OWNER, url="/v1/exchange/copies/{copy}", target="copy"),
)
# fmt: on

# ---------------------------------------------------------------------------------------------- seeds


@dataclass
class Caller:
    headers: dict[str, str]
    client_id: str | None = None
    key: ec.EllipticCurvePrivateKey | None = None
    kid: str | None = None
    id_token: str | None = None


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    connection: Connection
    callers: dict[str, Caller]
    ids: dict[str, Any]
    unknown: dict[str, str]  # ids of the same shape as the seeds' that name nothing


def _org8() -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return "".join(secrets.choice(alphabet) for _ in range(8))


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = secrets.token_hex(4)
    return jwk


def _assertion(caller: Caller) -> str:
    """A fresh RFC 7523 client assertion of a department's client."""
    assert caller.key is not None
    now = int(time.time())
    claims = {"iss": caller.client_id, "sub": caller.client_id, "aud": f"{PUBLIC_URL}/oauth/token", "iat": now,
              "exp": now + 60, "jti": secrets.token_urlsafe(12)}  # fmt: skip
    return jwt.encode(claims, caller.key, algorithm="ES256", headers={"kid": caller.kid})


def _department_caller(client: TestClient, runtime: Runtime, name: str, scopes: str) -> tuple[str, Caller]:
    """A new department with one private_key_jwt client (no Argon2id cost) and its access token."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = _public_jwk(key)
    code = make_uscc("1", "1", "330100", _org8())
    with runtime.session_scope() as session:
        identity.create_department(session, code=code, name=name, level="municipal", area_code="330100")
        api_client, _ = identity.create_client(session, department_code=code, scopes=scopes, jwks={"keys": [jwk]})
    caller = Caller({}, api_client.client_id, key, jwk["kid"])
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
              "client_assertion": _assertion(caller)},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    caller.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    return code, caller


def _holder_caller(client: TestClient, code: str, name: str) -> Caller:
    answer = client.post("/dev/idp/token", json={"holder_type": "001", "holder_code": code, "name": name})
    assert answer.status_code == 200, answer.text
    token = answer.json()["id_token"]
    return Caller({"Authorization": f"Bearer {token}"}, id_token=token)


def _post(client: TestClient, caller: Caller, path: str, body: Any, expect: int = 201, **kwargs: Any) -> Any:
    answer = client.post(path, json=body, headers={**caller.headers, **kwargs.pop("headers", {})}, **kwargs)
    assert answer.status_code == expect, f"seed {path}: {answer.text}"
    return answer.json()


NAMES = {
    ISSUER: "临江市市场监督管理局", OTHER_ISSUER: "临江市公安局", CONSUMER: "临江市人力资源和社会保障局",
    NOGRANT: "临江市民政局", AUDITOR: "临江市审计局", ADMIN: "临江市政务服务和数据管理局",
    HOLDER_A: "临江市青禾餐饮管理有限公司", HOLDER_B: "临江智造科技有限公司",
}  # fmt: skip


def _seed(client: TestClient, runtime: Runtime) -> tuple[dict[str, Caller], dict[str, Any]]:
    """The seed objects, made through the API with their owners' own tokens wherever the API can make them."""
    callers: dict[str, Caller] = {ANONYMOUS: Caller({})}
    ids: dict[str, Any] = {}
    for role in DEPARTMENTS:
        ids[f"{role}_code"], callers[role] = _department_caller(client, runtime, NAMES[role], SCOPES[role])
    for role in HOLDERS:
        ids[f"{role}_code"] = make_uscc("9", "1", "330100", _org8())
        callers[role] = _holder_caller(client, ids[f"{role}_code"], NAMES[role])
    ids |= _seed_rows(runtime, ids)
    ids |= _seed_through_api(client, callers, ids)
    ids |= _seed_outbox_and_inbox(runtime, ids)
    checkpoint = _post(client, callers[ADMIN], "/v1/audit/checkpoints", None, expect=200)
    ids |= {
        "tree_size": checkpoint["tree_size"], "matter": MATTER, "type_code": BUSINESS.type_code,
        "spare_jwks": {"keys": [_public_jwk(ec.generate_private_key(ec.SECP256R1()))]},
        "new_department_code": make_uscc("1", "1", "330100", _org8()), "licence_request": _licence_request(ids, 3),
        "amended_face": BUSINESS.sample_face(NAMES[HOLDER_A], ids["holder_a_code"], 2),
    }  # fmt: skip
    return callers, ids


def _licence_request(ids: Ids, serial: int) -> dict[str, Any]:
    return {
        "certificate_type_code": BUSINESS.type_code, "certificate_holder_type": "001",
        "certificate_holder_code": ids["holder_a_code"], "certificate_holder_name": NAMES[HOLDER_A],
        "face": BUSINESS.sample_face(NAMES[HOLDER_A], ids["holder_a_code"], serial),
    }  # fmt: skip


def _seed_rows(runtime: Runtime, ids: Ids) -> dict[str, Any]:
    """What only the CLI or the demo seeding makes: the demo licence types, seals, a spare client."""
    issuer, admin = ids["issuer_code"], ids["admin_code"]
    with runtime.session_scope() as session:
        ensure_demo_types(session, [issuer])
        seal = seal_lifecycle.create_seal(
            session, runtime.seal_context, name="电子证照专用章", kind="licence",
            owner=SealOwner(code=issuer, name=NAMES[ISSUER], area_code="330100"),
        )  # fmt: skip
        seal_lifecycle.create_seal(  # the platform seal that stamps purpose copies (加注件)
            session, runtime.seal_context, name="电子证照平台专用章", kind="platform",
            owner=SealOwner(code=admin, name=NAMES[ADMIN], area_code="330100"),
        )  # fmt: skip
        resources = dict(
            session.execute(
                select(Resource.licence_type_code, Resource.code).where(
                    Resource.licence_type_code.in_([BUSINESS.type_code, DOCTOR.type_code])
                )
            ).all()
        )
        spare, _ = identity.create_client(
            session, department_code=ids["other_issuer_code"], scopes="catalog:read",
            jwks={"keys": [_public_jwk(ec.generate_private_key(ec.SECP256R1()))]},
        )  # fmt: skip
        classification = session.scalar(
            select(Resource.classification_code).where(Resource.code == resources[BUSINESS.type_code])
        )
        parent = session.execute(
            select(Classification.code, Classification.level)
            .where(Classification.level.in_((1, 2, 3)))
            .order_by(Classification.code)
            .limit(1)
        ).one()
    return {
        "seal": seal.id, "spare_client": spare.client_id, "resource": resources[BUSINESS.type_code],
        "doctor_resource": resources[DOCTOR.type_code], "resource_classification": classification,
        # 项 = 类 + 2 digits, 目 = 项 + 3, 细目 = 目 + 1 to 6
        "new_classification": parent.code + {1: "99", 2: "999", 3: "9"}[parent.level],
    }  # fmt: skip


def _seed_through_api(client: TestClient, callers: dict[str, Caller], ids: Ids) -> dict[str, Any]:
    issuer, consumer, holder_a = callers[ISSUER], callers[CONSUMER], callers[HOLDER_A]
    licence = _post(client, issuer, "/v1/licences", _licence_request(ids, 1), headers={"Idempotency-Key": "seed"})
    identifier = licence["certificate_identifier"]
    batch = client.post(
        "/v1/licences/batches", content=b'{"not": "a licence"}\n',
        headers={**issuer.headers, "content-type": "application/x-ndjson"},
    )  # fmt: skip
    assert batch.status_code == 202, batch.text
    _post(client, consumer, "/v1/catalog/matters", _matter(MATTER))
    access = {"matter_codes": [MATTER], "purpose": "办理企业职工就业登记时核验材料", "legal_basis": LEGAL_BASIS}
    granted = _post(client, consumer, "/v1/catalog/access-requests",
                    {"resource_code": ids["resource"], "items": BUSINESS_ITEMS, **access})  # fmt: skip
    assert granted["status"] == "approved", granted  # unconditional items: approved at once
    pending = _post(client, consumer, "/v1/catalog/access-requests",
                    {"resource_code": ids["doctor_resource"], "items": DOCTOR_ITEMS, **access})  # fmt: skip
    assert pending["status"] == "pending", pending  # conditional items: the provider decides
    consent = _post(
        client, holder_a, "/v1/me/consents", {"department_code": ids["consumer_code"], "matter_code": MATTER}
    )
    fetched = _post(client, consumer, "/v1/exchange/fetch", _fetch_body(ids), expect=200)
    presentation = _post(client, holder_a, f"/v1/me/licences/{identifier}/presentations", {})
    claim = _claim({"licence": identifier}, "name")
    objection = _post(client, consumer, "/v1/catalog/objections", claim)
    holder_objection = _post(client, holder_a, "/v1/me/objections", claim)
    webhook_url = f"http://127.0.0.1:{free_port()}/hook"  # loopback, nothing listens: deliveries fail at once
    endpoint = _post(client, issuer, "/v1/webhooks", {"url": webhook_url})
    return {
        "licence": identifier, "status_list": licence["status_entry"]["status_list"].rsplit("/", 1)[-1],
        "leaf_index": licence["receipt"]["leaf_index"], "batch": batch.json()["batch_id"], "consent": consent["id"],
        "grant": granted["grant_id"], "request": pending["id"], "copy": fetched["file_url"].rsplit("/", 1)[-1],
        "presentation": presentation["token"], "objection": objection["id"],
        "holder_objection": holder_objection["id"], "endpoint": endpoint["id"], "webhook_url": webhook_url,
    }  # fmt: skip


def _seed_outbox_and_inbox(runtime: Runtime, ids: Ids) -> dict[str, Any]:
    """A dead webhook delivery (for the admin's redrive) and a notice in holder A's inbox."""
    marker = f"authz-matrix-{secrets.token_hex(6)}"
    with runtime.session_scope() as session:
        now = utcnow()
        event = WebhookEvent(
            event_id=marker, department_code=ids["issuer_code"], type="cn.gov.licence-hub.licence.revoked",
            subject=ids["licence"], body=b"{}", created_at=now,
        )  # fmt: skip
        session.add(event)
        session.flush()
        delivery = WebhookDelivery(
            id=secrets.token_hex(16), event_pk=event.pk, endpoint_id=ids["endpoint"], status="dead", attempts=8,
            next_attempt_at=None, last_attempt_at=now, last_status_code=None, last_error="connection refused",
            delivered_at=None, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(delivery)
        session.add(
            HolderNotification(
                holder_type="001", holder_code=ids["holder_a_code"], kind="licence.revoked", title=marker,
                body="授权矩阵测试通知", certificate_identifier=ids["licence"], dedupe_key=marker, created_at=now,
            )
        )  # fmt: skip
    return {"delivery": delivery.id, "notification": marker}


def _unknown_like(ids: Ids) -> dict[str, str]:
    """Ids of each hidden seed's shape that name nothing: a hiding 404 must look exactly like theirs."""

    def hex_like(value: str) -> str:
        head, tail = value[:-12], value[-12:]
        return head + "".join("0" if ch in "0123456789abcdef" else ch for ch in tail)

    # A well-formed GB/T 36904 identifier (DESIGN.md §3 test vector) that this hub never issued.
    return {
        "licence": "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F",
        **{key: hex_like(str(ids[key])) for key in ("batch", "seal", "consent", "grant", "request", "copy",
                                                     "objection", "holder_objection", "endpoint")},
        "resource": f"{str(ids['resource']).split('/', 1)[0]}/999999",
        "issuer_code": make_uscc("1", "1", "330100", _org8()),
    }  # fmt: skip


@pytest.fixture(scope="module")
def world(engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The app on one connection whose outer transaction holds the seeds and is rolled back at the end."""
    base = tmp_path_factory.mktemp("authz")
    settings = Settings(
        env="test", data_dir=base / "var", database_url=database_url, master_key=MASTER_KEY, public_url=PUBLIC_URL,
        log_json=False, inline_jobs=True,
    )  # fmt: skip
    connection = engine.connect()
    outer = connection.begin()
    runtime = Runtime(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(connection, join_transaction_mode="create_savepoint"),
        storage=LocalBlobStore(base / "blobs"),
    )
    try:
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            callers, ids = _seed(client, runtime)
            unknown = {key: str(value) for key, value in _unknown_like(ids).items()}
            assert set(unknown) >= {row.target for row in ROWS if row.target}
            yield World(client, runtime, connection, callers, ids, unknown)
    finally:
        outer.rollback()
        connection.close()


# ---------------------------------------------------------------------------------------------- cells


def _request(world: World, row: Row, role: str, ids: Ids) -> Response:
    """One call of ``row`` as ``role``, inside a savepoint that is rolled back afterwards."""
    caller = world.callers[role]
    headers = {**row.headers}
    kwargs: dict[str, Any] = {}
    if row.token_request:
        data = {"grant_type": "client_credentials", "scope": "admin"}
        if caller.key is not None:
            data |= {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": _assertion(caller)}
        elif caller.id_token is not None:  # a holder presents its ID token as if it were a client assertion
            data |= {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": caller.id_token}
        kwargs["data"] = data
    else:
        headers |= caller.headers
    if row.json is not None:
        kwargs["json"] = row.json(ids)
    if row.params is not None:
        kwargs["params"] = row.params(ids)
    if row.content is not None:
        kwargs["content"] = row.content
    if row.files:
        kwargs["files"] = {"file": ("licence.pdf", PDF_HEAD, "application/pdf")}
    url = (row.url or row.route).format(**ids)
    savepoint = world.connection.begin_nested()
    try:
        response: Response = world.client.request(row.method, url, headers=headers, **kwargs)
    finally:
        if savepoint.is_active:
            savepoint.rollback()
        _forget_rolled_back_state(world.runtime)
    return response


# Per-process caches that mirror rows: after a rolled-back cell they may describe changes that never happened
# (a revoked seal's signer stays disabled in the key store's cache, a suspended grant in the grant cache).
_PROCESS_CACHES = ("seal_keystore", "prepared_seals", "seal_context", "licence_context", "signed_status_lists")


def _forget_rolled_back_state(runtime: Runtime) -> None:
    runtime.grant_cache.invalidate()
    for name in _PROCESS_CACHES:
        vars(runtime).pop(name, None)  # functools.cached_property: built again on next use


def _code(response: Response) -> str | None:
    if response.status_code < 400:
        return None
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    code = response.json().get("code")
    assert isinstance(code, str), response.text
    return code


def check_cell(world: World, row: Row, role: str) -> None:
    expected = row.expect[role]
    response = _request(world, row, role, world.ids)
    where = f"{row.method} {row.route} as {role}: {response.status_code} {response.text[:300]}"
    assert response.status_code < 500, where
    code = _code(response)
    if response.status_code == 401:
        assert "www-authenticate" in response.headers, where
    if isinstance(expected, Denied):
        assert (response.status_code, code) == (expected.status, expected.code), where
        if expected.status == 404:
            assert row.target is not None, f"{row.method} {row.route}: a hiding 404 needs a target seed"
            missing = _request(world, row, role, {**world.ids, row.target: world.unknown[row.target]})
            assert (missing.status_code, _code(missing)) == (404, expected.code), (
                f"{where}\nan unknown id answers differently: {missing.status_code} {missing.text[:300]}"
            )
        return
    denied = response.status_code in {401, 403, 404} or code in AUTH_CODES
    assert not denied, f"expected allowed; {where}"
    if row.private is not None and response.status_code < 300:
        seed, owners = row.private
        shown = str(world.ids[seed]) in response.text
        assert shown == (role in owners), f"{seed} {'missing from' if role in owners else 'leaks into'} {where}"


CELLS = [pytest.param(row, role, id=f"{row.method} {row.route} {role}") for row in ROWS for role in ROLES]


@pytest.mark.parametrize(("row", "role"), CELLS)
def test_cell(world: World, row: Row, role: str) -> None:
    check_cell(world, row, role)


# ---------------------------------------------------------------------------------------------- completeness


def _schema_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the app documents (``include_in_schema``), HEAD aside."""
    contexts: Any = routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    found: set[tuple[str, str]] = set()
    for route in contexts:
        if not getattr(route, "include_in_schema", False):
            continue  # HTML pages, /docs, /openapi.json and the /static mount
        found |= {(method, str(route.path)) for method in (route.methods or ()) if method != "HEAD"}
    return found


def test_every_route_has_a_row(world: World) -> None:
    """A new (or renamed) operation fails here until the matrix says who may call it."""
    app = world.client.app
    assert isinstance(app, FastAPI)
    table = [row.key for row in ROWS]
    assert len(table) == len(set(table)), "a route has two rows"
    routes = _schema_operations(app)
    assert routes - set(table) == set(), "routes without a row in the authorisation matrix"
    assert set(table) - routes == set(), "rows for routes the app does not have"
    documented = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    as_documented = {(method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route)) for method, route in table}
    assert documented == as_documented, "the OpenAPI document and the matrix disagree"
    assert {role for row in ROWS for role in row.expect} == set(ROLES)
    assert all(set(row.expect) == set(ROLES) for row in ROWS), "every row names every role"
