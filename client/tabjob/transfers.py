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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from tabjob.csv_input import CsvConversion, csv_to_parquet, is_csv
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


def send(storage: httpx.Client, form: dict[str, Any], source: Source, on_bytes: ProgressCallback | None) -> None:
    """POST ``source`` with a new dataset's ``upload_form`` (its fields, then the file last: the
    store refuses a file over the form's size limit); reports ``on_bytes(sent, total)``."""
    try:
        with source.open() as raw:
            files = {"file": (source.name or "data.parquet", _Counting(raw, source.size, on_bytes))}
            response = storage.post(form["url"], data=form["fields"], files=files)
    except httpx.HTTPError as exc:
        raise ApiError(
            0, "client.store_unreachable", f"Cannot reach the object store to upload: {exc}", retryable=True
        ) from exc
    if response.status_code >= 300:
        raise ApiError(response.status_code, "upload.failed", f"The store refused the upload: {response.text[:300]}")


class _Counting(io.RawIOBase):
    """A binary reader that reports how many bytes were read so far."""

    def __init__(self, raw: BinaryIO, total: int, on_bytes: ProgressCallback | None) -> None:
        self.raw, self.total, self.on_bytes, self.done = raw, total, on_bytes, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.done += len(chunk)
        if self.on_bytes and chunk:
            self.on_bytes(self.done, self.total)
        return chunk


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


@dataclass(frozen=True)
class Source:
    """What ``upload`` was given, as bytes to send: their size, a way to open them, a file name."""

    size: int
    open: Callable[[], BinaryIO]
    name: str | None = None
    csv: CsvConversion | None = None  # what a CSV file was read as, when it was one


def upload_source(data: Any) -> Source:
    """The bytes of what ``upload`` was given (a path to Parquet or CSV, Parquet bytes, a Table or
    a DataFrame). A CSV file becomes Parquet here (``tabjob.csv_input``); ``Source.csv`` says what
    was inferred."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        blob = bytes(data)
        return Source(len(blob), lambda: io.BytesIO(blob))
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"No such file: {path}")
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder; upload takes a Parquet or CSV file.")
        if is_csv(path):
            converted, conversion = csv_to_parquet(path)
            return Source(len(converted), lambda: io.BytesIO(converted), path.name, conversion)
        return Source(path.stat().st_size, lambda: path.open("rb"), path.name)
    blob = parquet_bytes(data)
    return Source(len(blob), lambda: io.BytesIO(blob))


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
