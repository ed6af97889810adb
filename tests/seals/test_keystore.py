"""Seal key custody: both key stores behind one signer interface, real crypto, a real SoftHSM2 token."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import secrets
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from conftest import PIN, PIN_CHECK_TOKEN, SOFTHSM2_MODULE, TOKEN
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from pydantic import ValidationError
from sqlalchemy.orm import Session

from hub.errors import DomainError, InvalidInput
from hub.keys.masterkey import MasterKeyRing, MasterKeyUnavailable
from hub.runtime import Runtime
from hub.settings import Settings
from seals.errors import SealKeyCorrupted, SealKeyDisabled, SealKeyNotFound, SealKeyStoreUnavailable
from seals.keystore import (
    PKCS11,
    SOFTWARE,
    SealKeyStore,
    SealSigner,
    SoftwareKeyStore,
    SoftwareSigner,
    key_id_for,
    open_keystore,
    rewrap_software_keys,
)
from seals.models import SealKey
from seals.pkcs11 import Pkcs11KeyStore

LABEL = "临江市市场监督管理局电子证照专用章"
ECDSA_PREHASHED = ec.ECDSA(utils.Prehashed(hashes.SHA256()))


@pytest.fixture(params=[SOFTWARE, PKCS11])
def store(request: pytest.FixtureRequest, master_keys: MasterKeyRing) -> SealKeyStore:
    if request.param == PKCS11:
        request.getfixturevalue("softhsm")
    return open_keystore(request.param, master_keys, SOFTHSM2_MODULE, TOKEN, PIN)


@pytest.fixture
def pkcs11_store(softhsm: Path, master_keys: MasterKeyRing) -> SealKeyStore:
    return open_keystore(PKCS11, master_keys, SOFTHSM2_MODULE, TOKEN, PIN)


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    with runtime.session_scope() as db:
        yield db


def digest_of(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def verify(public_key: ec.EllipticCurvePublicKey, signature: bytes, digest: bytes) -> None:
    public_key.verify(signature, digest, ECDSA_PREHASHED)


def fresh_store(store: SealKeyStore, ring: MasterKeyRing) -> SealKeyStore:
    """Another instance of the same back end: an empty signer cache, as in another process."""
    return open_keystore(store.backend, ring, SOFTHSM2_MODULE, TOKEN, PIN)


def token_session(*, rw: bool = False) -> Any:
    """A second session of this process on the test token, sharing the key store's login (PKCS#11 §5.6)."""
    return pkcs11.lib(str(SOFTHSM2_MODULE)).get_token(token_label=TOKEN).open(rw=rw)


# ----------------------------------------------------------------------------- the interface, both back ends


def test_a_new_key_signs_digests_its_recorded_public_key_verifies(store: SealKeyStore, session: Session) -> None:
    signer = store.create_key(session, label=LABEL)
    digest = digest_of(b"licence 1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F")
    signature = signer.sign_digest(digest)
    verify(signer.public_key, signature, digest)
    utils.decode_dss_signature(signature)  # DER ECDSA-Sig-Value (RFC 3279 §2.2.3)

    row = session.get(SealKey, signer.key_id)
    assert row is not None
    assert row.backend == store.backend
    assert row.label == LABEL
    recorded = serialization.load_der_public_key(row.public_key)
    assert isinstance(recorded, ec.EllipticCurvePublicKey)
    assert isinstance(recorded.curve, ec.SECP256R1)
    verify(recorded, signature, digest)
    assert signer.key_id == hashlib.sha256(row.public_key).hexdigest()[:32] == key_id_for(recorded)


def test_a_signature_does_not_verify_over_another_digest(store: SealKeyStore, session: Session) -> None:
    signer = store.create_key(session, label=LABEL)
    signature = signer.sign_digest(digest_of(b"the sealed document"))
    with pytest.raises(InvalidSignature):
        verify(signer.public_key, signature, digest_of(b"the sealed document, edited"))
    other = store.create_key(session, label=LABEL)
    with pytest.raises(InvalidSignature):
        verify(other.public_key, signature, digest_of(b"the sealed document"))


def test_signatures_are_randomised_and_digests_must_be_sha256_sized(store: SealKeyStore, session: Session) -> None:
    signer = store.create_key(session, label=LABEL)
    digest = digest_of(b"x")
    assert signer.sign_digest(digest) != signer.sign_digest(digest)  # a fresh k each time (FIPS 186-5 §6.4)
    for wrong in (b"", digest[:20], digest + b"\x00"):
        with pytest.raises(ValueError, match="32-byte"):
            signer.sign_digest(wrong)


def test_the_signer_is_cached_per_store_and_loads_from_the_record_elsewhere(
    store: SealKeyStore, session: Session, master_keys: MasterKeyRing
) -> None:
    created = store.create_key(session, label=LABEL)
    assert store.signer(session, created.key_id) is created
    assert store.signer(session, created.key_id) is store.signer(session, created.key_id)

    elsewhere = fresh_store(store, master_keys)
    loaded = elsewhere.signer(session, created.key_id)
    assert loaded is not created
    assert elsewhere.signer(session, created.key_id) is loaded
    digest = digest_of(b"sealed by another process")
    verify(created.public_key, loaded.sign_digest(digest), digest)


def test_concurrent_signing_from_many_threads(store: SealKeyStore, session: Session) -> None:
    signers = [store.create_key(session, label=f"{LABEL} {n}") for n in range(3)]
    jobs = [(signers[n % 3], digest_of(str(n).encode())) for n in range(120)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        signatures = list(pool.map(lambda job: job[0].sign_digest(job[1]), jobs))
    for (signer, digest), signature in zip(jobs, signatures, strict=True):
        verify(signer.public_key, signature, digest)


def test_a_disabled_key_signs_no_more(store: SealKeyStore, session: Session, master_keys: MasterKeyRing) -> None:
    signer = store.create_key(session, label=LABEL)
    store.disable_key(session, signer.key_id)
    with pytest.raises(SealKeyDisabled) as held:
        signer.sign_digest(digest_of(b"after revocation"))  # a signer a caller kept refuses too
    assert held.value.status == 409
    assert held.value.code == "seal_key_disabled"
    for asking in (store, fresh_store(store, master_keys)):
        with pytest.raises(SealKeyDisabled):
            asking.signer(session, signer.key_id)
    row = session.get(SealKey, signer.key_id)
    assert row is not None
    first = row.disabled_at
    assert first is not None
    store.disable_key(session, signer.key_id)  # idempotent
    assert row.disabled_at == first
    assert row.encrypted_private is None  # nothing left to revive
    assert "disabled" in repr(signer)


def test_an_unknown_key_id_is_refused(store: SealKeyStore, session: Session) -> None:
    with pytest.raises(SealKeyNotFound) as caught:
        store.signer(session, secrets.token_hex(16))
    assert caught.value.status == 404
    assert caught.value.code == "seal_key_not_found"
    with pytest.raises(SealKeyNotFound):
        store.disable_key(session, secrets.token_hex(16))


def test_a_key_of_the_other_back_end_is_not_found(
    pkcs11_store: SealKeyStore, session: Session, master_keys: MasterKeyRing
) -> None:
    software = SoftwareKeyStore(master_keys)
    on_token = pkcs11_store.create_key(session, label=LABEL)
    in_database = software.create_key(session, label=LABEL)
    with pytest.raises(SealKeyNotFound):
        software.signer(session, on_token.key_id)
    with pytest.raises(SealKeyNotFound):
        pkcs11_store.signer(session, in_database.key_id)


@pytest.mark.parametrize("label", ["", "   ", "章" * 129])
def test_labels_are_checked(store: SealKeyStore, session: Session, label: str) -> None:
    with pytest.raises(InvalidInput):
        store.create_key(session, label=label)


def test_keys_and_the_pin_are_never_logged_nor_shown(
    store: SealKeyStore, session: Session, master_keys: MasterKeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        signer = store.create_key(session, label=LABEL)
        signer.sign_digest(digest_of(b"logged?"))
        loaded = fresh_store(store, master_keys).signer(session, signer.key_id)
        loaded.sign_digest(digest_of(b"logged?"))
        store.disable_key(session, signer.key_id)
    secrets_shown: list[str] = []
    if isinstance(signer, SoftwareSigner):
        value = signer._private_key.private_numbers().private_value
        secrets_shown += [f"{value:x}", f"{value:064x}", str(value)]
    texts = [repr(store), str(store), repr(signer), repr(loaded)]
    texts += [record.getMessage() + repr(record.__dict__) for record in caplog.records]
    assert any(signer.key_id in record.getMessage() for record in caplog.records)  # identifiers are logged
    for text in texts:
        for secret in secrets_shown:
            assert secret not in text
        assert not re.search(rf"(?<![0-9a-f]){PIN}(?![0-9a-f])", text)
    with pytest.raises(TypeError):
        pickle.dumps(signer)


# ----------------------------------------------------------------------------- software key store


def software_signer(store: SoftwareKeyStore, session: Session) -> SoftwareSigner:
    signer = store.create_key(session, label=LABEL)
    assert isinstance(signer, SoftwareSigner)
    return signer


def test_the_stored_blob_holds_neither_the_scalar_nor_the_pkcs8(session: Session, master_keys: MasterKeyRing) -> None:
    signer = software_signer(SoftwareKeyStore(master_keys), session)
    private = signer._private_key
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    row = session.get(SealKey, signer.key_id)
    assert row is not None
    assert row.master_kid == master_keys.current_id
    assert row.encrypted_private is not None
    stored = [row.encrypted_private, row.public_key, row.key_id.encode(), row.label.encode()]
    for column in stored:
        assert scalar not in column
        assert pkcs8 not in column
        assert scalar.hex().encode() not in column


def test_a_blob_moved_to_another_row_fails_authentication(session: Session, master_keys: MasterKeyRing) -> None:
    store = SoftwareKeyStore(master_keys)
    first, second = software_signer(store, session), software_signer(store, session)
    source, target = session.get(SealKey, first.key_id), session.get(SealKey, second.key_id)
    assert source is not None
    assert target is not None
    target.encrypted_private = source.encrypted_private
    session.flush()
    with pytest.raises(MasterKeyUnavailable, match="failed authentication"):
        SoftwareKeyStore(master_keys).signer(session, second.key_id)


def test_a_blob_is_bound_to_its_back_end(session: Session, master_keys: MasterKeyRing) -> None:
    signer = software_signer(SoftwareKeyStore(master_keys), session)
    row = session.get(SealKey, signer.key_id)
    assert row is not None
    assert row.encrypted_private is not None
    other_backend = f"licence-hub/seal-key/{PKCS11}/{signer.key_id}".encode()
    with pytest.raises(MasterKeyUnavailable, match="failed authentication"):
        master_keys.decrypt(master_keys.current_id, row.encrypted_private, other_backend)


def test_a_wrong_master_key_fails_clearly(session: Session, master_keys: MasterKeyRing) -> None:
    signer = software_signer(SoftwareKeyStore(master_keys), session)
    stranger = MasterKeyRing((secrets.token_bytes(32),))
    with pytest.raises(MasterKeyUnavailable, match="not in the configured key ring") as caught:
        SoftwareKeyStore(stranger).signer(session, signer.key_id)
    assert caught.value.code == "master_key_unavailable"


def test_a_tampered_blob_or_public_key_fails(session: Session, master_keys: MasterKeyRing) -> None:
    store = SoftwareKeyStore(master_keys)
    tampered, swapped, other = (software_signer(store, session) for _ in range(3))
    row = session.get(SealKey, tampered.key_id)
    assert row is not None
    assert row.encrypted_private is not None
    blob = bytearray(row.encrypted_private)
    blob[len(blob) // 2] ^= 0x01
    row.encrypted_private = bytes(blob)
    swapped_row, other_row = session.get(SealKey, swapped.key_id), session.get(SealKey, other.key_id)
    assert swapped_row is not None
    assert other_row is not None
    swapped_row.public_key = other_row.public_key  # the column outside the AAD
    session.flush()
    with pytest.raises(MasterKeyUnavailable, match="failed authentication"):
        SoftwareKeyStore(master_keys).signer(session, tampered.key_id)
    with pytest.raises(SealKeyCorrupted):
        SoftwareKeyStore(master_keys).signer(session, swapped.key_id)


def test_rewrap_moves_keys_to_the_new_master_key(session: Session, master_keys: MasterKeyRing) -> None:
    signer = software_signer(SoftwareKeyStore(master_keys), session)
    revoked = software_signer(SoftwareKeyStore(master_keys), session)
    SoftwareKeyStore(master_keys).disable_key(session, revoked.key_id)
    new_key = secrets.token_bytes(32)
    rotating = MasterKeyRing((new_key, *master_keys.keys))  # new key first, old key second
    assert rewrap_software_keys(session, rotating) == 1  # the revoked key was erased, not rewrapped
    assert rewrap_software_keys(session, rotating) == 0
    row = session.get(SealKey, signer.key_id)
    assert row is not None
    assert row.master_kid == rotating.current_id != master_keys.current_id

    only_new = MasterKeyRing((new_key,))
    digest = digest_of(b"after rotation")
    verify(signer.public_key, SoftwareKeyStore(only_new).signer(session, signer.key_id).sign_digest(digest), digest)
    with pytest.raises(MasterKeyUnavailable):
        SoftwareKeyStore(master_keys).signer(session, signer.key_id)


def test_a_rewrap_without_the_old_master_key_fails_and_changes_nothing(
    session: Session, master_keys: MasterKeyRing
) -> None:
    signer = software_signer(SoftwareKeyStore(master_keys), session)
    with pytest.raises(MasterKeyUnavailable):
        rewrap_software_keys(session, MasterKeyRing((secrets.token_bytes(32),)))
    row = session.get(SealKey, signer.key_id)
    assert row is not None
    assert row.master_kid == master_keys.current_id


# ----------------------------------------------------------------------------- PKCS#11 key store on SoftHSM2


def test_the_token_key_is_sensitive_and_never_extractable(pkcs11_store: SealKeyStore, session: Session) -> None:
    signer = pkcs11_store.create_key(session, label=LABEL)
    ckid = bytes.fromhex(signer.key_id)
    token = token_session()
    try:
        private = token.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, id=ckid)
        attributes = pkcs11.Attribute
        assert private[attributes.TOKEN] is True
        assert private[attributes.PRIVATE] is True
        assert private[attributes.SENSITIVE] is True
        assert private[attributes.ALWAYS_SENSITIVE] is True
        assert private[attributes.EXTRACTABLE] is False
        assert private[attributes.NEVER_EXTRACTABLE] is True
        assert private[attributes.SIGN] is True
        assert private[attributes.DERIVE] is False
        assert private[attributes.LABEL] == LABEL
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[attributes.VALUE]
        public = token.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, id=ckid)
        point = pkcs11.util.ec.encode_ec_public_key(public)
        assert serialization.load_der_public_key(point) == signer.public_key
    finally:
        token.close()


def test_the_key_survives_in_a_fresh_process_and_needs_a_login(pkcs11_store: SealKeyStore, session: Session) -> None:
    signer = pkcs11_store.create_key(session, label=LABEL)
    digest = digest_of(b"signed in a fresh process")
    script = textwrap.dedent(
        f"""
        import pkcs11
        token = pkcs11.lib({str(SOFTHSM2_MODULE)!r}).get_token(token_label={TOKEN!r})
        ckid = bytes.fromhex({signer.key_id!r})
        with token.open() as anonymous:
            try:
                anonymous.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, id=ckid)
                print("visible")
            except pkcs11.exceptions.NoSuchKey:
                print("hidden")
        with token.open(user_pin={PIN!r}) as user:
            key = user.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, id=ckid)
            print(key.sign(bytes.fromhex({digest.hex()!r}), mechanism=pkcs11.Mechanism.ECDSA).hex())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, env=os.environ)
    assert done.returncode == 0, done.stderr
    visibility, raw_hex = done.stdout.split()
    assert visibility == "hidden"  # CKA_PRIVATE: no login, no key
    raw = bytes.fromhex(raw_hex)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    verify(signer.public_key, utils.encode_dss_signature(r, s), digest)


def test_disabling_destroys_the_key_on_the_token(pkcs11_store: SealKeyStore, session: Session) -> None:
    signer = pkcs11_store.create_key(session, label=LABEL)
    ckid = bytes.fromhex(signer.key_id)
    token = token_session()
    try:
        assert len(list(token.get_objects({pkcs11.Attribute.ID: ckid}))) == 2  # private and public
        pkcs11_store.disable_key(session, signer.key_id)
        assert list(token.get_objects({pkcs11.Attribute.ID: ckid})) == []
    finally:
        token.close()


def test_a_key_destroyed_by_another_process_refuses_clearly(pkcs11_store: SealKeyStore, session: Session) -> None:
    signer = pkcs11_store.create_key(session, label=LABEL)
    signer.sign_digest(digest_of(b"handle cached"))
    token = token_session(rw=True)
    try:
        for obj in list(token.get_objects({pkcs11.Attribute.ID: bytes.fromhex(signer.key_id)})):
            obj.destroy()
    finally:
        token.close()
    with pytest.raises(SealKeyDisabled, match="not on the token"):
        signer.sign_digest(digest_of(b"after"))


def test_a_lost_token_session_logs_in_again(pkcs11_store: SealKeyStore, session: Session) -> None:
    signer = pkcs11_store.create_key(session, label=LABEL)
    assert isinstance(pkcs11_store, Pkcs11KeyStore)
    token = pkcs11_store._token
    with token.library.lock:
        assert token._session is not None
        token._session.close()  # what a token restart does to us: session gone, logged out
    digest = digest_of(b"after a restart")
    verify(signer.public_key, signer.sign_digest(digest), digest)


def test_a_forked_child_initialises_the_module_afresh(pkcs11_store: SealKeyStore, session: Session) -> None:
    """Celery's prefork pool may fork after the parent opened the token ("Applications and processes")."""
    signer = pkcs11_store.create_key(session, label=LABEL)
    digest = digest_of(b"signed in a forked child")
    signer.sign_digest(digest)  # the parent's session and key handle exist before the fork
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns about fork() in a process with threads; this child only signs and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 1
        try:
            os.write(write_end, signer.sign_digest(digest))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        from_child = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    verify(signer.public_key, from_child, digest)
    verify(signer.public_key, signer.sign_digest(digest), digest)  # the parent's session is untouched


def test_a_wrong_pin_is_a_clear_error(softhsm: Path, master_keys: MasterKeyRing) -> None:
    with pytest.raises(SealKeyStoreUnavailable) as caught:
        open_keystore(PKCS11, master_keys, SOFTHSM2_MODULE, PIN_CHECK_TOKEN, "0000")
    assert caught.value.code == "seal_keystore_unavailable"
    assert "CKR_PIN_INCORRECT" in caught.value.detail
    assert "0000" not in caught.value.detail
    assert repr(open_keystore(PKCS11, master_keys, SOFTHSM2_MODULE, PIN_CHECK_TOKEN, PIN))  # the right PIN opens it
    # A token this process already logged in to cannot check a PIN again (CKR_USER_ALREADY_LOGGED_IN),
    # so a second key store must present the same one.
    with pytest.raises(SealKeyStoreUnavailable, match="another PIN"):
        open_keystore(PKCS11, master_keys, SOFTHSM2_MODULE, PIN_CHECK_TOKEN, "0000")


@pytest.mark.parametrize(
    ("module", "label", "reason"),
    [
        (SOFTHSM2_MODULE, "no-such-token", "not present"),
        (Path("/nonexistent/libpkcs11.so"), TOKEN, "cannot load the PKCS#11 module"),
    ],
)
def test_a_missing_token_or_module_is_a_clear_error(
    softhsm: Path, master_keys: MasterKeyRing, module: Path, label: str, reason: str
) -> None:
    with pytest.raises(SealKeyStoreUnavailable, match=reason):
        open_keystore(PKCS11, master_keys, module, label, PIN)


# ----------------------------------------------------------------------------- settings and runtime


def test_settings_refuse_pkcs11_without_a_pin(make_settings: Any) -> None:
    with pytest.raises(ValidationError, match="HUB_PKCS11_PIN"):
        make_settings(seal_keystore="pkcs11")
    with pytest.raises(ValidationError, match="HUB_PKCS11_PIN"):
        make_settings(seal_keystore="pkcs11", pkcs11_pin="")
    secret = "pin-that-must-never-be-printed"  # distinctive: "1234" can occur in a generated database name
    configured: Settings = make_settings(seal_keystore="pkcs11", pkcs11_pin=secret)
    assert secret not in repr(configured)
    assert configured.pkcs11_pin is not None and configured.pkcs11_pin.get_secret_value() == secret
    assert configured.pkcs11_module is None
    assert configured.pkcs11_token_label == TOKEN


def test_the_runtime_opens_the_configured_keystore_once(make_runtime: Any, make_settings: Any, softhsm: Path) -> None:
    software: Runtime = make_runtime(make_settings())
    assert isinstance(software.seal_keystore, SoftwareKeyStore)
    assert software.seal_keystore is software.seal_keystore
    token: Runtime = make_runtime(make_settings(seal_keystore="pkcs11", pkcs11_pin=PIN))  # default module
    assert isinstance(token.seal_keystore, Pkcs11KeyStore)
    with token.session_scope() as db:
        signer: SealSigner = token.seal_keystore.create_key(db, label=LABEL)
        digest = digest_of(b"via the runtime")
        verify(signer.public_key, signer.sign_digest(digest), digest)


def test_an_unknown_keystore_kind_is_refused(master_keys: MasterKeyRing) -> None:
    with pytest.raises(InvalidInput, match="software, pkcs11"):
        open_keystore("vault", master_keys, None, TOKEN, None)
    with pytest.raises(DomainError, match="HUB_PKCS11_PIN"):
        open_keystore(PKCS11, master_keys, None, TOKEN, None)
