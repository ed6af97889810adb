"""The scopes of DESIGN.md §4 and what each allows."""

from __future__ import annotations

SCOPES: dict[str, str] = {
    "catalog:read": "Read the data resource catalogue (政务数据资源目录)",
    "catalog:write": "Publish resources, matters, grants; handle access requests and objections",
    "licence:issue": "Issue and manage e-licences (电子证照) of the caller's department",
    "licence:read": "Read licences the caller's department issued",
    "exchange:fetch": "Check materials and fetch licences for a matter (免证办)",
    "exchange:verify": "Verify a licence's status",
    "audit:read": "Read the audit log and its proofs",
    "admin": "Manage departments and API clients",
}


def parse_scopes(text: str | None) -> frozenset[str]:
    """RFC 6749 §3.3: space-delimited, case-sensitive."""
    return frozenset((text or "").split())


def unknown_scopes(scopes: frozenset[str]) -> list[str]:
    return sorted(scopes - SCOPES.keys())
