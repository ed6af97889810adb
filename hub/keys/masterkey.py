"""Master key ring: AES-256-GCM envelope encryption of private keys at rest, with key ids for rotation."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import DomainError

_KEY_BYTES = 32
_NONCE_BYTES = 12  # NIST SP 800-38D §8.2: 96-bit random nonces


class MasterKeyUnavailable(DomainError):
    status = 500
    code = "master_key_unavailable"
    title = "The master key is missing or does not decrypt the stored keys"


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"licence-hub master key id\x00" + key).hexdigest()[:16]


@dataclass(frozen=True)
class MasterKeyRing:
    """The current master key first, older ones after it so stored keys stay readable."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys or any(len(k) != _KEY_BYTES for k in self.keys):
            msg = "a master key is 32 random bytes, base64-encoded"
            raise MasterKeyUnavailable(msg)

    @classmethod
    def parse(cls, text: str) -> MasterKeyRing:
        """Comma- or newline-separated base64 keys, newest first."""
        parts = [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
        try:
            return cls(tuple(base64.b64decode(p, validate=True) for p in parts))
        except ValueError as exc:
            msg = "the master key is not valid base64"
            raise MasterKeyUnavailable(msg) from exc

    @property
    def current_id(self) -> str:
        return _key_id(self.keys[0])

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        """Returns (master key id, nonce ‖ ciphertext ‖ tag). ``aad`` binds the blob to its record."""
        nonce = os.urandom(_NONCE_BYTES)
        return self.current_id, nonce + AESGCM(self.keys[0]).encrypt(nonce, plaintext, aad)

    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        for key in self.keys:
            if _key_id(key) == key_id:
                try:
                    return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
                except Exception as exc:
                    msg = "a stored key failed authentication under its master key"
                    raise MasterKeyUnavailable(msg) from exc
        msg = f"master key {key_id} is not in the configured key ring"
        raise MasterKeyUnavailable(msg)


def create_master_key_file(path: Path) -> bool:
    """Create a new master key file readable by the owner only; False if one exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode() + "\n")
    return True


def load_master_key_ring(env_value: str | None, path: Path) -> MasterKeyRing:
    """From ``HUB_MASTER_KEY`` if set, else the key file made by ``licence-hub init``."""
    if env_value:
        return MasterKeyRing.parse(env_value)
    try:
        return MasterKeyRing.parse(path.read_text())
    except FileNotFoundError as exc:
        msg = f"no master key: set HUB_MASTER_KEY or run `licence-hub init` to create {path}"
        raise MasterKeyUnavailable(msg) from exc
