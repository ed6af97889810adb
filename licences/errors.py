"""Errors of the licences domain, each with a stable code."""

from __future__ import annotations

from hub.errors import DomainError, InvalidInput


class FaceSchemaInvalid(InvalidInput):
    """A licence type's face schema breaks JSON Schema 2020-12 or the hub's face rules (``errors`` says where)."""

    code = "face_schema_invalid"
    title = "The licence type's face schema is not acceptable"


class LicenceFaceInvalid(InvalidInput):
    """A licence face does not match its type's schema; ``errors`` names fields and rules, never values."""

    code = "licence_face_invalid"
    title = "The licence face does not match its licence type"


class LicenceFaceHolderMismatch(LicenceFaceInvalid):
    """The face is well formed but an x-holder field does not repeat the holder's name or code."""

    code = "licence_face_holder_mismatch"
    title = "The licence face names a different holder"


class PresentationInvalid(DomainError):
    """Base of every refusal of a presentation token: the scan page shows any of them as "not genuine"."""

    status = 401
    code = "presentation_invalid"
    title = "The code is not a genuine licence presentation"


class PresentationMalformed(PresentationInvalid):
    """Not a presentation token at all: not a JWS, wrong ``typ`` or algorithm, claims missing or mistyped."""

    status = 400
    code = "presentation_malformed"
    title = "This is not a licence presentation code"


class PresentationKeyUnknown(PresentationInvalid):
    code = "presentation_key_unknown"
    title = "The code is signed by a key this hub never published"


class PresentationSignatureInvalid(PresentationInvalid):
    code = "presentation_signature_invalid"
    title = "The code's signature does not match its content"


class PresentationExpired(PresentationInvalid):
    code = "presentation_expired"
    title = "The code has expired; ask the holder to refresh it"


class PresentationTooLarge(DomainError):
    """The holder chose more field text than a QR code holds; fewer or shorter fields will fit."""

    status = 422
    code = "presentation_too_large"
    title = "The chosen fields do not fit in a QR code"


class StatusListInvalid(DomainError):
    """A status list credential or its encodedList failed a check (W3C Bitstring Status List v1.0 §3.2)."""

    status = 400
    code = "status_list_invalid"
    title = "The status list credential cannot be used"
