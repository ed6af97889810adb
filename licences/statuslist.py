"""W3C Bitstring Status List v1.0 (Recommendation, 15 May 2025) as a JWT-secured credential (VC-JOSE-COSE).

One list holds ``LIST_SIZE`` entries of ``STATUS_SIZE`` bits with statusPurpose ``message``: 0 valid,
1 suspended, 2 revoked, 3 superseded. Expiry is deliberately not in the list: an expired licence reads
0 here and a verifier compares the licence's own validity end (carried in the presentation token) with
its clock, so the list never has to be re-signed at midnight for licences that simply ran out.
Pure functions: no database, no HTTP; ``licences.status_lists`` stores, signs and caches.
"""

from __future__ import annotations

import base64
import gzip
import re
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jwt

from hub.clock import utcnow
from hub.identity.tokens import algorithms_for_jwk, decode_jwt, public_key, select_jwk, unverified_header
from hub.keys.service import SigningKey
from licences.errors import StatusListInvalid

__all__ = [
    "ALGORITHMS",
    "LIST_SIZE",
    "MAX_DECODED_BYTES",
    "STATUS_NAMES",
    "STATUS_SIZE",
    "STATUS_VALUES",
    "TOKEN_TYPE",
    "StatusListInvalid",
    "credential_status",
    "decode_list",
    "encode_list",
    "position",
    "read_entry",
    "sign_status_list",
    "status_at",
    "status_list_credential",
    "status_messages",
    "status_value",
    "verify_status_list",
]

# §6.1: 131,072 entries is the minimum list length for herd privacy; §3.2 refuses shorter lists.
LIST_SIZE = 131_072
STATUS_SIZE = 2  # bits per entry: four licence states (§2.1 statusSize)
STATUS_VALUES = {"valid": 0, "suspended": 1, "revoked": 2, "superseded": 3}
STATUS_NAMES = {value: name for name, value in STATUS_VALUES.items()}
# DESIGN.md §3 statuses that are not in the list: the verifier derives them from the licence itself.
READ_FROM_VALIDITY = frozenset({"expired"})
STATUS_PURPOSE = "message"  # §2.1: more than the two states of "revocation" / "suspension"
MAX_DECODED_BYTES = 16 * 1024 * 1024  # zip-bomb guard: 512 times the largest list this hub publishes
TOKEN_TYPE = "vc+jwt"  # noqa: S105 - VC-JOSE-COSE §3.1.1 media type, not a secret
ALGORITHMS = ["ES256"]  # fixed by the verifier, never taken from the token (RFC 8725 §3.1)
LEEWAY_SECONDS = 5
CONTEXT = "https://www.w3.org/ns/credentials/v2"  # VC Data Model 2.0 §4.3
CREDENTIAL_TYPES = ["VerifiableCredential", "BitstringStatusListCredential"]
ENTRY_TYPE = "BitstringStatusListEntry"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")  # RFC 4648 §5 alphabet; the spec forbids padding
_DECIMAL = re.compile(r"0|[1-9][0-9]*")  # §2.1 statusListIndex: base-10 integer as a string


def status_value(status: str) -> int:
    """The list value of a DESIGN.md §3 licence status; ``expired`` reads 0 (see the module docstring).

    Any other status is refused rather than silently published as valid.
    """
    if status in READ_FROM_VALIDITY:
        return 0
    if status not in STATUS_VALUES:
        raise ValueError(f"status {status!r} has no status list value")
    return STATUS_VALUES[status]


def status_messages() -> list[dict[str, str]]:
    """§2.1 statusMessage: one object per value, ``status`` as 0x-prefixed hexadecimal."""
    return [{"status": f"0x{value:x}", "message": name} for value, name in sorted(STATUS_NAMES.items())]


def position(pk: int) -> tuple[int, int]:
    """(list id, index in that list) of a licence's integer primary key; fixed for the licence's life."""
    if not _is_int(pk) or pk < 0:
        raise ValueError("primary keys are non-negative integers")
    return pk // LIST_SIZE, pk % LIST_SIZE


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_status_size(status_size: int) -> None:
    if not _is_int(status_size) or not 1 <= status_size <= 8:
        raise ValueError("statusSize must be an integer from 1 to 8")


def encode_list(entries: Mapping[int, int], size: int = LIST_SIZE, status_size: int = STATUS_SIZE) -> str:
    """§2.2 encodedList: the bitstring, GZIP (RFC 1952), multibase base64url without padding (prefix ``u``).

    §2.2 and §7.1: index 0 is the left-most bit, i.e. the most significant bit of the first byte,
    and each value is written most significant bit first. Entries absent from ``entries`` are 0.
    """
    _check_status_size(status_size)
    if size < 1 or size * status_size % 8:
        raise ValueError("the list must fill a whole number of bytes")
    bits = bytearray(size * status_size // 8)
    top = (1 << status_size) - 1
    for index, value in entries.items():
        if not (_is_int(index) and _is_int(value) and 0 <= index < size and 0 <= value <= top):
            msg = f"entry {index!r}={value!r} is outside the list: indexes 0 to {size - 1}, values 0 to {top}"
            raise ValueError(msg)
        offset = index * status_size
        for bit in range(status_size):
            if value >> (status_size - 1 - bit) & 1:
                at = offset + bit
                bits[at // 8] |= 0x80 >> (at % 8)
    # mtime=0: the same list always compresses to the same bytes, so signed copies and ETags are stable.
    compressed = gzip.compress(bytes(bits), compresslevel=9, mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


def decode_list(
    encoded: str,
    status_size: int = STATUS_SIZE,
    *,
    min_entries: int = LIST_SIZE,
    max_bytes: int = MAX_DECODED_BYTES,
) -> bytes:
    """§3.4 Bitstring Expansion of a list that may come from anywhere, with the checks §3.2 asks for.

    Refuses anything but multibase base64url, bad or truncated GZIP, trailing bytes, output beyond
    ``max_bytes`` (inflated incrementally, so a zip bomb never reaches memory) and lists shorter than
    ``min_entries`` (§3.2 STATUS_LIST_LENGTH_ERROR).
    """
    _check_status_size(status_size)
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise StatusListInvalid("encodedList must be multibase base64url (prefix 'u')")
    body = encoded[1:]
    if not _BASE64URL.fullmatch(body) or len(body) % 4 == 1:
        raise StatusListInvalid("encodedList must be base64url without padding (RFC 4648 §5)")
    compressed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16+: expect a GZIP header and trailer (CRC-32 checked)
    try:
        bits = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as exc:
        raise StatusListInvalid("encodedList is not GZIP-compressed") from exc
    if len(bits) > max_bytes:
        raise StatusListInvalid(f"encodedList decompresses to more than {max_bytes} bytes")
    if not inflater.eof:
        raise StatusListInvalid("encodedList is truncated")
    if inflater.unused_data:
        raise StatusListInvalid("encodedList has bytes after its GZIP member")
    if len(bits) * 8 // status_size < min_entries:
        raise StatusListInvalid(f"the list has fewer than {min_entries} entries (herd privacy, §6.1)")
    return bits


def status_at(bits: bytes, index: int, status_size: int = STATUS_SIZE) -> int:
    """The value at ``index`` (§3.2: the bits from index × statusSize, most significant first)."""
    _check_status_size(status_size)
    if not _is_int(index) or not 0 <= index < len(bits) * 8 // status_size:
        raise StatusListInvalid(f"index {index} is outside the list (§3.2 RANGE_ERROR)")
    value = 0
    for bit in range(status_size):
        at = index * status_size + bit
        value = value << 1 | (bits[at // 8] >> (7 - at % 8) & 1)
    return value


def _rfc3339(moment: datetime) -> str:
    """VC Data Model 2.0 §4.9 dateTimeStamp in UTC with ``Z``; whole seconds, as in the JWT claims."""
    if moment.tzinfo is None:
        raise ValueError("status list times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_list_credential(
    *, list_url: str, issuer: str, entries: Mapping[int, int], valid_from: datetime, valid_until: datetime
) -> dict[str, Any]:
    """The unsigned BitstringStatusListCredential (§2.2), ready for ``sign_status_list``.

    VC-JOSE-COSE §3.1: the JWT payload is the credential itself. ``iss``, ``iat`` and ``exp`` repeat
    ``issuer``, ``validFrom`` and ``validUntil`` so plain JWT libraries check the lifetime too.
    statusSize and statusMessage appear here as §2.2 asks for purpose ``message`` and again on each
    entry (§2.1): the Recommendation names both places (w3c/vc-bitstring-status-list#175).
    """
    if valid_until <= valid_from:
        raise ValueError("validUntil must be after validFrom")
    return {
        "@context": [CONTEXT],
        "id": list_url,
        "type": list(CREDENTIAL_TYPES),
        "issuer": issuer,
        "validFrom": _rfc3339(valid_from),
        "validUntil": _rfc3339(valid_until),
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": STATUS_PURPOSE,
            "statusSize": STATUS_SIZE,
            "statusMessage": status_messages(),
            "encodedList": encode_list(entries),
        },
        "iss": issuer,
        "iat": int(valid_from.timestamp()),
        "exp": int(valid_until.timestamp()),
    }


def sign_status_list(payload: dict[str, Any], key: SigningKey) -> str:
    """Compact JWS, ES256, ``typ`` vc+jwt (VC-JOSE-COSE §3.1.1), ``kid`` naming the JWKS entry."""
    if key.algorithm not in ALGORITHMS:
        raise ValueError(f"status lists are signed with ES256, not {key.algorithm}")
    return jwt.encode(payload, key.private_key, algorithm="ES256", headers={"kid": key.kid, "typ": TOKEN_TYPE})


def _parse_time(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise StatusListInvalid(f"{name} must be an RFC 3339 date-time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise StatusListInvalid(f"{name} must be an RFC 3339 date-time") from exc
    if moment.tzinfo is None:
        raise StatusListInvalid(f"{name} must carry a time zone")
    return moment


def verify_status_list(
    token: str, jwks: Mapping[str, Any], *, now: datetime | None = None, leeway_seconds: int = LEEWAY_SECONDS
) -> dict[str, Any]:
    """The credential of a status list JWT whose signature, type and validity period check out.

    §3.2 STATUS_VERIFICATION_ERROR cases all raise ``StatusListInvalid``: wrong ``typ``, an algorithm
    other than ES256 (so ``none`` and HS256 keyed with the public key never verify), an unknown kid, a
    bad signature, a credential of another type, or ``now`` outside validFrom..validUntil.
    """
    try:
        header = unverified_header(token)
    except jwt.PyJWTError as exc:
        raise StatusListInvalid("the status list is not a compact JWS") from exc
    if header.get("alg") not in ALGORITHMS or header.get("typ") != TOKEN_TYPE:
        raise StatusListInvalid("status lists are ES256 vc+jwt tokens")
    kid = header.get("kid")
    jwk = select_jwk(dict(jwks), kid) if isinstance(kid, str) else None
    if jwk is None or algorithms_for_jwk(jwk) != ALGORITHMS:
        raise StatusListInvalid(f"the status list is signed by an unknown key {kid!r}")
    try:
        payload: dict[str, Any] = decode_jwt(
            token,
            public_key(jwk),
            algorithms=ALGORITHMS,
            # The lifetime is checked below against ``now``, which tests and offline audits choose.
            options={"require": ["iss", "iat", "exp"], "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise StatusListInvalid(f"the status list failed verification: {type(exc).__name__}") from exc
    _check_credential(payload)
    stamp = (now or utcnow()).timestamp()
    valid_from = _parse_time(payload.get("validFrom", ""), "validFrom").timestamp()
    valid_until = _parse_time(payload.get("validUntil", ""), "validUntil").timestamp()
    if not isinstance(payload["exp"], int) or not isinstance(payload["iat"], int):
        raise StatusListInvalid("iat and exp must be integers")
    if stamp > min(valid_until, payload["exp"]) + leeway_seconds:
        raise StatusListInvalid("the status list has expired; fetch a fresh one")
    if stamp + leeway_seconds < max(valid_from, payload["iat"]):
        raise StatusListInvalid("the status list is not valid yet")
    return payload


def _check_credential(payload: Mapping[str, Any]) -> None:
    types = payload.get("type")
    if not isinstance(types, list) or "BitstringStatusListCredential" not in types:
        raise StatusListInvalid("not a BitstringStatusListCredential (§2.2)")
    issuer = payload.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if issuer_id != payload["iss"]:
        raise StatusListInvalid("iss and issuer disagree")  # VC-JOSE-COSE §3.1.1
    subject = payload.get("credentialSubject")
    if (
        not isinstance(subject, dict)
        or subject.get("type") != "BitstringStatusList"
        or not isinstance(subject.get("encodedList"), str)
    ):
        raise StatusListInvalid("credentialSubject must be a BitstringStatusList with an encodedList")


def read_entry(credential: Mapping[str, Any], entry: Mapping[str, Any]) -> int:
    """§3.2 Validate, after ``verify_status_list``: the value of ``entry`` in the verified ``credential``.

    Checks that the entry points at this list and shares its purpose, then reads ``statusSize`` bits
    (1 when the entry names none, §2.1) at ``statusListIndex``.
    """
    if entry.get("type") != ENTRY_TYPE:
        raise StatusListInvalid(f"credentialStatus must be a {ENTRY_TYPE}")
    if credential.get("id") is not None and entry.get("statusListCredential") != credential.get("id"):
        raise StatusListInvalid("the entry points at another status list")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, Mapping):
        raise StatusListInvalid("credentialSubject must be a BitstringStatusList")
    purposes = subject.get("statusPurpose")
    purposes = purposes if isinstance(purposes, list) else [purposes]
    if entry.get("statusPurpose") not in purposes:
        raise StatusListInvalid("the entry's statusPurpose is not this list's (§3.2)")
    index = entry.get("statusListIndex")
    if not isinstance(index, str) or not _DECIMAL.fullmatch(index):
        raise StatusListInvalid("statusListIndex must be a base-10 integer string (§2.1)")
    size = entry.get("statusSize", 1)
    try:
        bits = decode_list(subject.get("encodedList", ""), size)
    except ValueError as exc:  # statusSize outside 1..8
        raise StatusListInvalid(str(exc)) from exc
    return status_at(bits, int(index), size)


def credential_status(list_url: str, index: int) -> dict[str, Any]:
    """The §2.1 BitstringStatusListEntry a presentation token embeds.

    ``statusSize`` is given, as a verifier must otherwise read one bit (§2.1). Two members are left out
    on purpose because QR bytes are scarce (together about 300 of a token's ~1,700 characters): the
    optional ``id``, and ``statusMessage``, which §2.1 asks for once statusSize exceeds 1. The entry
    travels in a presentation token, not in a verifiable credential, and the list credential it points
    at carries the same statusMessage (``status_list_credential``), signed by the hub.
    """
    if not _is_int(index) or not 0 <= index < LIST_SIZE:
        raise ValueError(f"index {index!r} is outside a list of {LIST_SIZE}")
    return {
        "type": ENTRY_TYPE,
        "statusPurpose": STATUS_PURPOSE,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
        "statusSize": STATUS_SIZE,
    }
