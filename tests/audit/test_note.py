"""Tests for audit.note: C2SP signed notes and tlog checkpoints, against published third-party vectors."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.note import (
    MAX_SIGNATURES,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
)

EM = "\u2014"

# golang.org/x/mod sumdb/note: note.go package documentation and note_test.go (TestSign, TestOpen, TestNewVerifier).
PETER_SEED_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"  # from PRIVATE+KEY+PeterNeumann+c74f20a3+…
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    f"{EM} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    f"{EM} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
GO_NOTE = GO_TEXT + "\n" + PETER_SIG

# c2sp.org/signed-note, "Verifier keys" > "Example" (C2SP/C2SP signed-note.md at 5ba5ee83).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    f"This is an example message.\n\n{EM} example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# A real sum.golang.org checkpoint (retrieved 2024-09-23, sigsum-go pkg/checkpoint/checkpoint_test.go) under the
# key golang/go ships in src/cmd/go/internal/modfetch/key.go; note the '+' inside the key's base64.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_TEXT = "go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n"
SUMDB_NOTE = (
    f"{SUMDB_TEXT}\n{EM} sum.golang.org "
    "Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n"
)

# sigsum-go pkg/checkpoint/checkpoint_test.go (TestCheckpointSigned): Ed25519 seed 17‖0*31, size 10, root 1c0e47‖0*29.
SIGSUM_ORIGIN = "sigsum.org/v1/tree/e796172b92befd62d9dc67e41c2f5bc9d3100a3023b20b1ca40288dd1c679e69"
SIGSUM_CHECKPOINT = (
    f"{SIGSUM_ORIGIN}\n10\nHA5HAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n{EM} {SIGSUM_ORIGIN} "
    "gJ2ho0n8F8olcerUF1FFdv235A/5as/coWrpLrtE7ovMeP5whgwouYExowG/lTznxu6OUGjjt5yJQ6bXtTcf718MqAQ=\n"
)

ROOT = hashlib.sha256(b"root").digest()
URLSAFE_ROOT = base64.urlsafe_b64encode(b"\xff" * 32).decode()


def peter_signer() -> Signer:
    seed = base64.b64decode(PETER_SEED_B64)
    assert seed[0] == 0x01
    return Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed[1:]))


def _vkey(name: str, key: bytes) -> str:
    """A verifier key string with a correct key ID over arbitrary (type ‖ key) bytes."""
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex()
    return f"{name}+{key_id}+{base64.b64encode(key).decode()}"


def new_signer(name: str = "hub.example/audit") -> Signer:
    return Signer(name, Ed25519PrivateKey.generate())


SIGNER = new_signer()


# ---- the reference vectors -----------------------------------------------------------------------------------------


def test_go_reference_note_verifies() -> None:
    peter = Verifier.from_verifier_key(PETER_VKEY)
    assert (peter.name, peter.key_hash) == ("PeterNeumann", 0xC74F20A3)
    assert open_note(GO_NOTE, [peter]) == (GO_TEXT, ["PeterNeumann"])
    assert open_note(GO_NOTE.encode(), [peter]) == (GO_TEXT, ["PeterNeumann"])


def test_go_reference_signer_reproduces_the_note_byte_for_byte() -> None:
    signer = peter_signer()
    assert signer.key_hash == 0xC74F20A3
    assert signer.verifier_key() == PETER_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE  # Ed25519 is deterministic


def test_go_reference_doubly_signed_note() -> None:
    peter, enoch = Verifier.from_verifier_key(PETER_VKEY), Verifier.from_verifier_key(ENOCH_VKEY)
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, [peter]) == (GO_TEXT, ["PeterNeumann"])  # EnochRoot is unknown: ignored
    assert open_note(note, [enoch]) == (GO_TEXT, ["EnochRoot"])
    assert open_note(note, [enoch, peter]) == (GO_TEXT, ["PeterNeumann", "EnochRoot"])
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(note, [])


@pytest.mark.parametrize(
    "note",
    [
        GO_NOTE.replace("problem,", "problem;"),  # one character of the text
        GO_NOTE.replace("x08go/ZJ", "x08go/ZK"),  # one character of the signature (key ID intact)
        GO_NOTE.replace("JnAM=", "JnAQ="),  # the last signature character
    ],
)
def test_go_reference_note_edited_fails(note: str) -> None:
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(note, [Verifier.from_verifier_key(PETER_VKEY)])


def test_non_canonical_base64_signature_rejected() -> None:
    # 'M' and 'N' differ only in the two padding bits of the final quantum: same bytes, other encoding.
    with pytest.raises(NoteError, match="not canonical"):
        open_note(GO_NOTE.replace("JnAM=", "JnAN="), [Verifier.from_verifier_key(PETER_VKEY)])


def test_go_reference_note_with_other_key_name_is_unknown() -> None:
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(GO_NOTE.replace("PeterNeumann", "PeterNeumanm"), [Verifier.from_verifier_key(PETER_VKEY)])


def test_go_reference_note_with_other_key_id_is_unknown() -> None:
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(GO_NOTE.replace("x08g", "x08h"), [Verifier.from_verifier_key(PETER_VKEY)])


def test_c2sp_spec_example_verifies() -> None:
    v = Verifier.from_verifier_key(SPEC_VKEY)
    assert v.verifier_key() == SPEC_VKEY
    assert open_note(SPEC_NOTE, [v]) == ("This is an example message.\n", ["example.com/foo"])


def test_real_sumdb_checkpoint_verifies_and_parses() -> None:
    v = Verifier.from_verifier_key(SUMDB_VKEY)
    assert v.verifier_key() == SUMDB_VKEY
    cp = open_checkpoint(SUMDB_NOTE, v, origin="go.sum database tree")
    assert (cp.origin, cp.size, cp.extensions) == ("go.sum database tree", 30055305, ())
    assert cp.to_text() == SUMDB_TEXT
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(SUMDB_NOTE, v, origin="hub.example/audit")


def test_sigsum_checkpoint_reproduced_byte_for_byte() -> None:
    signer = Signer(SIGSUM_ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes([17]) + bytes(31)))
    cp = Checkpoint(SIGSUM_ORIGIN, 10, bytes([28, 14, 71]) + bytes(29))
    assert sign_checkpoint(cp, signer) == SIGSUM_CHECKPOINT
    assert open_checkpoint(SIGSUM_CHECKPOINT, signer.verifier(), origin=SIGSUM_ORIGIN) == cp


# ---- verifier keys -------------------------------------------------------------------------------------------------


def test_verifier_key_round_trip() -> None:
    signer = new_signer()
    vkey = signer.verifier_key()
    name, hash_hex, key_b64 = vkey.split("+", 2)
    assert (name, hash_hex) == ("hub.example/audit", f"{signer.key_hash:08x}")
    assert base64.b64decode(key_b64)[0] == 0x01
    assert Verifier.from_verifier_key(vkey) == signer.verifier()
    assert Verifier.from_verifier_key(vkey).verifier_key() == vkey


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        (PETER_VKEY.replace("c74f20a3", "c74f20a4"), "does not match"),  # bad hash
        (PETER_VKEY.replace("+c74f20a3+", "+c74f20a+"), "8 hex digits"),
        (PETER_VKEY.replace("+c74f20a3+", "+0xc74f20+"), "8 hex digits"),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "unknown verifier algorithm 0x65"),
        # Go's wrong-length vector: "EY==" leaves non-zero padding bits, so it already fails as base64 here.
        ("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", "not canonical base64"),
        (_vkey("x", b"\x01" + bytes(31)), "must be 33 bytes"),
        (_vkey("x", b"\x01" + bytes(33)), "must be 33 bytes"),
        (_vkey("x", b"\x02" + bytes(32)), "unknown verifier algorithm 0x02"),
        (PETER_VKEY[:-1], "not valid base64"),
        (PETER_VKEY + "=", "base64"),
        (PETER_VKEY.replace("ARpc", "AR~c"), "not valid base64"),
        (PETER_VKEY.replace("PeterNeumann", "Peter+Neumann"), "8 hex digits"),  # splits as Peter / Neumann / …
        (PETER_VKEY.replace("PeterNeumann", "Peter Neumann"), "contains a space"),
        (PETER_VKEY.replace("PeterNeumann", "Peter\u00a0Neumann"), "contains a space"),
        (PETER_VKEY.replace("PeterNeumann", ""), "empty"),
        ("PeterNeumann", "must have the form"),
        ("PeterNeumann+c74f20a3+", "no key material"),
    ],
)
def test_malformed_verifier_keys(vkey: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Verifier.from_verifier_key(vkey)


def test_go_verifier_key_manglings_all_fail() -> None:
    """Port of golang.org/x/mod TestNewVerifier: every proper substring and every one-byte increment fails."""
    n = len(PETER_VKEY)
    mangled = [PETER_VKEY[i:j] for i in range(n) for j in range(i + 1, n + 1) if (i, j) != (0, n)]
    mangled += [PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :] for i in range(n)]
    for vkey in mangled:
        with pytest.raises(NoteError):
            Verifier.from_verifier_key(vkey)


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\tb", "a\u2003b", "a\x00b", "a\ud800b"])
def test_invalid_names_rejected(name: str) -> None:
    with pytest.raises(NoteError, match="key name"):
        new_signer(name)
    with pytest.raises(NoteError, match="key name"):
        Verifier(name, bytes(32))


def test_verifier_rejects_wrong_public_key_length() -> None:
    with pytest.raises(NoteError, match="32 bytes"):
        Verifier("x", bytes(31))


# ---- signing and opening notes -------------------------------------------------------------------------------------


def test_own_round_trip() -> None:
    signer = new_signer()
    text = "first line\n\nafter an empty line, which the text may contain\n"
    signed = signer.sign(text)
    assert signed.startswith(text + "\n" + f"{EM} hub.example/audit ")
    assert open_note(signed, [signer.verifier()]) == (text, ["hub.example/audit"])


def test_signature_line_layout() -> None:
    signer = new_signer()
    signed = signer.sign("x\n")
    line = signed.split("\n")[2]
    assert line.startswith("\u2014 hub.example/audit ")
    raw = base64.b64decode(line.split(" ")[2], validate=True)
    assert len(raw) == 4 + 64
    assert int.from_bytes(raw[:4], "big") == signer.key_hash
    assert signer.verifier().verify(raw[4:], b"x\n")  # the signed message is the text, final newline included


def test_extra_unknown_signer_still_verifies() -> None:
    ours, theirs = new_signer(), new_signer("witness.example/w1")
    signed = sign_note("tree\n", [theirs, ours])
    assert open_note(signed, [ours.verifier()]) == ("tree\n", ["hub.example/audit"])
    assert open_note(signed, [ours.verifier(), theirs.verifier()])[1] == ["witness.example/w1", "hub.example/audit"]


def test_only_unknown_signer_raises() -> None:
    signed = new_signer("stranger.example").sign("tree\n")
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(signed, [new_signer().verifier()])


def test_same_name_and_key_id_but_other_key_raises() -> None:
    ours, forger = new_signer(), new_signer()
    sig = base64.b64encode(ours.key_hash.to_bytes(4, "big") + forger.private_key.sign(b"tree\n")).decode()
    forged = f"tree\n\n{EM} hub.example/audit {sig}\n"
    with pytest.raises(NoteError, match=r"invalid signature for key hub\.example/audit"):
        open_note(forged, [ours.verifier()])


def test_every_known_signature_is_checked() -> None:
    good = PETER_SIG
    bad = PETER_SIG.replace("x08go/ZJ", "x08go/ZK")
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(GO_TEXT + "\n" + good + bad, [Verifier.from_verifier_key(PETER_VKEY)])


class _CollidingVerifier(Verifier):
    """A different key that claims PeterNeumann's key ID (a real 32-bit collision is too slow to search for)."""

    @property
    def key_hash(self) -> int:
        return 0xC74F20A3


def test_ambiguous_verifiers_rejected() -> None:
    peter = Verifier.from_verifier_key(PETER_VKEY)
    assert open_note(GO_NOTE, [peter, peter])[1] == ["PeterNeumann"]
    with pytest.raises(NoteError, match="ambiguous verifiers for key PeterNeumann\\+c74f20a3"):
        open_note(GO_NOTE, [peter, _CollidingVerifier("PeterNeumann", bytes(32))])


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (GO_TEXT, "no blank line"),
        (GO_TEXT + "\n", "no signature lines"),
        (GO_TEXT + "\n" + PETER_SIG[:-1], "end with a newline"),
        ("\x01" + GO_NOTE, "control character"),
        (GO_NOTE.replace("\n", "\r\n"), "control character"),
        (GO_NOTE + "Unexpected line.\n", "does not start with an em dash"),
        (GO_TEXT + "\n- PeterNeumann AAAAAAA=\n", "does not start with an em dash"),
        (GO_TEXT + f"\n{EM} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX=\n", "base64"),
        (GO_TEXT + f"\n{EM} PeterNeumann \n", "too short"),
        (GO_TEXT + f"\n{EM} PeterNeumann AQID\n", "too short"),
        (GO_TEXT + f"\n{EM} PeterNeumann AQIDBA==\n", "too short"),
        (GO_TEXT + f"\n{EM} PeterNeumann AQIDBAU=\n{EM}  AQIDBAU=\n", "key name is empty"),
        (GO_TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), "more than 100 signatures"),
        (GO_TEXT + "x" * (1 << 20) + "\n\n" + PETER_SIG, "larger than"),
    ],
)
def test_malformed_notes(note: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        open_note(note, [Verifier.from_verifier_key(PETER_VKEY)])


def test_invalid_utf8_note_bytes() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(b"\xff" + GO_NOTE.encode(), [Verifier.from_verifier_key(PETER_VKEY)])


def test_unknown_signatures_are_syntax_checked_but_ignored() -> None:
    note = GO_TEXT + "\n" + f"{EM} other.example/key AAAAAAB0ZXN0\n" + PETER_SIG
    assert open_note(note, [Verifier.from_verifier_key(PETER_VKEY)])[1] == ["PeterNeumann"]


@pytest.mark.parametrize("text", ["abc", "", "a\x1bb\n", "a\ud800\n"])
def test_sign_rejects_malformed_text(text: str) -> None:
    with pytest.raises(NoteError):
        new_signer().sign(text)


def test_sign_needs_a_signer() -> None:
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note("x\n", [])


# ---- checkpoints ---------------------------------------------------------------------------------------------------


def test_checkpoint_text_format() -> None:
    root = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")  # the tlog-checkpoint spec example
    cp = Checkpoint("example.com/behind-the-sofa", 20852163, root)
    assert cp.to_text() == "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert Checkpoint("log", 0, bytes(32), ("ext one", "ext2")).to_text() == (
        "log\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next one\next2\n"
    )
    assert parse_checkpoint(cp.to_text()) == cp


def test_signed_checkpoint_layout() -> None:
    signer = new_signer()
    cp = Checkpoint("hub.example/audit", 3, ROOT)
    signed = sign_checkpoint(cp, signer)
    body, sig_line = signed.split("\n\n")
    assert body + "\n" == cp.to_text()
    assert sig_line.startswith(f"{EM} hub.example/audit ")
    assert sig_line.endswith("\n")
    assert sig_line.count("\n") == 1
    assert open_checkpoint(signed, signer.verifier(), origin="hub.example/audit") == cp


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"log\n01\n{base64.b64encode(ROOT).decode()}\n", "leading zeros"),
        (f"log\n00\n{base64.b64encode(ROOT).decode()}\n", "leading zeros"),
        (f"log\n-1\n{base64.b64encode(ROOT).decode()}\n", "decimal"),
        (f"log\n+1\n{base64.b64encode(ROOT).decode()}\n", "decimal"),
        (f"log\n0x1\n{base64.b64encode(ROOT).decode()}\n", "decimal"),
        (f"log\n1 \n{base64.b64encode(ROOT).decode()}\n", "decimal"),
        (f"log\n\u0661\n{base64.b64encode(ROOT).decode()}\n", "decimal"),  # ARABIC-INDIC DIGIT ONE
        (f"log\n\n{base64.b64encode(ROOT).decode()}\n", "decimal"),
        (f"log\n{1 << 64}\n{base64.b64encode(ROOT).decode()}\n", "out of range"),
        (f"log\n{'9' * 5000}\n{base64.b64encode(ROOT).decode()}\n", "decimal"),
        (f"log\n1\n{base64.b64encode(ROOT[:31]).decode()}\n", "32 bytes"),
        (f"log\n1\n{base64.b64encode(ROOT + b'x').decode()}\n", "32 bytes"),
        (f"log\n1\n{base64.b64encode(ROOT).decode().rstrip('=')}\n", "base64"),
        (f"log\n1\n{URLSAFE_ROOT}\n", "base64"),
        (f"log\n1\n{base64.b64encode(ROOT).decode()}", "end with a newline"),
        (f"\n1\n{base64.b64encode(ROOT).decode()}\n", "origin"),
        (f"log\n1\n{base64.b64encode(ROOT).decode()}\n\n", "extension line"),
        ("log\n1\n", "at least three lines"),
        (f"lo\x07g\n1\n{base64.b64encode(ROOT).decode()}\n", "control character"),
    ],
)
def test_parse_checkpoint_rejects(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_checkpoint(text)


def test_parse_checkpoint_accepts_extremes() -> None:
    assert parse_checkpoint(f"log\n0\n{base64.b64encode(ROOT).decode()}\n").size == 0
    assert parse_checkpoint(f"log\n{(1 << 64) - 1}\n{base64.b64encode(ROOT).decode()}\nx\n").extensions == ("x",)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("log", -1, ROOT, ()),
        ("log", 1, ROOT[:16], ()),
        ("log", 1, ROOT, ("",)),
    ],
)
def test_checkpoint_constructor_validates(origin: str, size: int, root: bytes, extensions: tuple[str, ...]) -> None:
    with pytest.raises(NoteError):
        Checkpoint(origin, size, root, extensions)


def test_forged_checkpoint_same_name_other_key_raises() -> None:
    ours, forger = new_signer(), new_signer()  # same key name, different key: different key ID
    forged = sign_checkpoint(Checkpoint("hub.example/audit", 7, ROOT), forger)
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_checkpoint(forged, ours.verifier())


def test_tampered_checkpoint_raises() -> None:
    signer = new_signer()
    signed = sign_checkpoint(Checkpoint("hub.example/audit", 7, ROOT), signer)
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(signed.replace("\n7\n", "\n8\n"), signer.verifier())


def test_checkpoint_note_that_is_not_a_checkpoint() -> None:
    signer = new_signer()
    with pytest.raises(NoteError, match="at least three lines"):
        open_checkpoint(signer.sign("just text\n"), signer.verifier())


ORIGIN_CHARS = st.characters(exclude_categories=["Cs"], min_codepoint=0x20)


@settings(max_examples=60, deadline=None)
@given(
    origin=st.text(ORIGIN_CHARS, min_size=1, max_size=40),
    size=st.integers(min_value=0, max_value=(1 << 64) - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(st.text(ORIGIN_CHARS, min_size=1, max_size=20), max_size=3),
)
def test_checkpoint_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    signed = sign_checkpoint(cp, SIGNER)
    assert open_checkpoint(signed, SIGNER.verifier(), origin=origin) == cp
    assert parse_checkpoint(cp.to_text()) == cp


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs", "Cc"]) | st.just("\n"), max_size=80))
def test_note_round_trip_any_text(body: str) -> None:
    text = body + "\n"
    assert open_note(SIGNER.sign(text), [SIGNER.verifier()]) == (text, [SIGNER.name])


# ---- anything a parser may be handed -------------------------------------------------------------------------------

_ANY_TEXT = st.text(st.characters() | st.sampled_from(["\n", EM, " ", "+", "="])) | st.tuples(
    st.text(max_size=20), st.characters(categories=["Cs"]), st.text(max_size=20)
).map("".join)  # a lone surrogate: text no UTF-8 can carry
_CHECKPOINT_LIKE = st.builds(
    lambda *lines: "".join(f"{line}\n" for line in (*lines[:3], *lines[3])),
    st.text(ORIGIN_CHARS, min_size=1, max_size=20) | st.just(""),
    st.integers(min_value=0, max_value=1 << 65).map(str) | st.sampled_from(["", "00", "01", "-1", "+5", " 5", "٣"]),
    st.binary(min_size=32, max_size=32).map(lambda raw: base64.b64encode(raw).decode())
    | st.sampled_from([URLSAFE_ROOT, base64.b64encode(ROOT).decode().rstrip("="), base64.b64encode(ROOT[1:]).decode()]),
    st.lists(st.text(ORIGIN_CHARS | st.just("\n"), max_size=10), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(_ANY_TEXT | st.binary(max_size=200) | st.builds(lambda text, sig: text + "\n" + sig, _ANY_TEXT, _ANY_TEXT))
def test_any_text_or_bytes_opens_as_a_note_or_raises_note_error(signed: str | bytes) -> None:
    with pytest.raises(NoteError):
        open_note(signed, [SIGNER.verifier()])  # nothing here carries SIGNER's signature


@settings(max_examples=300, deadline=None)
@given(_ANY_TEXT | _CHECKPOINT_LIKE)
def test_checkpoint_text_parses_only_in_its_one_canonical_form(text: str) -> None:
    try:
        checkpoint = parse_checkpoint(text)
    except NoteError:
        return
    assert checkpoint.to_text() == text  # one tree head, one spelling: no leading zeros, padded base64, "\n" ends


@settings(max_examples=200, deadline=None)
@given(
    _ANY_TEXT
    | st.builds("+".join, st.lists(_ANY_TEXT | st.sampled_from(["01", "c74f20a3"]), max_size=4))
    | st.builds(
        lambda name, kind, key: _vkey(name, kind + key),
        st.text(ORIGIN_CHARS, min_size=1, max_size=10),
        st.sampled_from([b"\x01", b"\x02", b""]),
        st.binary(min_size=31, max_size=33),
    )
)
def test_any_verifier_key_parses_or_raises_note_error(vkey: str) -> None:
    try:
        verifier = Verifier.from_verifier_key(vkey)
    except NoteError:
        return
    assert verifier.verifier_key() == vkey


_SIGNED_CHECKPOINT = sign_checkpoint(Checkpoint("hub.example/audit", 1234, ROOT), SIGNER).encode()


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=255))
def test_every_changed_byte_of_a_signed_checkpoint_is_refused(mask: int) -> None:
    for position in range(len(_SIGNED_CHECKPOINT)):
        changed = bytearray(_SIGNED_CHECKPOINT)
        changed[position] ^= mask
        with pytest.raises(NoteError):
            open_checkpoint(bytes(changed), SIGNER.verifier(), origin="hub.example/audit")
