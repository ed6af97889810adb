"""Custody of department seal keys: one signer interface over a software key store and a PKCS#11 token."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Generic, NoReturn, Protocol, TypeVar

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.errors import InvalidInput
from hub.keys.masterkey import MasterKeyRing
from seals.errors import SealKeyCorrupted, SealKeyDisabled, SealKeyNotFound, SealKeyStoreUnavailable
from seals.models import SealKey

log = logging.getLogger(__name__)

SOFTWARE = "software"
PKCS11 = "pkcs11"
BACKENDS = (SOFTWARE, PKCS11)
SOFTHSM2_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")  # Debian's softhsm2 package
DIGEST_BYTES = 32  # SHA-256
MAX_LABEL = 128  # seal_keys.label


class SealSigner(Protocol):
    """The only way the PAdES sealer and the TSA reach a seal key: sign a SHA-256 digest, ECDSA P-256."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign_digest(self, digest: bytes) -> bytes:
        """DER ECDSA-Sig-Value (RFC 3279 §2.2.3, X9.62) over a 32-byte SHA-256 digest."""
        ...


class SealKeyStore(Protocol):
    @property
    def backend(self) -> str: ...

    def create_key(self, session: Session, *, label: str) -> SealSigner:
        """A new P-256 key, recorded in ``seal_keys``; the caller's unit of work commits it."""
        ...

    def signer(self, session: Session, key_id: str) -> SealSigner:
        """The process's cached signer for an enabled key; ``SealKeyNotFound`` / ``SealKeyDisabled``."""
        ...

    def disable_key(self, session: Session, key_id: str) -> None:
        """A revoked seal signs no more: mark the row, drop the cached signer, destroy the private key."""
        ...


def public_key_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 5280 §4.1.2.7 SubjectPublicKeyInfo, DER (RFC 5480 namedCurve parameters)."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id_for(public_key: ec.EllipticCurvePublicKey) -> str:
    """Stable id anyone holding the certificate can recompute: SHA-256 of the SPKI, first 128 bits in hex."""
    return hashlib.sha256(public_key_der(public_key)).hexdigest()[:32]


def p256_public_key(key: PublicKeyTypes) -> ec.EllipticCurvePublicKey:
    """Seal keys are ECDSA P-256 (DESIGN.md §5); anything else in a record is corruption."""
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SealKeyCorrupted("a stored seal key is not an ECDSA P-256 key")
    return key


def check_label(label: str) -> str:
    label = label.strip()
    if not label or len(label) > MAX_LABEL:
        raise InvalidInput(f"a seal key label is 1–{MAX_LABEL} characters")
    return label


class CachedSigner:
    """Shared by both back ends: the key id, the public key, and the switch ``disable_key`` turns off.

    The switch makes a signer a caller already holds refuse at once in this process; other processes
    learn from the ``seal_keys`` row at their next ``signer()`` call (and, on a token, from the key
    being gone). Signers hold key material or a token handle, so they refuse to be pickled: a signer
    passed to a Celery task by mistake fails instead of copying a key into the broker.
    """

    __slots__ = ("_disabled", "_key_id", "_public_key")

    def __init__(self, key_id: str, public_key: ec.EllipticCurvePublicKey) -> None:
        self._key_id = key_id
        self._public_key = public_key
        self._disabled = False

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public_key

    def revoke(self) -> None:
        self._disabled = True

    def _check(self, digest: bytes) -> None:
        if self._disabled:
            raise SealKeyDisabled(f"seal key {self._key_id} is disabled; a revoked seal signs no more")
        if len(digest) != DIGEST_BYTES:
            msg = f"sign_digest takes a {DIGEST_BYTES}-byte SHA-256 digest, got {len(digest)} bytes"
            raise ValueError(msg)

    def __repr__(self) -> str:
        state = " disabled" if self._disabled else ""
        return f"<{type(self).__name__} key_id={self._key_id}{state}>"

    def __reduce__(self) -> NoReturn:
        msg = "seal signers hold keys; pass the key id instead"
        raise TypeError(msg)


S = TypeVar("S", bound=CachedSigner)


class SignerCache(Generic[S]):
    """Signers by key id, one per key per process, shared by every thread."""

    def __init__(self) -> None:
        self._signers: dict[str, S] = {}
        self._lock = threading.Lock()

    def get(self, key_id: str) -> S | None:
        return self._signers.get(key_id)  # a single dict read is atomic; writers take the lock

    def put(self, signer: S) -> S:
        """The cached signer for its key id: the first one stored wins if two threads raced."""
        with self._lock:
            return self._signers.setdefault(signer.key_id, signer)

    def evict(self, key_id: str) -> None:
        with self._lock:
            signer = self._signers.pop(key_id, None)
        if signer is not None:
            signer.revoke()


def add_key_row(
    session: Session,
    *,
    key_id: str,
    backend: str,
    label: str,
    public_key: ec.EllipticCurvePublicKey,
    master_kid: str | None = None,
    encrypted_private: bytes | None = None,
) -> None:
    """Record a new key (not flushed): every store keeps the public half beside its own reference."""
    session.add(
        SealKey(
            key_id=key_id, backend=backend, label=label, public_key=public_key_der(public_key), master_kid=master_kid,
            encrypted_private=encrypted_private, created_at=utcnow(), disabled_at=None,
        )
    )  # fmt: skip


def enabled_row(session: Session, key_id: str, backend: str) -> SealKey:
    """The key's row if this back end holds it and it is enabled (a primary-key read, usually cached)."""
    row = session.get(SealKey, key_id)
    if row is None or row.backend != backend:
        raise SealKeyNotFound(f"the {backend} key store holds no seal key {key_id!r}")
    if row.disabled_at is not None:
        raise SealKeyDisabled(f"seal key {key_id} was disabled at {row.disabled_at.isoformat()}")
    return row


def disable_row(session: Session, key_id: str, backend: str) -> SealKey:
    """Lock the row and mark it disabled (idempotent: the first time stays recorded)."""
    row = session.get(SealKey, key_id, with_for_update=True, populate_existing=True)
    if row is None or row.backend != backend:
        raise SealKeyNotFound(f"the {backend} key store holds no seal key {key_id!r}")
    if row.disabled_at is None:
        row.disabled_at = utcnow()
    # Like the token's destroyed object: a disabled software key is erased, so no flag flip revives it.
    row.encrypted_private = None
    row.master_kid = None
    session.flush()
    log.info("seal key %s disabled (%s)", key_id, backend)
    return row


# ----------------------------------------------------------------------------- software


def _aad(backend: str, key_id: str) -> bytes:
    # Binds the blob to its row: moved to another key id or relabelled as another back end, it fails
    # GCM authentication (NIST SP 800-38D §5.2.1.1 additional authenticated data).
    return f"licence-hub/seal-key/{backend}/{key_id}".encode()


class SoftwareSigner(CachedSigner):
    __slots__ = ("_private_key",)

    def __init__(self, key_id: str, private_key: ec.EllipticCurvePrivateKey) -> None:
        super().__init__(key_id, private_key.public_key())
        self._private_key = private_key

    def sign_digest(self, digest: bytes) -> bytes:
        self._check(digest)
        # Prehashed: the caller already hashed (CMS signed attributes, RFC 5652 §5.4); OpenSSL returns
        # the DER ECDSA-Sig-Value of RFC 3279 §2.2.3 and draws k from its CSPRNG.
        return self._private_key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


class SoftwareKeyStore:
    """Private keys as PKCS#8 DER, AES-256-GCM-encrypted under the master key, decrypted once per process."""

    backend = SOFTWARE

    def __init__(self, ring: MasterKeyRing) -> None:
        self._ring = ring
        self._cache: SignerCache[SoftwareSigner] = SignerCache()
        self._decrypt_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SoftwareKeyStore(master_key_id={self._ring.current_id!r})"

    def create_key(self, session: Session, *, label: str) -> SealSigner:
        label = check_label(label)
        private_key = ec.generate_private_key(ec.SECP256R1())
        public = private_key.public_key()
        key_id = key_id_for(public)
        pkcs8 = private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        master_kid, blob = self._ring.encrypt(pkcs8, _aad(SOFTWARE, key_id))
        add_key_row(session, key_id=key_id, backend=SOFTWARE, label=label, public_key=public, master_kid=master_kid,
                    encrypted_private=blob)  # fmt: skip
        session.flush()
        log.info("seal key %s created (%s)", key_id, SOFTWARE)
        return self._cache.put(SoftwareSigner(key_id, private_key))

    def signer(self, session: Session, key_id: str) -> SealSigner:
        row = enabled_row(session, key_id, SOFTWARE)
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        with self._decrypt_lock:  # one decryption per key, however many threads ask at once
            cached = self._cache.get(key_id)
            if cached is not None:
                return cached
            return self._cache.put(SoftwareSigner(key_id, _decrypt(self._ring, row)))

    def disable_key(self, session: Session, key_id: str) -> None:
        disable_row(session, key_id, SOFTWARE)
        self._cache.evict(key_id)


def _decrypt(ring: MasterKeyRing, row: SealKey) -> ec.EllipticCurvePrivateKey:
    if row.master_kid is None or row.encrypted_private is None:
        raise SealKeyCorrupted(f"software seal key {row.key_id} has no encrypted private key")
    der = ring.decrypt(row.master_kid, row.encrypted_private, _aad(SOFTWARE, row.key_id))
    loaded: PrivateKeyTypes = serialization.load_der_private_key(der, password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise SealKeyCorrupted(f"software seal key {row.key_id} is not an EC key")
    public = p256_public_key(loaded.public_key())
    # The public column is outside the AAD: check it, so a swapped certificate key cannot go unnoticed.
    if public_key_der(public) != row.public_key or key_id_for(public) != row.key_id:
        raise SealKeyCorrupted(f"software seal key {row.key_id} does not match its recorded public key")
    return loaded


def rewrap_software_keys(session: Session, ring: MasterKeyRing) -> int:
    """Re-encrypt every software seal key not under ``ring.current_id`` (master key rotation).

    The ring must still hold the old master keys; once this has run (and committed) they can go.
    Rows are locked, so a concurrent rewrap or disable waits rather than overwriting.
    """
    rows = session.scalars(
        select(SealKey)
        .where(
            SealKey.backend == SOFTWARE,
            SealKey.encrypted_private.is_not(None),
            SealKey.master_kid != ring.current_id,
        )
        .with_for_update()
    ).all()
    for row in rows:
        if row.master_kid is None or row.encrypted_private is None:  # pragma: no cover - excluded above
            continue
        aad = _aad(SOFTWARE, row.key_id)
        plaintext = ring.decrypt(row.master_kid, row.encrypted_private, aad)
        row.master_kid, row.encrypted_private = ring.encrypt(plaintext, aad)
    session.flush()
    if rows:
        log.info("%d software seal keys rewrapped under master key %s", len(rows), ring.current_id)
    return len(rows)


# ----------------------------------------------------------------------------- factory


def open_keystore(
    kind: str, ring: MasterKeyRing, module: Path | None, token_label: str, pin: str | None
) -> SealKeyStore:
    """The configured key store (``HUB_SEAL_KEYSTORE``); a PKCS#11 one logs in to its token now."""
    if kind == SOFTWARE:
        return SoftwareKeyStore(ring)
    if kind == PKCS11:
        if not pin:
            raise SealKeyStoreUnavailable("the pkcs11 seal key store needs the token's user PIN (HUB_PKCS11_PIN)")
        from seals.pkcs11 import Pkcs11KeyStore  # noqa: PLC0415 - loads python-pkcs11 only when configured

        return Pkcs11KeyStore(module or SOFTHSM2_MODULE, token_label, pin)
    raise InvalidInput(f"unknown seal key store {kind!r}; use one of {', '.join(BACKENDS)}")
