"""C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint) with Ed25519."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 0x01  # signed-note signature type identifier for plain Ed25519
SIG_PREFIX = "\u2014 "  # EM DASH, SPACE
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100  # golang.org/x/mod/sumdb/note's limit; the spec requires accepting at least 16
MAX_TREE_SIZE = (1 << 64) - 1

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII control characters other than newline
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


class NoteError(ValueError):
    """A signed note, verifier key or checkpoint that is malformed or does not verify."""


def _check_name(name: str) -> None:
    """Key names: non-empty UTF-8 without Unicode spaces, '+' or control characters (signed-note §Format)."""
    if not name:
        raise NoteError("key name is empty")
    if "+" in name or any(c.isspace() or c < " " for c in name):
        raise NoteError(f"key name {name!r} contains a space, '+' or a control character")
    _utf8(name, "key name")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError(f"{what} is not valid UTF-8") from exc


def _b64decode(value: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4) with padding, in its canonical encoding only."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except ValueError as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _key_hash(name: str, public_key: bytes) -> int:
    """Key ID: first four bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte Ed25519 public key)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 note key: its name and 32-byte public key."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise NoteError(f"Ed25519 public key must be 32 bytes, not {len(self.public_key)}")

    @classmethod
    def from_verifier_key(cls, vkey: str) -> Verifier:
        """Parse `<name>+<hex key ID>+<base64(0x01 ‖ public key)>` (the base64 part may itself contain '+')."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key must have the form <name>+<key ID>+<key>")
        name, hash_hex, key_b64 = parts
        _check_name(name)
        if not _HEX8.fullmatch(hash_hex):
            raise NoteError(f"verifier key ID {hash_hex!r} is not 8 hex digits")
        key = _b64decode(key_b64, "verifier key")
        if not key:
            raise NoteError("verifier key has no key material")
        if key[0] != ALG_ED25519:
            raise NoteError(f"unknown verifier algorithm 0x{key[0]:02x}")
        if len(key) != 33:
            raise NoteError(f"Ed25519 verifier key must be 33 bytes (type + key), not {len(key)}")
        verifier = cls(name, key[1:])
        if int(hash_hex, 16) != verifier.key_hash:
            raise NoteError(f"verifier key ID {hash_hex} does not match the name and key ({verifier.key_hash:08x})")
        return verifier

    @property
    def key_hash(self) -> int:
        return _key_hash(self.name, self.public_key)

    def verifier_key(self) -> str:
        return f"{self.name}+{self.key_hash:08x}+{_b64(bytes([ALG_ED25519]) + self.public_key)}"

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """An Ed25519 note signing key under a key name (for checkpoints, conventionally the log origin)."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @property
    def key_hash(self) -> int:
        return self.verifier().key_hash

    def verifier_key(self) -> str:
        return self.verifier().verifier_key()

    def sign(self, text: str) -> str:
        """The signed note: `text`, a blank line and this key's signature line."""
        return sign_note(text, [self])


def _check_text(text: str) -> bytes:
    raw = _utf8(text, "note text")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if _CONTROL.search(text):
        raise NoteError("note contains an ASCII control character other than newline")
    if len(raw) > MAX_NOTE_BYTES:
        raise NoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
    return raw


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign `text` (which must end in a newline) with each signer; the signed message is the text itself."""
    raw = _check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    lines = [f"{SIG_PREFIX}{s.name} {_b64(s.key_hash.to_bytes(4, 'big') + s.private_key.sign(raw))}\n" for s in signers]
    return text + "\n" + "".join(lines)


def _split(signed: str | bytes) -> tuple[str, list[str]]:
    """Check the whole note and split it at its last blank line into text and signature lines."""
    if isinstance(signed, bytes):
        if len(signed) > MAX_NOTE_BYTES:
            raise NoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
        try:
            signed = signed.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not valid UTF-8") from exc
    _check_text(signed)
    split = signed.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    if split + 2 == len(signed):
        raise NoteError("note has no signature lines")
    lines = signed[split + 2 : -1].split("\n")  # ends in newline (_check_text); no empty line after the last one
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return signed[: split + 1], lines


def _signature(line: str) -> tuple[str, int, bytes]:
    """Parse `— <name> <base64(key ID ‖ signature)>` into name, key ID and signature."""
    if not line.startswith(SIG_PREFIX):
        raise NoteError(f"signature line {line!r} does not start with an em dash and a space")
    name, _, sig_b64 = line[len(SIG_PREFIX) :].partition(" ")
    _check_name(name)
    sig = _b64decode(sig_b64, f"signature by {name}")
    if len(sig) < 5:
        raise NoteError(f"signature by {name} is too short")
    return name, int.from_bytes(sig[:4], "big"), sig[4:]


def open_note(signed: str | bytes, verifiers: Sequence[Verifier]) -> tuple[str, list[str]]:
    """Verify a signed note; returns its text and the names of the known keys whose signatures verified.

    Signatures by keys not in `verifiers` (name and key ID not both matching) are ignored, as the spec requires;
    every signature by a known key must verify, and there must be at least one.
    """
    text, lines = _split(signed)
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        if known.setdefault((v.name, v.key_hash), v) != v:
            raise NoteError(f"ambiguous verifiers for key {v.name}+{v.key_hash:08x}")
    message = text.encode("utf-8")
    verified: list[str] = []
    for name, key_id, sig in map(_signature, lines):
        verifier = known.get((name, key_id))
        if verifier is None:
            continue
        if not verifier.verify(sig, message):
            raise NoteError(f"invalid signature for key {name}+{key_id:08x}")
        if name not in verified:
            verified.append(name)
    if not verified:
        raise NoteError("note has no signature from a known key")
    return text, verified


@dataclass(frozen=True)
class Checkpoint:
    """A transparency log tree head: origin, tree size, RFC 6962 root hash and (discouraged) extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line, what in ((self.origin, "origin"), *((e, "extension line") for e in self.extensions)):
            if not line or "\n" in line or _CONTROL.search(line):
                raise NoteError(f"checkpoint {what} {line!r} is empty or contains a control character")
            _utf8(line, f"checkpoint {what}")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError(f"checkpoint tree size {self.size!r} is out of range")
        if len(self.root_hash) != 32:
            raise NoteError(f"checkpoint root hash must be 32 bytes, not {len(self.root_hash)}")

    def to_text(self) -> str:
        """The note text: origin, decimal size and base64 root hash, then extension lines, each ending in newline."""
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), _b64(self.root_hash), *self.extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Strictly parse checkpoint note text (c2sp.org/tlog-checkpoint §Note text)."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint text must have at least three lines")
    origin, size, root, *extensions = lines
    if not _DECIMAL.fullmatch(size):
        raise NoteError(f"checkpoint tree size {size!r} is not a decimal number without leading zeros")
    return Checkpoint(origin, int(size), _b64decode(root, "checkpoint root hash"), tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    return signer.sign(checkpoint.to_text())


def open_checkpoint(signed: str | bytes, verifier: Verifier, *, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint under `verifier`; with `origin`, also require that log identity."""
    text, _ = open_note(signed, [verifier])
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint
