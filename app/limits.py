"""Submission-time bounds: what the API reads of a dataset never grows with its rows.

The API opens a dataset only through ``open_bounded``: the size from the store's metadata, the
footer's length from the file's last 8 bytes (before any parsing: a footer's in-memory form is
many times its size, about 17 times for a 50,000-column file), then rows and columns from the
footer. The target column is read as a stream of small batches, up to a row cap; where the cap
stops the scan, the footer's column statistics decide what the sample cannot. The worker checks
every row again, so a check left to it here is late, never skipped.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.errors import TooLarge, UserError
from app.inspection import check_size, data_error, open_footer
from app.settings import Settings
from app.storage import ObjectInfo, Store
from ml.errors import DataProblem
from ml.schema import MAX_CLASSES, TARGET, check_target, nan_as_null

# Parquet files end with a 4-byte little-endian footer length and the magic ``PAR1``.
_TAIL_BYTES = 8
# Rows of the target decoded at once: the scan's memory, whatever the file's row groups.
TARGET_BATCH_ROWS = 64 * 1024

_gates: dict[int, threading.BoundedSemaphore] = {}
_gates_lock = threading.Lock()


@contextmanager
def inspection_slot(settings: Settings) -> Iterator[None]:
    """Hold one of the process's ``max_concurrent_inspections`` slots: parallel submissions wait
    here rather than each holding a footer and a scan in memory at once."""
    with _gates_lock:
        gate = _gates.setdefault(
            settings.max_concurrent_inspections, threading.BoundedSemaphore(settings.max_concurrent_inspections)
        )
    with gate:
        yield


def upload_form(store: Store, key: str, settings: Settings) -> dict[str, object]:
    """The size-bounded POST upload of ``key``, as ``UploadForm`` fields."""
    url, fields, _ = store.presign_upload_form(key, settings.max_dataset_bytes)
    return {"url": url, "fields": fields, "max_bytes": settings.max_dataset_bytes}


def refuse_put_uploads(settings: Settings) -> None:
    """Refuse to hand out an unbounded PUT URL where the deployment turned them off."""
    if not settings.upload_put_urls:
        raise UserError(
            "This service accepts only size-bounded uploads, which this route cannot give.",
            code="upload.put_disabled",
            hint="Create datasets with POST /v1/datasets and upload with its upload_form.",
            status=409,
        )


def open_bounded(store: Store, key: str, info: ObjectInfo, settings: Settings) -> pq.ParquetFile:
    """The Parquet file at ``key`` (version ``info.etag``) after the size, footer, row and
    column limits; raises TooLarge (413) or UserError (422) naming the limit."""
    check_size(info, settings.max_dataset_bytes)
    _check_footer_length(store, key, info, settings.max_footer_bytes)
    source = open_footer(store, key, info)
    rows, columns = source.metadata.num_rows, source.metadata.num_columns
    if rows > settings.max_dataset_rows:
        raise TooLarge(
            f"The dataset has {rows:,} rows; the limit is {settings.max_dataset_rows:,}.",
            code="dataset.too_many_rows",
            hint="Sample or split the data, or ask an operator to raise TABJOB_MAX_DATASET_ROWS.",
        )
    if columns > settings.max_dataset_columns:
        raise TooLarge(
            f"The dataset has {columns:,} columns; the limit is {settings.max_dataset_columns:,}.",
            code="dataset.too_many_columns",
            hint="Drop unused columns, or ask an operator to raise TABJOB_MAX_DATASET_COLUMNS.",
        )
    return source


def _check_footer_length(store: Store, key: str, info: ObjectInfo, max_footer_bytes: int) -> None:
    if info.size < _TAIL_BYTES:
        return  # open_footer refuses it as not Parquet
    tail = store.read_range(key, info.size - _TAIL_BYTES, _TAIL_BYTES, etag=info.etag)
    length, magic = struct.unpack("<i4s", tail)
    if magic == b"PAR1" and length > max_footer_bytes:
        raise TooLarge(
            f"The file's Parquet footer is {length:,} bytes; the limit is {max_footer_bytes:,}.",
            code="dataset.footer_too_large",
            hint="Write fewer columns or fewer, larger row groups (pyarrow's row_group_size), "
            "or ask an operator to raise TABJOB_MAX_FOOTER_BYTES.",
        )


def scan_target(source: pq.ParquetFile, max_rows: int, target: str = TARGET) -> None:
    """Refuse a target (the column ``target``) that cannot train (all missing, one class, too many
    classes), reading at most ``max_rows`` of it in batches of TARGET_BATCH_ROWS.

    Raises UserError (422) for the data problems ``ml.schema.check_target`` names.
    """
    seen, scanned = None, 0
    try:
        for batch in source.iter_batches(batch_size=TARGET_BATCH_ROWS, columns=[target]):
            values = batch.column(0)
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
            present = pc.unique(pc.drop_null(nan_as_null(values)))
            seen = present if seen is None else pc.unique(pa.concat_arrays([seen, present]))
            scanned += batch.num_rows
            if len(seen) > MAX_CLASSES or scanned >= max_rows:
                break
    except (pa.ArrowException, OSError) as exc:
        raise UserError(
            f"The column '{target}' could not be read ({exc}); the file is damaged or truncated.",
            code="dataset.corrupt",
            hint="Write and upload the file again.",
            status=422,
        ) from exc
    seen = seen if seen is not None else pa.array([], type=pa.null())
    complete = scanned >= source.metadata.num_rows
    one_value = _statistics_show_one_value(source, target)
    if not complete and len(seen) <= MAX_CLASSES and (len(seen) >= 2 or not one_value):
        return  # the sample cannot refuse it and the statistics do not: the worker reads every row
    try:
        check_target(seen, target)
    except DataProblem as problem:
        raise data_error(problem) from problem


def _statistics_show_one_value(source: pq.ParquetFile, target: str) -> bool:
    """True when every row group's statistics say the target holds one value and no nulls (so a
    partial scan of one class may be refused as a whole)."""
    metadata = source.metadata
    index = next((j for j in range(metadata.num_columns) if metadata.schema.column(j).path == target), None)
    if index is None:
        return False
    values = set()
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(index).statistics
        if stats is None or not (stats.has_min_max and stats.has_null_count) or stats.null_count:
            return False
        if stats.min != stats.max:
            return False
        values.add(stats.min)
    return len(values) == 1
