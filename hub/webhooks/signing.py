"""Standard Webhooks signatures (https://www.standardwebhooks.com): secrets, signing, verification."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from hub.webhooks.errors import WebhookSignatureInvalid

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks secret prefix, not a secret
SECRET_BYTES = 32  # the spec asks for 24–64 bytes; 32 matches the HMAC-SHA256 block security
DEFAULT_TOLERANCE_SECONDS = 300  # the spec's suggested 5-minute replay window


def new_secret() -> tuple[str, bytes]:
    """A fresh endpoint secret: the text shown once to the department, and its raw key bytes."""
    key = secrets.token_bytes(SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode(), key


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_…`` secret (the prefix is optional, as in the reference libraries)."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookSignatureInvalid("the webhook secret is not base64 after its whsec_ prefix") from exc


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """``{id}.{timestamp}.{body}``: the id and timestamp are signed too, so neither can be replayed apart."""
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256>``."""
    digest = hmac.new(key, signed_content(msg_id, timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers_for(key: bytes, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (timestamp = when it is sent)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sign(key, msg_id, ts, body)}


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> None:
    """Check a delivery as a receiver should; raises ``WebhookSignatureInvalid``, never returns False.

    The timestamp must lie within ``tolerance`` seconds of ``now`` either way (replay window), and one
    of the space-separated ``v1,`` signatures must match in constant time. Other versions are ignored,
    as the spec asks, so a future scheme can be sent beside v1.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise WebhookSignatureInvalid("webhook-id, webhook-timestamp and webhook-signature are all required")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise WebhookSignatureInvalid("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookSignatureInvalid(f"webhook-timestamp is more than {tolerance} s from now")
    expected = sign(secret_key(secret), msg_id, timestamp, body).encode()
    for candidate in signatures.split(" "):
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise WebhookSignatureInvalid("no webhook-signature matches the body under this secret")
