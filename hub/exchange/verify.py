"""Exchange verify: is this licence genuine and valid now? Status and validity only, never face data.

A department may name the licence by its identifier, by a presentation token a holder showed it, or by the
SHA-256 of a file it was handed (the issuer-sealed PDF). Whichever it uses, the answer is the same shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import InvalidInput
from licences.holders import PublishedKeys, live_status, scan
from licences.lifecycle import LicenceNotFound
from licences.models import Licence

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class VerifyTargetInvalid(InvalidInput):
    code = "verify_target_invalid"
    title = "Name exactly one of certificate_identifier, presentation or sha256"


class PresentationRefused(InvalidInput):
    """The presentation token did not verify; ``code`` is the specific presentation error."""

    code = "presentation_invalid"
    title = "The presentation token is not valid"

    def __init__(self, code: str, detail: str | None) -> None:
        super().__init__(detail)
        self.code = code  # type: ignore[misc]  # the scan's own stable code (expired, bad signature, ...)


@dataclass(frozen=True)
class Verified:
    licence: Licence
    status: str
    checked_at: datetime
    via: str  # certificate_identifier | presentation | sha256


def verify(
    session: Session,
    *,
    certificate_identifier: str | None,
    presentation: str | None,
    sha256: str | None,
    keys_source: PublishedKeys,
    issuer: str,
    now: datetime,
) -> Verified:
    """Find the licence the caller names and its live status, or raise why it cannot be verified."""
    named = [name for name, v in (("certificate_identifier", certificate_identifier), ("presentation", presentation),
                                  ("sha256", sha256)) if v]  # fmt: skip
    if len(named) != 1:
        raise VerifyTargetInvalid
    if presentation:
        result = scan(session, presentation, keys_source=keys_source, issuer=issuer)
        if not result.token_valid or result.licence is None:
            raise PresentationRefused(result.error_code or "presentation_invalid", result.reason)
        return Verified(result.licence, result.status or live_status(result.licence), now, "presentation")
    if sha256:
        digest = sha256.lower()
        if not SHA256_HEX.match(digest):
            raise VerifyTargetInvalid("sha256 must be 64 hexadecimal characters")
        licence = session.scalar(select(Licence).where(Licence.file_sha256 == digest))
        if licence is None:
            raise LicenceNotFound("no licence file has this SHA-256")
        return Verified(licence, live_status(licence), now, "sha256")
    licence = session.scalar(select(Licence).where(Licence.identifier == certificate_identifier))
    if licence is None:
        raise LicenceNotFound(f"no licence {certificate_identifier}")
    return Verified(licence, live_status(licence), now, "certificate_identifier")
