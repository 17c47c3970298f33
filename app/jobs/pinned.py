"""The job process reads exactly the dataset that was checked at submission, and no more bytes.

A dataset's upload URL stays valid after submission, so the object behind the job's key may be
replaced at any moment, also between the worker's look at it and its download. The download is
therefore conditional: ``If-Match`` with the ETag recorded when the file was checked (S3, GCS
and SeaweedFS answer 412 when it no longer matches), and it stops at the size recorded then.
Whatever the store does, the job never trains on bytes other than those checked.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# Imported here, not in the call: this module is preloaded in the job processes' forkserver, so
# a job process's first job does not pay for app.inspection.limits and the settings it imports (0.24 s).
from app.core.errors import TabjobError
from app.inspection.limits import check_local_file
from ml.errors import DataProblem
from ml.io import CHUNK_BYTES, Progress, http_client

_MD5_ETAG = re.compile(r"^[0-9a-fA-F]{32}$")


def _changed(detail: str) -> DataProblem:
    return DataProblem(
        "dataset.changed",
        f"The dataset was replaced after the job was submitted ({detail}); the job does not run on "
        "data that was not checked.",
        "Upload the data as a new dataset and submit the job again.",
    )


def fetch_pinned(
    url: str, *, etag: str, size_bytes: int, scratch_dir: str | None = None, progress: Progress | None = None
) -> Path:
    """Download the object at ``url`` into a scratch file, only if it is still version ``etag``
    and holds exactly ``size_bytes`` bytes.

    Raises:
      DataProblem: ``dataset.changed`` when the ETag or the size differs.
      httpx.HTTPError: transport or other status problems (the caller retries those).
    """
    fd, name = tempfile.mkstemp(prefix="tabjob-", suffix=".parquet", dir=scratch_dir)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            http_client().stream("GET", url, headers={"If-Match": f'"{etag}"'}) as response,
        ):
            if response.status_code == 412:
                raise _changed("its version is not the one checked")
            response.raise_for_status()
            announced = int(response.headers.get("content-length") or 0)
            if announced and announced != size_bytes:
                raise _changed(f"{announced:,} bytes where {size_bytes:,} were checked")
            done = 0
            # A single PUT's ETag is the MD5 of its bytes: then the bytes themselves are checked,
            # whatever the store does with If-Match while the object is being overwritten.
            digest = hashlib.md5(usedforsecurity=False) if _MD5_ETAG.match(etag) else None
            for chunk in response.iter_bytes(CHUNK_BYTES):
                done += len(chunk)
                if done > size_bytes:  # a store that ignored If-Match: stop at the checked size
                    raise _changed(f"more than the {size_bytes:,} bytes checked")
                out.write(chunk)
                if digest is not None:
                    digest.update(chunk)
                if progress:
                    progress("downloading", done / size_bytes, None)
            if done != size_bytes:
                raise _changed(f"{done:,} bytes where {size_bytes:,} were checked")
            if digest is not None and digest.hexdigest() != etag.lower():
                raise _changed("its bytes do not match the version checked")
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def prepare(operation: str, kwargs: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
    """The keyword arguments of an ``ml`` call with the dataset downloaded as checked.

    ``kwargs`` carries ``data_etag`` and ``data_bytes`` (what submission checked) beside
    ``data_url``, and ``evaluate_etag`` and ``evaluate_bytes`` beside a fit's ``evaluate_url``; a
    store URL is downloaded pinned and the call gets the local file instead. A predict must carry
    the model's digest.
    """
    kwargs = dict(kwargs)
    bounds = kwargs.pop("bounds", None)
    if operation in ("predict", "predict_prepared") and not kwargs.get("model_sha256"):
        raise DataProblem(
            "model.tampered",
            "The model has no recorded digest, so it cannot be verified and is not loaded.",
            "Train the model again.",
        )
    for url_key, etag_key, size_key in (
        ("data_url", "data_etag", "data_bytes"),
        ("evaluate_url", "evaluate_etag", "evaluate_bytes"),
    ):
        etag, size_bytes = kwargs.pop(etag_key, None), kwargs.pop(size_key, None)
        if url_key in kwargs:
            kwargs[url_key] = _pinned_path(str(kwargs[url_key]), etag, size_bytes, kwargs, progress)
    if bounds is not None and "data_url" in kwargs:  # the training or predict data, not the evaluation's
        check_bounds(str(kwargs["data_url"]), bounds, operation, kwargs)
    return kwargs


def _pinned_path(
    url: str, etag: str | None, size_bytes: int | None, kwargs: dict[str, Any], progress: Progress | None
) -> str:
    """A local file of the object at ``url`` as checked (a local path is kept: nobody else can swap
    it between check and read; a model step's prepared matrix has no URL here, only workers write it)."""
    if urlparse(url).scheme not in ("http", "https"):
        return url
    if not etag or not size_bytes:
        raise _changed("no checked version was recorded for it")
    path = fetch_pinned(
        url, etag=etag, size_bytes=int(size_bytes), scratch_dir=kwargs.get("scratch_dir"), progress=progress
    )
    return str(path)


def check_bounds(path: str, bounds: Any, operation: str, kwargs: dict[str, Any]) -> None:
    """The submission's byte bounds on the downloaded file (``app.inspection.limits``), as a DataProblem."""
    # A classification's labels (a regression's target is numbers: no class or label rules apply).
    fits = operation == "fit" or (operation == "prepare" and kwargs.get("kind", "fit") == "fit")
    reads_labels = fits and kwargs.get("task") != "regression"
    try:
        check_local_file(path, bounds, kwargs.get("target", "y") if reads_labels else None)
    except TabjobError as exc:
        raise DataProblem(exc.code, exc.message, exc.hint or "") from exc
