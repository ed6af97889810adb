"""Content-addressed blob storage: local files and a real S3 endpoint (moto's server), same contract."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import pytest

from hub.errors import ServiceUnavailable
from hub.storage import BlobNotFound, LocalBlobStore, S3BlobStore, open_blob_store

BUCKET = "licence-hub"
MALFORMED_KEYS = (
    "../etc/passwd",
    "../../" + "a" * 58,
    "AB" * 32,  # uppercase hex of the right length
    "ab" * 31,  # short
    "ab" * 32 + "\n",
    "",
)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def s3_store(s3_endpoint: str) -> S3BlobStore:
    store = open_blob_store(f"s3://testing:testing@{s3_endpoint}/{BUCKET}?secure=false")
    assert isinstance(store, S3BlobStore)
    store.ensure_bucket()
    store.ensure_bucket()  # idempotent, as `licence-hub init` relies on
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalBlobStore | S3BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    s3: S3BlobStore = request.getfixturevalue("s3_store")
    return s3


def _payload() -> bytes:
    """Unique bytes per test, so tests sharing the module's bucket never see each other's objects."""
    return b"licence-hub blob " + secrets.token_bytes(32)


# ----------------------------------------------------------------------------- both stores


def test_put_returns_the_sha256_hex_of_the_bytes(store: LocalBlobStore | S3BlobStore) -> None:
    data = _payload()
    assert store.put(data) == hashlib.sha256(data).hexdigest()


def test_get_round_trips(store: LocalBlobStore | S3BlobStore) -> None:
    data = _payload() + bytes(range(256)) * 64  # binary, larger than one small buffer
    assert store.get(store.put(data)) == data


def test_empty_object_round_trips(store: LocalBlobStore | S3BlobStore) -> None:
    key = store.put(b"")
    assert key == hashlib.sha256(b"").hexdigest()
    assert store.get(key) == b""


def test_put_of_the_same_bytes_is_idempotent(store: LocalBlobStore | S3BlobStore) -> None:
    data = _payload()
    first = store.put(data)
    second = store.put(data)
    assert first == second
    assert store.get(second) == data


def test_different_bytes_get_different_keys(store: LocalBlobStore | S3BlobStore) -> None:
    a, b = _payload(), _payload()
    key_a, key_b = store.put(a), store.put(b)
    assert key_a != key_b
    assert (store.get(key_a), store.get(key_b)) == (a, b)


def test_exists(store: LocalBlobStore | S3BlobStore) -> None:
    data = _payload()
    key = hashlib.sha256(data).hexdigest()
    assert store.exists(key) is False
    store.put(data)
    assert store.exists(key) is True


def test_get_of_an_unknown_key_raises_blob_not_found(store: LocalBlobStore | S3BlobStore) -> None:
    unknown = hashlib.sha256(_payload()).hexdigest()
    with pytest.raises(BlobNotFound) as caught:
        store.get(unknown)
    assert caught.value.status == 404
    assert caught.value.code == "blob_not_found"


@pytest.mark.parametrize("key", MALFORMED_KEYS)
def test_malformed_keys_raise_blob_not_found(store: LocalBlobStore | S3BlobStore, key: str) -> None:
    with pytest.raises(BlobNotFound):
        store.get(key)
    with pytest.raises(BlobNotFound):
        store.exists(key)


def test_ping(store: LocalBlobStore | S3BlobStore) -> None:
    store.ping()


# ----------------------------------------------------------------------------- local files


def test_local_file_lives_at_root_ab_cd_key_and_no_temp_files_remain(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    data = _payload()
    key = store.put(data)
    store.put(data)
    path = root / key[:2] / key[2:4] / key
    assert path.read_bytes() == data
    assert _tree(root) == {key[:2], f"{key[:2]}/{key[2:4]}", f"{key[:2]}/{key[2:4]}/{key}"}
    assert not [p for p in root.rglob("*") if p.name.startswith(".tmp-")]


def test_local_put_does_not_rewrite_an_existing_object(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    data = _payload()
    key = store.put(data)
    path = tmp_path / "blobs" / key[:2] / key[2:4] / key
    before = path.stat()
    store.put(data)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_local_malformed_keys_never_reach_outside_the_root(tmp_path: Path) -> None:
    """Without key validation these keys would read files outside the root (pathlib drops the prefix)."""
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    store.ping()
    secret = tmp_path / "outside" / "secret"
    secret.parent.mkdir()
    secret.write_bytes(b"not a blob")
    before = _tree(tmp_path)
    traversal = os.path.relpath(secret, root / "xx" / "yy")
    for key in (str(secret), traversal, *MALFORMED_KEYS):
        with pytest.raises(BlobNotFound):
            store.get(key)
        with pytest.raises(BlobNotFound):
            store.exists(key)
    assert (root / "xx" / "yy" / traversal).resolve() == secret  # the traversal key did point at it
    assert _tree(tmp_path) == before
    assert secret.read_bytes() == b"not a blob"


def test_local_ping_creates_the_root(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    LocalBlobStore(root).ping()
    assert root.is_dir()


# ----------------------------------------------------------------------------- S3


def test_s3_ping_against_a_missing_bucket_is_service_unavailable(s3_endpoint: str) -> None:
    store = open_blob_store(f"s3://testing:testing@{s3_endpoint}/no-such-bucket-{secrets.token_hex(4)}?secure=false")
    with pytest.raises(ServiceUnavailable) as caught:
        store.ping()
    assert caught.value.status == 503
    assert "does not exist" in caught.value.detail


def test_s3_objects_are_stored_under_their_digest(s3_store: S3BlobStore) -> None:
    data = _payload()
    key = s3_store.put(data)
    names = {o.object_name for o in s3_store.client.list_objects(BUCKET, prefix=key)}
    assert names == {key}


def test_s3_ensure_bucket_creates_a_missing_bucket(s3_endpoint: str) -> None:
    store = open_blob_store(f"s3://testing:testing@{s3_endpoint}/fresh-{secrets.token_hex(4)}?secure=false")
    assert isinstance(store, S3BlobStore)
    with pytest.raises(ServiceUnavailable):
        store.ping()
    store.ensure_bucket()
    store.ping()
    assert store.get(store.put(b"x")) == b"x"


# ----------------------------------------------------------------------------- URL parsing


def test_open_file_url(tmp_path: Path) -> None:
    root = tmp_path / "with space" / "blobs"
    store = open_blob_store(root.as_uri())
    assert isinstance(store, LocalBlobStore)
    assert store.root == root


def test_open_s3_url_with_secure_false() -> None:
    store = open_blob_store("s3://AKID:s%2Fcret@minio.internal:9000/licence-hub?secure=false")
    assert isinstance(store, S3BlobStore)
    assert store.bucket == "licence-hub"
    assert store.client._base_url.is_https is False
    assert store.client._base_url.host == "minio.internal:9000"
    provider = store.client._provider
    assert provider is not None
    creds = provider.retrieve()
    assert (creds.access_key, creds.secret_key) == ("AKID", "s/cret")


def test_open_s3_url_is_secure_by_default() -> None:
    store = open_blob_store("s3://AKID:secret@s3.example.org/licence-hub")
    assert isinstance(store, S3BlobStore)
    assert store.client._base_url.is_https is True


@pytest.mark.parametrize("url", ["ftp://host/blobs", "http://127.0.0.1:9000/bucket", "/var/lib/blobs"])
def test_unsupported_scheme_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported storage URL scheme"):
        open_blob_store(url)
