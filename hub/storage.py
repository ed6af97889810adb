"""Content-addressed object storage: local files (embedded) or MinIO/S3 (distributed), same interface."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error

from hub.errors import NotFound, ServiceUnavailable, StorageFull

_KEY = re.compile(r"[0-9a-f]{64}")  # used with fullmatch: "$" would also accept a trailing newline


class BlobNotFound(NotFound):
    code = "blob_not_found"
    title = "No stored object has this digest"


class BlobStore(Protocol):
    """Objects are keyed by their SHA-256 and never overwritten (DESIGN.md §2)."""

    def put(self, data: bytes) -> str: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def ping(self) -> None: ...


def _check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise BlobNotFound("object keys are lowercase hex SHA-256 digests")
    return key


class LocalBlobStore:
    """Files under ``root/ab/cd/<sha256>``, written atomically (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            if exc.errno in {errno.ENOSPC, errno.EDQUOT}:
                raise StorageFull(f"no space left under {self.root}") from exc
            raise
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(_check_key(key)).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound from exc

    def exists(self, key: str) -> bool:
        return self._path(_check_key(key)).exists()

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise ServiceUnavailable(f"the blob directory {self.root} is not writable")


class ObjectStoreUnavailable(ServiceUnavailable):
    code = "object_store_unavailable"
    title = "The object store is unreachable; nothing was saved. Retry later"


@contextmanager
def _reachable() -> Iterator[None]:
    """An object store that cannot be reached is an outage (503, retried by jobs), not a bug (500)."""
    try:
        yield
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ObjectStoreUnavailable("the object store is unreachable") from exc


class S3BlobStore:
    """A bucket on MinIO or any S3 endpoint, through the minio SDK."""

    def __init__(self, client: Minio, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        if not self.exists(key):
            with _reachable():
                self.client.put_object(self.bucket, key, io.BytesIO(data), len(data))
        return key

    def get(self, key: str) -> bytes:
        try:
            with _reachable():
                response = self.client.get_object(self.bucket, _check_key(key))
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject"}:
                raise BlobNotFound from exc
            raise
        try:
            with _reachable():
                return response.read()
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            with _reachable():
                self.client.stat_object(self.bucket, _check_key(key))
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject", "NotFound"}:
                return False
            raise
        return True

    def ping(self) -> None:
        try:
            found = self.client.bucket_exists(self.bucket)
        except Exception as exc:
            raise ServiceUnavailable("the object store is unreachable") from exc
        if not found:
            raise ServiceUnavailable(f"the bucket {self.bucket} does not exist; run `licence-hub init`")


def open_blob_store(url: str) -> LocalBlobStore | S3BlobStore:
    """``file:///path`` or ``s3://key:secret@host:port/bucket?secure=false`` (DESIGN.md §2)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalBlobStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        bucket = parts.path.strip("/")
        secure = parse_qs(parts.query).get("secure", ["true"])[0].lower() not in {"false", "0", "no"}
        region = parse_qs(parts.query).get("region", [None])[0]
        # minio's default pool retries with backoff for several seconds; a down endpoint should
        # surface quickly (readiness, 503 to the caller) and callers such as Celery tasks retry.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=2.0, read=60.0),
            retries=urllib3.Retry(total=2, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]),
            maxsize=16,
        )
        client = Minio(
            f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname),
            access_key=unquote(parts.username or ""),
            secret_key=unquote(parts.password or ""),
            secure=secure,
            region=region,
            http_client=http,
        )
        return S3BlobStore(client, bucket)
    msg = f"unsupported storage URL scheme {parts.scheme!r}; use file:// or s3://"
    raise ValueError(msg)
