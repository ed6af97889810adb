"""Errors of the seals domain, each with its HTTP status and stable code."""

from __future__ import annotations

from hub.errors import Conflict, DomainError, InvalidInput, NotFound, ServiceUnavailable


class SealKeyNotFound(NotFound):
    code = "seal_key_not_found"
    title = "No such seal key in the configured key store"


class SealKeyDisabled(Conflict):
    code = "seal_key_disabled"
    title = "The seal key is disabled and signs no more"


class SealKeyStoreUnavailable(ServiceUnavailable):
    """The PKCS#11 module, token or login failed; the detail says which and what to check."""

    code = "seal_keystore_unavailable"
    title = "The seal key store is unavailable or refused the hub's credentials"


class SealKeyCorrupted(DomainError):
    """A stored key does not match its record (wrong curve, other public key): refuse, never guess."""

    status = 500
    code = "seal_key_corrupted"
    title = "A stored seal key does not match its record"


class TimestampImprintInvalid(DomainError):
    """RFC 3161 §2.1 items 6–7: a SHA-2 imprint whose length matches its algorithm."""

    status = 422
    code = "tsa_imprint_invalid"
    title = "The time-stamp imprint must be a SHA-256, SHA-384 or SHA-512 digest of the right length"


class TimestampQueryMediaTypeUnsupported(DomainError):
    status = 415
    code = "tsa_media_type_unsupported"
    title = "Send the TimeStampReq as application/timestamp-query (RFC 3161 §3.4)"


class TimestampQueryTooLarge(DomainError):
    status = 413
    code = "tsa_query_too_large"
    title = "A TimeStampReq is at most 16 KiB"


class TimestampUnitUnavailable(ServiceUnavailable):
    """The hub TSA has no usable certificate (never created, expired or revoked); the detail says which."""

    code = "tsa_unavailable"
    title = "The hub's time-stamping unit is not available; run `licence-hub init`"


class SealImageInvalid(InvalidInput):
    code = "seal_image_invalid"
    title = "Not an acceptable seal image: PNG or JPEG, at most 2 MiB, 128–2048 px per side"


class SealTextInvalid(InvalidInput):
    code = "seal_text_invalid"
    title = "The text for a generated seal image cannot be drawn; the detail says what is allowed"


class SealFontMissing(DomainError):
    """The host has no Simplified Chinese font: a deployment fault, never drawn around with tofu."""

    status = 500
    code = "seal_font_missing"
    title = "No Simplified Chinese font is installed for drawing seal images"
