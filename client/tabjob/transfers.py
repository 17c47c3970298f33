"""Bytes to and from the object store through presigned URLs, and what ``upload`` accepts.

The store's URLs carry their own authorization, so these functions take the client's store
connection (which never carries the API key), not the API's.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tabjob.errors import ApiError

CHUNK_BYTES = 1024 * 1024
ProgressCallback = Callable[[int, int], None]


@contextmanager
def stream(storage: httpx.Client, url: str) -> Iterator[httpx.Response]:
    """A streamed GET of a presigned URL; store and transport failures become ApiError."""
    try:
        with storage.stream("GET", url) as response:
            if response.status_code >= 300:
                body = response.read()[:300]
                raise ApiError(response.status_code, "download.failed", f"The store refused the download: {body!r}")
            yield response
    except httpx.HTTPError as exc:
        raise ApiError(
            0, "client.store_unreachable", f"Cannot reach the object store to download: {exc}", retryable=True
        ) from exc


def put(storage: httpx.Client, url: str, chunks: Iterator[bytes], size: int, on_bytes: ProgressCallback | None) -> None:
    """PUT ``size`` bytes to a presigned URL, reporting ``on_bytes(sent, total)``."""
    try:
        response = storage.put(url, content=counted(chunks, size, on_bytes), headers={"content-length": str(size)})
    except httpx.HTTPError as exc:
        raise ApiError(
            0, "client.store_unreachable", f"Cannot reach the object store to upload: {exc}", retryable=True
        ) from exc
    if response.status_code >= 300:
        raise ApiError(response.status_code, "upload.failed", f"The store refused the upload: {response.text[:300]}")


def save(storage: httpx.Client, url: str, path: Path, on_bytes: ProgressCallback | None) -> None:
    """Stream a presigned URL's bytes into ``path``, reporting ``on_bytes(done, total)``."""
    with stream(storage, url) as response, path.open("wb") as out:
        total = int(response.headers.get("content-length") or 0)
        done = 0
        for chunk in response.iter_bytes(CHUNK_BYTES):
            out.write(chunk)
            done += len(chunk)
            if on_bytes:
                on_bytes(done, total)


def upload_source(data: Any) -> tuple[int, Iterator[bytes], str | None]:
    """(size, chunks, default name) of what ``upload`` was given."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        blob = bytes(data)
        return len(blob), iter([blob]) if blob else iter(()), None
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"No such file: {path}")
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder; upload takes a Parquet file.")
        return path.stat().st_size, file_chunks(path), path.name
    blob = parquet_bytes(data)
    return len(blob), iter([blob]), None


def parquet_bytes(data: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(data, pa.Table):
        table = data
    elif "pandas" in sys.modules and isinstance(data, sys.modules["pandas"].DataFrame):
        table = pa.Table.from_pandas(data, preserve_index=False)
    else:
        raise TypeError(
            f"upload takes a path, Parquet bytes, a pyarrow.Table or a pandas.DataFrame, not {type(data).__name__}."
        )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def counted(chunks: Iterator[bytes], total: int, on_bytes: ProgressCallback | None) -> Iterator[bytes]:
    done = 0
    for chunk in chunks:
        done += len(chunk)
        if on_bytes:
            on_bytes(done, total)
        yield chunk
