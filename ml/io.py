"""Reading and writing the bytes behind a URL: presigned HTTP(S) URLs, ``file://`` URLs or paths.

Downloads stream to a scratch file in chunks (never whole into memory), so Parquet can then be
read column by column. One HTTP client per process keeps connections alive between jobs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

CHUNK_BYTES = 1024 * 1024
HTTP_TIMEOUT_S = 60.0

# (phase, fraction done or None, message or None)
Progress = Callable[[str, float | None, str | None], None]

_client: httpx.Client | None = None


def http_client() -> httpx.Client:
    """The process's one keep-alive HTTP client for store URLs (created on first use, so a
    forkserver's children each get their own)."""
    global _client
    if _client is None:
        _client = httpx.Client(timeout=HTTP_TIMEOUT_S, follow_redirects=False)
    return _client


def drop_http_client() -> None:
    """Close the process's client: a forkserver that warmed up with it, so that each of its
    children makes its own (a client's connections must not be shared across a fork)."""
    global _client
    if _client is not None:
        _client.close()
        _client = None


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(url)


def fetch_to_file(
    url: str, *, scratch_dir: str | None = None, phase: str = "downloading", progress: Progress | None = None
) -> tuple[Path, bool]:
    """Make the object at ``url`` available as a local file.

    Returns the path and whether it is a temporary copy the caller must delete.
    Raises httpx.HTTPError (a transport or status problem) for HTTP URLs.
    """
    local = _local_path(url)
    if local is not None:
        return local, False
    fd, name = tempfile.mkstemp(prefix="tabjob-", suffix=".part", dir=scratch_dir)
    try:
        with os.fdopen(fd, "wb") as out, http_client().stream("GET", url) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length") or 0)
            done = 0
            for chunk in response.iter_bytes(CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                if progress and total:
                    progress(phase, done / total, None)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), True


def read_bytes(url: str) -> bytes:
    """The whole object at ``url`` (for small objects such as models)."""
    local = _local_path(url)
    if local is not None:
        return local.read_bytes()
    response = http_client().get(url)
    response.raise_for_status()
    return response.content


def write_file(url: str, path: Path, *, content_type: str = "application/octet-stream") -> None:
    """Upload the file at ``path`` to ``url`` (a presigned PUT URL or a local path)."""
    local = _local_path(url)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, local)
        return
    size = path.stat().st_size
    with path.open("rb") as body:
        response = http_client().put(
            url,
            content=_chunks(body),
            headers={"content-length": str(size), "content-type": content_type},
        )
    response.raise_for_status()


def _chunks(body):  # an iterator, so httpx streams the upload instead of buffering it
    while chunk := body.read(CHUNK_BYTES):
        yield chunk


def report(progress: Progress | None, phase: str, fraction: float | None = None, message: str | None = None) -> None:
    """Call ``progress`` when the caller gave one."""
    if progress is not None:
        progress(phase, fraction, message)


def file_sha256(url: str) -> str:
    """The sha256 (hex) of the object at ``url``, read in chunks (a local path or an HTTP(S) URL)."""
    digest = hashlib.sha256()
    local = _local_path(url)
    if local is not None:
        with local.open("rb") as body:
            while chunk := body.read(CHUNK_BYTES):
                digest.update(chunk)
        return digest.hexdigest()
    with http_client().stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
