"""Limits that need no Parquet reader: what the API hands out for uploads, the bounds a job
process is sent, and the size of what a job's record keeps.

Kept apart from ``app.inspection.limits`` (which reads Parquet footers and labels with pyarrow) so the
worker and the API process, which never read a tenant's file themselves, do not import pyarrow:
about 20 MiB of PSS in each of them on ``tabjob stack``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.core.errors import TooLarge, UserError
from app.core.settings import Settings
from app.core.storage import ObjectInfo, Store
from ml.errors import DataProblem

# Rows of the target decoded at once: the scan's memory, whatever the file's row groups.
TARGET_BATCH_ROWS = 64 * 1024


def upload_form(store: Store, key: str, max_bytes: int) -> dict[str, object]:
    """The POST upload of ``key`` bounded to ``max_bytes``, as ``UploadForm`` fields."""
    url, fields, _ = store.presign_upload_form(key, max_bytes)
    return {"url": url, "fields": fields, "max_bytes": max_bytes}


def refuse_put_uploads(settings: Settings) -> None:
    """Refuse to hand out an unbounded PUT URL where the deployment turned them off."""
    if not settings.upload_put_urls:
        raise UserError(
            "This service accepts only size-bounded uploads, which this route cannot give.",
            code="upload.put_disabled",
            hint="Create datasets with POST /v1/datasets and upload with its upload_form.",
            status=409,
        )


@dataclass(frozen=True)
class FileBounds:
    """The limits a job process applies to its downloaded dataset (it has no settings of its own:
    the worker sends these with the job). Attribute names are the settings' names."""

    max_footer_bytes: int
    max_dataset_rows: int
    max_dataset_columns: int
    max_column_name_chars: int
    max_column_names_bytes: int
    max_target_chunk_bytes: int
    max_label_chars: int
    target_scan_rows: int
    target_scan_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> FileBounds:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


def check_result_record(summary: dict[str, Any], settings: Settings) -> None:
    """Refuse a job result too big to keep in the job record (served by GET /v1/jobs/{id},
    /v1/models and the webhook): categories found by the worker, which reads every row, over
    ``max_category_chars``, or the whole over ``max_result_record_bytes``."""
    categories = ((summary.get("features") or {}).get("categories")) or {}
    for column, values in categories.items():
        longest = max((len(str(v)) for v in values), default=0)
        if longest > settings.max_category_chars:
            raise UserError(
                f"A category of the column '{column[:80]}' is {longest:,} characters long; the limit is "
                f"{settings.max_category_chars:,}.",
                code="dataset.category_too_long",
                hint="Map long text values to short codes, or drop the column.",
                status=422,
            )
    size = len(json.dumps(summary, default=str))
    if size > settings.max_result_record_bytes:
        raise TooLarge(
            f"The job's result (features, categories, classes) takes {size:,} bytes; the limit is "
            f"{settings.max_result_record_bytes:,}.",
            code="job.record_too_large",
            hint="Use fewer or shorter column names and categories.",
        )


def data_error(problem: DataProblem) -> UserError:
    """The API's error for a data problem found by ``ml`` (422: the request was fine, the data not)."""
    return UserError(problem.message, code=problem.code, hint=problem.hint, status=422)


def check_size(info: ObjectInfo, max_bytes: int) -> None:
    if info.size == 0:
        raise UserError(
            "The uploaded file is empty (0 bytes).",
            code="dataset.empty_file",
            hint="Upload the Parquet file again; the PUT may have been interrupted.",
            status=422,
        )
    if info.size > max_bytes:
        raise TooLarge(
            f"The dataset is {info.size:,} bytes; the limit is {max_bytes:,} bytes.",
            code="dataset.too_large",
            hint="Split the data, drop unused columns, or ask an operator to raise TABJOB_MAX_DATASET_BYTES.",
        )
