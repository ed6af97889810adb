"""PKCS#11 seal key store: keys generated on a token (SoftHSM2 in tests, an HSM in production) and never leaving it."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import Session as TokenSession
from pkcs11 import exceptions as p11
from pkcs11.types import SignMixin
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
from sqlalchemy.orm import Session

from hub.errors import DomainError
from seals.errors import SealKeyCorrupted, SealKeyDisabled, SealKeyNotFound, SealKeyStoreUnavailable
from seals.keystore import (
    PKCS11,
    CachedSigner,
    SealSigner,
    SignerCache,
    add_key_row,
    check_label,
    disable_row,
    enabled_row,
    key_id_for,
    p256_public_key,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# PKCS#11 v2.40 Current Mechanisms §2.3 (EC keys): CKA_EC_PARAMS is DER ECParameters, here namedCurve P-256.
_P256_PARAMS = encode_named_curve_parameters("secp256r1")
_SIGNATURE_BYTES = 64  # CKM_ECDSA on P-256: r ‖ s, 32 bytes each (Current Mechanisms §2.3, ECDSA)
# The token lost our session or login (restart, removal): log in again once, then give up.
_SESSION_LOST = (p11.SessionClosed, p11.SessionHandleInvalid, p11.UserNotLoggedIn, p11.DeviceRemoved)
_STALE_HANDLE = (p11.ObjectHandleInvalid, p11.KeyHandleInvalid)

_registry_lock = threading.Lock()
_libraries: dict[str, _Library] = {}
_tokens: dict[tuple[str, str], _Token] = {}


def _unavailable(exc: Exception, what: str) -> SealKeyStoreUnavailable:
    """A clear message naming the PKCS#11 return value; never the PIN, which no message carries."""
    reasons: dict[type[Exception], str] = {
        p11.PinIncorrect: "refused the PIN (CKR_PIN_INCORRECT): check HUB_PKCS11_PIN",
        p11.PinLocked: "has locked the user PIN (CKR_PIN_LOCKED): the security officer must reset it",
        p11.PinExpired: "says the PIN has expired (CKR_PIN_EXPIRED)",
        p11.UserPinNotInitialized: "has no user PIN yet (CKR_USER_PIN_NOT_INITIALIZED)",
        p11.UserAlreadyLoggedIn: "is already logged in by other code in this process",
        p11.NoSuchToken: "is not present (no token with this label)",
        p11.TokenNotPresent: "is not present (CKR_TOKEN_NOT_PRESENT)",
    }
    reason = next((text for kind, text in reasons.items() if isinstance(exc, kind)), None)
    return SealKeyStoreUnavailable(f"{what} {reason or f'failed ({type(exc).__name__})'}")


class _Library:
    """A PKCS#11 module, loaded and C_Initialize'd once per process, with the lock every call takes.

    python-pkcs11 calls C_Initialize(NULL_PTR), which tells the module the application never calls
    it from two threads at once (PKCS#11 v2.40 §5.4, and SoftHSM2 then disables its own mutexes), so
    we keep that promise: one call at a time per process. Throughput grows with processes.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            self.lib = pkcs11.lib(path)
        except p11.PKCS11Error as exc:
            raise SealKeyStoreUnavailable(f"cannot load the PKCS#11 module {path} (HUB_PKCS11_MODULE)") from exc
        self.pid = os.getpid()

    def for_this_process(self) -> None:
        """Called under ``lock``: a forked child is another application and must C_Initialize and log in itself.

        PKCS#11 v2.40 base, "Applications and processes"; python-pkcs11 finalises first, as the child
        inherited the parent's initialised state.
        """
        if self.pid != os.getpid():
            self.lib.reinitialize()
            self.pid = os.getpid()


class _Token:
    """The process's one logged-in read/write session with one token, shared by its key stores.

    Login state belongs to the application, not the session (PKCS#11 v2.40 §5.6), so a second login
    in the same process fails with CKR_USER_ALREADY_LOGGED_IN; one session per token avoids that.
    Private key handles are cached per session: looking a key up costs more than signing with it.
    """

    def __init__(self, library: _Library, label: str, pin: str) -> None:
        self.library = library
        self.label = label
        self._pin = pin  # kept to log in again after a token restart or a fork; never in repr or logs
        self._session: TokenSession | None = None
        self._pid = 0
        self._handles: dict[bytes, SignMixin] = {}
        self.run("log in", lambda _session: None)  # fail now on a wrong PIN or a missing token

    def __repr__(self) -> str:
        return f"<token {self.label!r} in {self.library.path}>"

    def pin_matches(self, pin: str) -> bool:
        return hmac.compare_digest(pin.encode(), self._pin.encode())

    def _open(self) -> TokenSession:
        self.library.for_this_process()
        if self._session is None or self._pid != os.getpid():
            self._handles.clear()
            token = self.library.lib.get_token(token_label=self.label)
            self._session = token.open(rw=True, user_pin=self._pin)
            self._pid = os.getpid()
        return self._session

    def run(self, action: str, operation: Callable[[TokenSession], T]) -> T:
        with self.library.lock:
            try:
                try:
                    return operation(self._open())
                except _SESSION_LOST:
                    self._session = None
                    return operation(self._open())
            except DomainError:
                raise
            except p11.PKCS11Error as exc:
                raise _unavailable(exc, f"the PKCS#11 token {self.label!r} ({action})") from exc

    def _private_key(self, session: TokenSession, ckid: bytes, missing: type[DomainError]) -> SignMixin:
        key = self._handles.get(ckid)
        if key is None:
            try:
                key = cast(
                    "SignMixin", session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, id=ckid)
                )
            except p11.NoSuchKey as exc:
                raise missing(f"seal key {ckid.hex()} is not on the token {self.label!r}") from exc
            except p11.MultipleObjectsReturned as exc:
                raise SealKeyCorrupted(f"the token {self.label!r} holds several keys with id {ckid.hex()}") from exc
            self._handles[ckid] = key
        return key

    def find(self, ckid: bytes) -> None:
        self.run("find a key", lambda session: self._private_key(session, ckid, SealKeyNotFound))

    def sign(self, ckid: bytes, digest: bytes) -> bytes:
        def operation(session: TokenSession) -> bytes:
            key = self._private_key(session, ckid, SealKeyDisabled)
            try:
                signature: bytes = key.sign(digest, mechanism=Mechanism.ECDSA)
            except _STALE_HANDLE:
                # Destroyed by another process's disable_key, or renumbered: look it up once more.
                self._handles.pop(ckid, None)
                signature = self._private_key(session, ckid, SealKeyDisabled).sign(digest, mechanism=Mechanism.ECDSA)
            return signature

        return self.run("sign", operation)

    def generate(self, label: str) -> ec.EllipticCurvePublicKey:
        """A P-256 key pair on the token; CKA_ID becomes the key id derived from its public half."""

        def operation(session: TokenSession) -> ec.EllipticCurvePublicKey:
            placeholder = secrets.token_bytes(16)  # the key id is known only once the pair exists
            public, private = session.generate_keypair(
                KeyType.EC,
                id=placeholder,
                label=label,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                mechanism=Mechanism.EC_KEY_PAIR_GEN,
                public_template={Attribute.EC_PARAMS: _P256_PARAMS, Attribute.TOKEN: True, Attribute.PRIVATE: False},
                # PKCS#11 v2.40 §4.9 private key attributes: a token object, readable only after login,
                # never revealed in plaintext (SENSITIVE) nor wrapped out (EXTRACTABLE false), signing only.
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.DECRYPT: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                },
            )
            try:
                loaded = serialization.load_der_public_key(encode_ec_public_key(public))
                point = p256_public_key(loaded)
                ckid = bytes.fromhex(key_id_for(point))
                # CKA_ID is modifiable after creation (PKCS#11 v2.40 §4.7, common key attributes).
                private[Attribute.ID] = ckid
                public[Attribute.ID] = ckid
            except BaseException:
                private.destroy()
                public.destroy()
                raise
            self._handles[ckid] = cast("SignMixin", private)
            return point

        return self.run("generate a key pair", operation)

    def destroy(self, ckid: bytes) -> int:
        """Destroy the private and public objects with this CKA_ID; how many there were."""

        def operation(session: TokenSession) -> int:
            self._handles.pop(ckid, None)
            found = list(session.get_objects({Attribute.ID: ckid}))
            for obj in found:
                obj.destroy()
            return len(found)

        return self.run("destroy a key", operation)


def _token(module: Path, label: str, pin: str) -> _Token:
    path = str(module)
    with _registry_lock:
        token = _tokens.get((path, label))
        if token is not None:
            if not token.pin_matches(pin):
                raise SealKeyStoreUnavailable(
                    f"the PKCS#11 token {label!r} is open in this process with another PIN: check HUB_PKCS11_PIN"
                )
            return token
        library = _libraries.get(path)
        if library is None:
            library = _libraries[path] = _Library(path)
        token = _tokens[(path, label)] = _Token(library, label, pin)
        return token


class Pkcs11Signer(CachedSigner):
    __slots__ = ("_ckid", "_token")

    def __init__(self, key_id: str, public_key: ec.EllipticCurvePublicKey, token: _Token) -> None:
        super().__init__(key_id, public_key)
        self._ckid = bytes.fromhex(key_id)
        self._token = token

    def sign_digest(self, digest: bytes) -> bytes:
        self._check(digest)
        # CKM_ECDSA signs the digest as given (Current Mechanisms §2.3, ECDSA) and returns r ‖ s;
        # CMS and PDF want the DER ECDSA-Sig-Value of RFC 3279 §2.2.3.
        raw = self._token.sign(self._ckid, digest)
        if len(raw) != _SIGNATURE_BYTES:
            raise SealKeyCorrupted(f"the token returned a {len(raw)}-byte signature for P-256 key {self.key_id}")
        half = _SIGNATURE_BYTES // 2
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


class Pkcs11KeyStore:
    """Seal keys on a PKCS#11 token; ``seal_keys`` keeps their public halves and labels, no private blob."""

    backend = PKCS11

    def __init__(self, module_path: Path, token_label: str, pin: str) -> None:
        self._token = _token(module_path, token_label, pin)
        self._cache: SignerCache[Pkcs11Signer] = SignerCache()

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore(module={self._token.library.path!r}, token_label={self._token.label!r})"

    def create_key(self, session: Session, *, label: str) -> SealSigner:
        label = check_label(label)
        public = self._token.generate(label)
        key_id = key_id_for(public)
        add_key_row(session, key_id=key_id, backend=PKCS11, label=label, public_key=public)
        try:
            session.flush()
        except BaseException:
            self._token.destroy(bytes.fromhex(key_id))  # no row, no key: nothing orphaned on the token
            raise
        log.info("seal key %s created (%s, token %s)", key_id, PKCS11, self._token.label)
        return self._cache.put(Pkcs11Signer(key_id, public, self._token))

    def signer(self, session: Session, key_id: str) -> SealSigner:
        row = enabled_row(session, key_id, PKCS11)
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        public = p256_public_key(serialization.load_der_public_key(row.public_key))
        if key_id_for(public) != key_id:
            raise SealKeyCorrupted(f"seal key {key_id} does not match its recorded public key")
        self._token.find(bytes.fromhex(key_id))  # once per process: a key missing from the token fails here
        return self._cache.put(Pkcs11Signer(key_id, public, self._token))

    def disable_key(self, session: Session, key_id: str) -> None:
        disable_row(session, key_id, PKCS11)
        self._cache.evict(key_id)
        # After the row is flushed, so a database failure leaves the key usable rather than half-revoked.
        self._token.destroy(bytes.fromhex(key_id))
