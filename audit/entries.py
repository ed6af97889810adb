"""Audit entries as values: the DESIGN.md §6 fields, RFC 8785 canonical bytes, holder_ref, receipts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ACTOR_TYPES = frozenset({"department", "holder", "public", "system", "admin"})
ENTRY_FIELDS = frozenset(
    {"time", "actor_type", "actor", "action", "outcome", "error_code", "holder_ref", "client_id",
     "certificate_identifier", "resource_code", "matter_code", "case_number", "officer_id", "fields",
     "request_id", "hidden_until"}
)  # fmt: skip
OUTCOMES = frozenset({"ok", "denied", "failed"})


class ReceiptInvalid(ValueError):
    """A receipt whose signature does not verify under the hub's audit key."""


def holder_ref(secret: bytes, holder_type: str, holder_code: str) -> str:
    """HMAC-SHA256 of the holder's type and code: exported logs carry no ID numbers (DESIGN.md §6)."""
    return hmac.new(secret, f"{holder_type}:{holder_code}".encode(), hashlib.sha256).hexdigest()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AuditEvent:
    """What happened, before it gets a place in the log. Identifiers and digests only, never documents."""

    action: str  # domain.subject.verb, e.g. exchange.licence.fetched
    outcome: str  # ok | denied | failed
    actor_type: str
    actor: str  # department USCC, holder_ref, "public" or "system"
    request_id: str
    time: datetime
    error_code: str | None = None
    holder_ref: str | None = None
    client_id: str | None = None
    certificate_identifier: str | None = None
    resource_code: str | None = None
    matter_code: str | None = None
    case_number: str | None = None
    officer_id: str | None = None
    fields: tuple[str, ...] | None = None
    hidden_until: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            msg = f"outcome must be one of {sorted(OUTCOMES)}"
            raise ValueError(msg)
        if self.actor_type not in ACTOR_TYPES:
            msg = f"actor_type must be one of {sorted(ACTOR_TYPES)}"
            raise ValueError(msg)
        if self.action.count(".") < 2:  # STYLE.md: domain.subject.verb
            msg = "action names are domain.subject.verb"
            raise ValueError(msg)
        if self.time.tzinfo is None or (self.hidden_until is not None and self.hidden_until.tzinfo is None):
            msg = "entry times are timezone-aware (hub.clock.utcnow())"
            raise ValueError(msg)
        if clash := sorted(self.extra.keys() & ENTRY_FIELDS):
            # The signed body and the query columns must never disagree about a named field.
            msg = f"extra fields may not replace entry fields: {', '.join(clash)}"
            raise ValueError(msg)

    @property
    def department_code(self) -> str | None:
        return self.actor if self.actor_type == "department" else None

    def to_entry(self) -> dict[str, Any]:
        """The DESIGN.md §6 entry: required members always, optional ones only when set."""
        entry: dict[str, Any] = {
            "time": rfc3339(self.time),
            "actor_type": self.actor_type,
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome,
            "holder_ref": self.holder_ref,
            "request_id": self.request_id,
        }
        optional: dict[str, Any] = {
            "error_code": self.error_code,
            "client_id": self.client_id,
            "certificate_identifier": self.certificate_identifier,
            "resource_code": self.resource_code,
            "matter_code": self.matter_code,
            "case_number": self.case_number,
            "officer_id": self.officer_id,
            "fields": sorted(self.fields) if self.fields is not None else None,
            "hidden_until": rfc3339(self.hidden_until) if self.hidden_until else None,
        }
        entry.update({k: v for k, v in optional.items() if v is not None})
        entry.update(self.extra)
        return entry


_SAFE_INTEGER = 2**53  # RFC 8785 §3.2.2.3: numbers are IEEE 754 doubles


def _json_subset(value: object) -> bool:
    """True for values whose RFC 8785 form is exactly what ``json.dumps`` writes (see ``canonical``)."""
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return -_SAFE_INTEGER < value < _SAFE_INTEGER
    if isinstance(value, list):
        return all(_json_subset(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _json_subset(v) for k, v in value.items())
    return False


def canonical(entry: dict[str, Any]) -> bytes:
    r"""RFC 8785 (JCS) bytes: the exact bytes that are hashed, stored and exported.

    Written partly by hand because the rfc8785 package, which stays the reference and the fallback,
    is pure Python and was half of the audit append's CPU time. For strings, safe integers, booleans,
    null, arrays and objects with ASCII keys, JCS equals ``json.dumps`` with sorted keys, no spaces and
    no ASCII escaping: the same short escapes and lowercase \u00xx for control characters (RFC 8785
    §3.2.2.2), the same integer digits, and ASCII keys sort alike by UTF-16 unit and code point
    (§3.2.3). Anything else (floats, big integers, non-ASCII keys, lone surrogates) takes the
    package. A property test checks the two agree.
    """
    if _json_subset(entry):
        try:
            return json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the reference implementation decide
    return bytes(rfc8785.dumps(entry))


def entry_leaf_hash(body: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x00 ‖ entry bytes)."""
    return hashlib.sha256(b"\x00" + body).digest()


@dataclass(frozen=True)
class Receipt:
    """A signed promise that the entry is in the log (like Rekor's signed entry timestamp)."""

    leaf_index: int
    leaf_hash: bytes
    integrated_time: int
    signature: bytes

    @staticmethod
    def signed_bytes(origin: str, leaf_index: int, leaf_hash: bytes, integrated_time: int) -> bytes:
        return canonical(
            {
                "origin": origin,
                "leaf_index": leaf_index,
                "leaf_hash": base64.b64encode(leaf_hash).decode(),
                "integrated_time": integrated_time,
            }
        )

    @classmethod
    def sign(
        cls, key: Ed25519PrivateKey, origin: str, leaf_index: int, leaf_hash: bytes, integrated_time: int
    ) -> Receipt:
        message = cls.signed_bytes(origin, leaf_index, leaf_hash, integrated_time)
        return cls(leaf_index, leaf_hash, integrated_time, key.sign(message))

    def verify(self, key: Ed25519PublicKey, origin: str) -> None:
        try:
            key.verify(self.signature, self.signed_bytes(origin, self.leaf_index, self.leaf_hash, self.integrated_time))
        except InvalidSignature as exc:
            raise ReceiptInvalid("the receipt is not signed by this log's key") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "leaf_hash": base64.b64encode(self.leaf_hash).decode(),
            "integrated_time": self.integrated_time,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Receipt:
        return cls(
            int(data["leaf_index"]),
            base64.b64decode(data["leaf_hash"]),
            int(data["integrated_time"]),
            base64.b64decode(data["signature"]),
        )
