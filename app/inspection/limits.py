"""Bounds on what reading a dataset costs, in bytes, whatever the file declares.

A dataset is opened only through ``open_bounded`` (in an inspection child, app/inspection/pool.py,
and again in the job process): the size from the store's metadata; the footer's length and magic
from the file's last 8 bytes, before any parsing (an encrypted ``PARE`` footer is refused, since
pyarrow would read whatever length it declares; a footer's in-memory form is many times its
size); then rows, columns and column names from the footer. The target is read as a dictionary,
row group by row group, each group's ``total_uncompressed_size`` checked before it is decoded, up
to a row and a byte budget; label lengths are checked on the dictionary. Where the budget stops
the scan, the footer's column statistics decide what the sample cannot; the job process checks
every row again, so a check left to it is late, never skipped.
"""

from __future__ import annotations

import struct

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.core.errors import TooLarge, UserError
from app.core.settings import Settings
from app.core.storage import ObjectInfo, Store
from app.inspection.reading import check_size, data_error, open_footer, raise_if_out_of_memory
from app.inspection.record_limits import TARGET_BATCH_ROWS, FileBounds
from ml.errors import DataProblem
from ml.schema import MAX_CLASSES, TARGET, check_target, nan_as_null

# Parquet files end with a 4-byte little-endian footer length and the magic ``PAR1``.
_TAIL_BYTES = 8


def open_bounded(store: Store, key: str, info: ObjectInfo, settings: Settings) -> pq.ParquetFile:
    """The Parquet file at ``key`` (version ``info.etag``) after the size, footer, row, column and
    column-name limits; raises TooLarge (413) or UserError (422) naming the limit."""
    check_size(info, settings.max_dataset_bytes)
    if info.size >= _TAIL_BYTES:  # shorter: open_footer refuses it as not Parquet
        check_tail(store.read_range(key, info.size - _TAIL_BYTES, _TAIL_BYTES, etag=info.etag), settings)
    source = open_footer(store, key, info)
    check_footer(source.metadata, settings)
    return source


def with_dictionary(store: Store, key: str, info: ObjectInfo, source: pq.ParquetFile, target: str) -> pq.ParquetFile:
    """The file of ``source`` opened again, its footer not read twice, with ``target`` (which
    must exist: pyarrow refuses to open a file naming a column it lacks) read as a dictionary."""
    reader = pa.PythonFile(store.open_ranged(key, info), mode="r")
    return pq.ParquetFile(reader, metadata=source.metadata, read_dictionary=[target])


def check_tail(tail: bytes, settings: Settings) -> None:
    """Refuse, from a file's last 8 bytes and before any parsing, a footer pyarrow would read
    whatever its size: an encrypted footer (magic ``PARE``, which this service cannot read and
    whose length pyarrow trusts) or a plain one over ``max_footer_bytes``."""
    length, magic = struct.unpack("<i4s", tail)
    if magic == b"PARE":
        raise UserError(
            "The file's Parquet footer is encrypted (Parquet modular encryption); this service reads plain files only.",
            code="dataset.encrypted",
            hint="Write the file without encryption (no encryption_properties in pyarrow's writer).",
            status=422,
        )
    if magic != b"PAR1":
        raise UserError(
            "The uploaded file does not end with Parquet's magic bytes (PAR1).",
            code="dataset.not_parquet",
            hint="Write the data with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table "
            "and upload the whole file (a truncated upload looks like this too).",
            status=422,
        )
    if not 0 < length <= settings.max_footer_bytes:
        raise TooLarge(
            f"The file's Parquet footer is {length:,} bytes; the limit is {settings.max_footer_bytes:,}.",
            code="dataset.footer_too_large",
            hint="Write fewer columns or fewer, larger row groups (pyarrow's row_group_size), "
            "or ask an operator to raise TABJOB_MAX_FOOTER_BYTES.",
        )


def check_footer(metadata: pq.FileMetaData, settings: Settings) -> None:
    """Rows, columns and column names from the parsed footer: each bounded, since they are kept
    in the dataset's and the model's records and shown on every page about them."""
    rows, columns = metadata.num_rows, metadata.num_columns
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
    names = [metadata.schema.column(j).path for j in range(columns)]
    longest = max(names, key=len, default="")
    if len(longest) > settings.max_column_name_chars:
        raise UserError(
            f"The column name '{longest[:40]}…' is {len(longest):,} characters; the limit is "
            f"{settings.max_column_name_chars:,}.",
            code="dataset.column_name_too_long",
            hint="Rename the column to something shorter.",
            status=422,
        )
    total = sum(len(name.encode()) for name in names)
    if total > settings.max_column_names_bytes:
        raise TooLarge(
            f"The column names take {total:,} bytes together; the limit is {settings.max_column_names_bytes:,}.",
            code="dataset.column_names_too_large",
            hint="Use shorter column names, or fewer columns.",
        )


def scan_target(source: pq.ParquetFile, settings: Settings, target: str = TARGET, *, whole: bool = False) -> None:
    """Refuse a target (the column ``target``) that cannot train (all missing, one class, too many
    classes, a label over ``max_label_chars``) or whose chunks are too big to decode.

    Reads row group by row group, in batches of TARGET_BATCH_ROWS, at most ``target_scan_rows``
    rows and ``target_scan_bytes`` uncompressed bytes (``whole``: every row, as the worker does).
    ``source`` must read ``target`` as a dictionary (``open_bounded(target=...)``): a file of a
    few long labels repeated stays a few labels in memory, where decoding it would repeat them.

    Raises UserError (422) for the data problems ``ml.schema.check_target`` names, TooLarge (413)
    for a column chunk over ``max_target_chunk_bytes``.
    """
    metadata = source.metadata
    index = next((j for j in range(metadata.num_columns) if metadata.schema.column(j).path == target), None)
    seen, scanned, decoded = None, 0, 0
    max_rows = metadata.num_rows if whole else settings.target_scan_rows
    try:
        for group in range(metadata.num_row_groups):
            chunk_bytes = metadata.row_group(group).column(index).total_uncompressed_size if index is not None else 0
            if chunk_bytes > settings.max_target_chunk_bytes:
                raise TooLarge(
                    f"The column '{target}' holds {chunk_bytes:,} bytes in row group {group} once uncompressed; "
                    f"the limit is {settings.max_target_chunk_bytes:,}.",
                    code="dataset.target_chunk_too_large",
                    hint="Write smaller row groups (pyarrow's row_group_size) or shorter labels.",
                )
            if not whole and decoded + chunk_bytes > settings.target_scan_bytes and scanned:
                break  # the byte budget is spent: the statistics and the worker decide the rest
            decoded += chunk_bytes
            for batch in source.iter_batches(batch_size=TARGET_BATCH_ROWS, columns=[target], row_groups=[group]):
                present = _present_values(batch.column(0), target, settings.max_label_chars)
                seen = present if seen is None else pc.unique(pa.concat_arrays([seen, present]))
                scanned += batch.num_rows
                if len(seen) > MAX_CLASSES or scanned >= max_rows:
                    break
            if (seen is not None and len(seen) > MAX_CLASSES) or scanned >= max_rows:
                break
    except (pa.ArrowException, OSError) as exc:
        raise_if_out_of_memory(exc)
        raise UserError(
            f"The column '{target}' could not be read ({exc}); the file is damaged or truncated.",
            code="dataset.corrupt",
            hint="Write and upload the file again.",
            status=422,
        ) from exc
    seen = seen if seen is not None else pa.array([], type=pa.null())
    complete = scanned >= metadata.num_rows
    one_value = _statistics_show_one_value(source, target)
    if not complete and len(seen) <= MAX_CLASSES and (len(seen) >= 2 or not one_value):
        return  # the sample cannot refuse it and the statistics do not: the worker reads every row
    try:
        check_target(seen, target)
    except DataProblem as problem:
        raise data_error(problem) from problem


def _present_values(values: pa.Array, target: str, max_label_chars: int) -> pa.Array:
    """The distinct non-missing values of one batch of the target, after the label length check
    (on the dictionary, never on the decoded column)."""
    if pa.types.is_dictionary(values.type):
        distinct = pc.unique(values)
        values = distinct.dictionary.take(pc.drop_null(distinct.indices))
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_binary(values.type):
        longest = pc.max(pc.utf8_length(values) if not pa.types.is_binary(values.type) else pc.binary_length(values))
        if longest.is_valid and longest.as_py() > max_label_chars:
            raise UserError(
                f"A value of the column '{target}' is {longest.as_py():,} characters long; labels may be at most "
                f"{max_label_chars:,}.",
                code="dataset.label_too_long",
                hint="Map the labels to short names or codes before uploading.",
                status=422,
            )
    return pc.unique(pc.drop_null(nan_as_null(values)))


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


def check_local_file(path: str, bounds: FileBounds, target: str | None) -> None:
    """The submission's byte bounds again, in the job process, on every row of the downloaded
    file (``target`` None: a predict, no labels to read). Raises TooLarge or UserError."""
    with open(path, "rb") as file:
        file.seek(0, 2)
        if file.tell() >= _TAIL_BYTES:
            file.seek(-_TAIL_BYTES, 2)
            check_tail(file.read(_TAIL_BYTES), bounds)  # type: ignore[arg-type]
    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise_if_out_of_memory(exc)
        return  # not Parquet: the ml call says so in its own words
    check_footer(source.metadata, bounds)  # type: ignore[arg-type]
    if target and target in source.schema_arrow.names:
        labels = pq.ParquetFile(path, metadata=source.metadata, read_dictionary=[target])
        scan_target(labels, bounds, target, whole=True)  # type: ignore[arg-type]
