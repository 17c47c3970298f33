"""The object store behind the S3 API (SeaweedFS, GCS, MinIO...), through the ``minio`` SDK.

Two clients: ``client`` talks to the internal endpoint (workers, the API's own reads);
``signer`` is configured with the public endpoint and only signs URLs, offline (its region is
set, so it never calls out). Every key is scoped by tenant. Users only ever get URLs to PUT a
dataset or GET a result: nothing they can write is ever unpickled.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.datatypes import PostPolicy
from minio.error import S3Error

from app.core.errors import Conflict, InfraError
from app.core.settings import Settings

# Parquet footers are read backwards in small pieces; fetch a little more to save requests.
RANGE_READ_AHEAD_BYTES = 256 * 1024
# Read by the readiness check; never written, so it normally answers NoSuchKey (see Store.ping).
READY_SENTINEL_KEY = ".tabjob/readyz"


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows of an object: its size in bytes and its ETag (MD5 for single PUTs)."""

    size: int
    etag: str


def dataset_key(tenant: str, dataset_id: str) -> str:
    return f"tenants/{tenant}/datasets/{dataset_id}.parquet"


def dataset_part_key(tenant: str, dataset_id: str, part: int) -> str:
    """Part ``part`` (from 0) of a dataset in parts."""
    return f"tenants/{tenant}/datasets/{dataset_id}/part-{part:05d}.parquet"


def result_part_key(tenant: str, job_id: str, part: int) -> str:
    """Part ``part`` (from 0) of a prediction written in parts (a predict on the Dask engine)."""
    return f"tenants/{tenant}/results/{job_id}/part-{part:05d}.parquet"


def model_key(tenant: str, job_id: str) -> str:
    return f"tenants/{tenant}/models/{job_id}.pkl"


def result_key(tenant: str, job_id: str) -> str:
    return f"tenants/{tenant}/results/{job_id}.parquet"


def prepared_key(tenant: str, cache_key: str) -> str:
    """A prepared matrix (``ml.prepared``), named by its cache key (``app.usecases.prepared``)."""
    return f"tenants/{tenant}/prepared/{cache_key}.arrow"


def manifest_key(tenant: str, job_id: str) -> str:
    return f"tenants/{tenant}/jobs/{job_id}.json"


def _minio(endpoint: str, settings: Settings) -> Minio:
    parsed = urlparse(endpoint)
    pool = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=60.0),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        maxsize=16,
    )
    return Minio(
        parsed.netloc,
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=parsed.scheme == "https",
        region=settings.s3_region,
        http_client=pool,
    )


class Store:
    """Tenant-scoped object storage.

    Parameters:
      client: a Minio client for the internal endpoint.
      signer: a Minio client for the public endpoint, used only to sign URLs.
      bucket: the bucket holding everything.
      presign_expiry_s: lifetime of URLs handed to users, in seconds.
    """

    def __init__(self, *, client: Minio, signer: Minio, bucket: str, presign_expiry_s: int) -> None:
        self.client = client
        self.signer = signer
        self.bucket = bucket
        self.presign_expiry_s = presign_expiry_s

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(
            client=_minio(settings.s3_endpoint, settings),
            signer=_minio(settings.public_endpoint, settings),
            bucket=settings.s3_bucket,
            presign_expiry_s=settings.presign_expiry_s,
        )

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (local and kind; cloud buckets come from Pulumi)."""
        with _infra("create the bucket"):
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

    def ping(self) -> None:
        """Raise InfraError unless the store answers, the bucket exists and the keys may read it.

        A GET of a sentinel object (``READY_SENTINEL_KEY``, normally absent) needs only the
        object-read permission the app uses anyway (``storage.objects.get`` on GCS), not
        ``storage.buckets.get``, which the HMAC service account lacks, so ``bucket_exists``
        (HEAD bucket) would fail there. A GET, unlike a HEAD, carries an error body, so a
        missing object (``NoSuchKey``: store reachable, bucket there, request authorized) is
        told apart from a missing bucket or refused credentials.
        """
        try:
            with _infra("reach the object store"):
                response = self.client.get_object(self.bucket, READY_SENTINEL_KEY)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return
            if exc.code == "NoSuchBucket":
                raise InfraError(f"The bucket '{self.bucket}' does not exist.") from exc
            raise InfraError(f"The object store refused a read of bucket '{self.bucket}' ({exc.code}).") from exc
        response.close()
        response.release_conn()

    # URLs for users: signed for the public endpoint.
    def presign_upload(self, key: str) -> tuple[str, datetime]:
        """A URL the user PUTs bytes to, and when it expires."""
        expires = timedelta(seconds=self.presign_expiry_s)
        url = self.signer.presigned_put_object(self.bucket, key, expires=expires)
        return url, datetime.now(UTC) + expires

    def presign_upload_form(self, key: str, max_bytes: int) -> tuple[str, dict[str, str], datetime]:
        """A browser-style POST upload (URL and form fields) for ``key`` only, which the store
        refuses when the file is empty or over ``max_bytes`` (a POST policy's content-length-range;
        a PUT URL cannot carry such a bound)."""
        expires_at = datetime.now(UTC) + timedelta(seconds=self.presign_expiry_s)
        policy = PostPolicy(self.bucket, expires_at)
        policy.add_equals_condition("key", key)
        policy.add_content_length_range_condition(1, max_bytes)
        fields = self.signer.presigned_post_policy(policy)
        # The form posts to the bucket on the public endpoint (path style, as the signer signs).
        public = urlparse(self.signer.presigned_get_object(self.bucket, key, expires=timedelta(seconds=60)))
        return f"{public.scheme}://{public.netloc}/{self.bucket}", {"key": key, **fields}, expires_at

    def presign_download(self, key: str, filename: str | None = None) -> tuple[str, datetime]:
        """A URL the user GETs the object from, and when it expires."""
        expires = timedelta(seconds=self.presign_expiry_s)
        headers = {"response-content-disposition": f'attachment; filename="{filename}"'} if filename else None
        url = self.signer.presigned_get_object(self.bucket, key, expires=expires, response_headers=headers)
        return url, datetime.now(UTC) + expires

    # URLs for workers: signed for the internal endpoint.
    def internal_get_url(self, key: str, expires_s: int = 12 * 3600) -> str:
        return self.client.presigned_get_object(self.bucket, key, expires=timedelta(seconds=expires_s))

    def internal_put_url(self, key: str, expires_s: int = 12 * 3600) -> str:
        return self.client.presigned_put_object(self.bucket, key, expires=timedelta(seconds=expires_s))

    def stat(self, key: str) -> ObjectInfo | None:
        """Size and ETag of ``key``, or None when it does not exist."""
        try:
            with _infra("read object metadata"):
                info = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"):
                return None
            raise InfraError(f"The object store refused a metadata read ({exc.code}).") from exc
        return ObjectInfo(size=int(info.size or 0), etag=(info.etag or "").strip('"'))

    def read_range(self, key: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        """``length`` bytes of ``key`` from ``offset`` (one ranged GET); with ``etag``, only
        from that version of the object (If-Match), else Conflict ``dataset.changed``."""
        headers = {"If-Match": f'"{etag}"'} if etag else None
        try:
            with _infra("read from the object store"):
                response = self.client.get_object(
                    self.bucket, key, offset=offset, length=length, request_headers=headers
                )
                try:
                    return response.read()
                finally:
                    response.close()
                    response.release_conn()
        except S3Error as exc:
            # The object vanished or shrank between its stat and this read: it was replaced.
            raise Conflict(
                "The file changed while it was being read.",
                code="dataset.changed",
                hint="Wait for the upload to finish, then submit again.",
            ) from exc

    def open_ranged(self, key: str, info: ObjectInfo) -> RangedReader:
        """A seekable read-only file over the version of ``key`` that ``info`` describes, which
        fetches only the ranges read."""
        return RangedReader(self, key, info)

    def written_before(self, prefix: str, before: float) -> Iterator[str]:
        """Keys under ``prefix`` last written before ``before`` (Unix seconds), listed page by page."""
        with _infra("list objects"):
            for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if item.last_modified is not None and item.last_modified.timestamp() < before:
                    yield item.object_name

    def remove(self, key: str) -> None:
        """Delete the object at ``key`` (no error when it is already gone)."""
        with _infra("delete an object"):
            self.client.remove_object(self.bucket, key)

    def put_json(self, key: str, document: Any) -> None:
        data = json.dumps(document, default=str, sort_keys=True).encode()
        with _infra("write to the object store"):
            self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type="application/json")


class RangedReader(io.RawIOBase):
    """A read-only, seekable file over one object, for pyarrow to read a Parquet footer and
    single columns without downloading the whole file. Reads ahead a little to save requests.

    Kept rather than ``pyarrow.fs.S3FileSystem``: every range here is pinned to the ETag that
    was checked (If-Match), so a file replaced mid-read is refused, which S3FileSystem cannot do.
    """

    def __init__(self, store: Store, key: str, info: ObjectInfo) -> None:
        super().__init__()
        self._store, self._key, self._size, self._etag = store, key, info.size, info.etag
        self._pos = 0
        self._buf_start, self._buf = 0, b""
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        end = self._pos + want
        if not (self._buf_start <= self._pos and end <= self._buf_start + len(self._buf)):
            length = min(max(want, RANGE_READ_AHEAD_BYTES), self._size - self._pos)
            self._buf = self._store.read_range(self._key, self._pos, length, etag=self._etag)
            self._buf_start = self._pos
            self.requests += 1
        start = self._pos - self._buf_start
        chunk = self._buf[start : start + want]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


@contextmanager
def _infra(action: str) -> Iterator[None]:
    """Turn transport failures of the store into InfraError (retried, and said to be ours)."""
    try:
        yield
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise InfraError(
            f"Could not {action}: the object store is unavailable ({type(exc).__name__}).",
            hint="This is a platform problem, not your data; it is retried automatically.",
        ) from exc
