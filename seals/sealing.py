"""Seal a document with a department's seal: per-seal material prepared once per process, then the fast path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy.orm import Session

from seals import image as seal_image
from seals import service as pki
from seals.errors import SealKeyDisabled
from seals.lifecycle import ACTIVE, SealContext, SealStateConflict, certificate_of
from seals.models import Seal
from seals.pades import PreparedSeal, seal_pdf

Timestamp = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Placement:
    """Where the seal widget goes: page index and rectangle in points (lower-left origin)."""

    rect: tuple[float, float, float, float]
    page_index: int = 0


class PreparedSeals:
    """Per-process cache of :class:`PreparedSeal` by seal id and key: built on first use, then shared."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], PreparedSeal] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, context: SealContext, seal: Seal) -> PreparedSeal:
        key = (seal.id, seal.key_id)
        prepared = self._cache.get(key)
        if prepared is not None:
            return prepared
        with self._lock:
            prepared = self._cache.get(key)
            if prepared is None:
                prepared = self._cache[key] = _prepare(session, context, seal)
        return prepared

    def evict(self, seal_id: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == seal_id]:
                del self._cache[key]


def _prepare(session: Session, context: SealContext, seal: Seal) -> PreparedSeal:
    signer = context.keystore.signer(session, seal.key_id)
    certificate = x509.load_der_x509_certificate(certificate_of(session, seal).certificate)
    issuing = x509.load_der_x509_certificate(pki.get_ca_or_raise(session, pki.ISSUING).certificate)
    bitmap = seal_image.bitmap_for_pdf(context.storage.get(seal.image_sha256))
    return PreparedSeal.build(
        sign_digest=signer.sign_digest,
        certificate=certificate,
        chain=[issuing],
        bitmap=bitmap,
        reason=f"{seal.name}（{seal.code}）",
    )


def seal_document(
    session: Session,
    context: SealContext,
    cache: PreparedSeals,
    seal: Seal,
    pdf: bytes,
    *,
    placement: Placement,
    timestamp: Timestamp | None = None,
) -> bytes:
    """``pdf`` with ``seal``'s PAdES signature (B-T when ``timestamp`` is given, else B-B).

    The seal's state is the row the caller read in this unit of work: a suspended, revoked or
    rotated seal never signs, whatever the cache holds.
    """
    if seal.status != ACTIVE:
        cache.evict(seal.id)
        raise SealStateConflict(f"seal {seal.id} is {seal.status} and cannot seal documents")
    try:
        prepared = cache.get(session, context, seal)
        return seal_pdf(pdf, prepared, rect=placement.rect, page_index=placement.page_index, timestamp=timestamp)
    except SealKeyDisabled:
        # The row read in this unit of work says active, so the disable that stopped the cached signer was
        # rolled back (a revocation that failed after disable_key): rebuild from the key store, once. A key
        # that is really gone (committed, or destroyed on a token) fails again here, as it must.
        cache.evict(seal.id)
        prepared = cache.get(session, context, seal)
        return seal_pdf(pdf, prepared, rect=placement.rect, page_index=placement.page_index, timestamp=timestamp)
