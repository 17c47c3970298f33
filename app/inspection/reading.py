"""Reading what a dataset is from the store without downloading it: the Parquet footer and,
where a check needs it, one column, fetched with range requests."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from app.core.errors import TabjobError, UserError
from app.core.storage import ObjectInfo, Store
from app.inspection.record_limits import check_size, data_error  # noqa: F401  (re-exported for the checks here)
from ml.schema import TARGET, column_kind, describe_type


def raise_if_out_of_memory(exc: BaseException) -> None:
    """Raise MemoryError for an Arrow failure that is one in disguise: the Parquet reader turns a
    failed allocation (std::bad_alloc under the inspection child's RLIMIT_AS) into an OSError
    about thrift, which would otherwise read as a damaged file."""
    if isinstance(exc, MemoryError) or "bad_alloc" in str(exc):
        raise MemoryError(str(exc)) from exc


def open_footer(store: Store, key: str, info: ObjectInfo) -> pq.ParquetFile:
    """The Parquet file behind ``key``, of which only the footer has been read so far."""
    reader = store.open_ranged(key, info)
    try:
        return pq.ParquetFile(pa.PythonFile(reader, mode="r"))
    except (TabjobError, MemoryError):  # the store failed, the file changed, or the child's limit
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise_if_out_of_memory(exc)
        raise UserError(
            f"The uploaded file is not a readable Parquet file ({exc}).",
            code="dataset.not_parquet",
            hint="Write the data with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table "
            "and upload the whole file (a truncated upload looks like this too).",
            status=422,
        ) from exc


def read_column(source: pq.ParquetFile, name: str) -> pa.ChunkedArray:
    """One column (range reads of its chunks only); a corrupt chunk is the user's problem."""
    try:
        return source.read(columns=[name]).column(0)
    except TabjobError:  # the store failed or the file changed: not the file's format
        raise
    except (pa.ArrowException, OSError) as exc:
        raise_if_out_of_memory(exc)
        raise UserError(
            f"The column '{name}' could not be read ({exc}); the file is damaged or truncated.",
            code="dataset.corrupt",
            hint="Write and upload the file again.",
            status=422,
        ) from exc


def describe(source: pq.ParquetFile) -> dict[str, Any]:
    """Rows and columns of a Parquet file, as the API shows them."""
    columns = [
        {"name": f.name, "type": describe_type(f.type), "kind": column_kind(f.type) or "unsupported"}
        for f in source.schema_arrow
    ]
    return {
        "rows": source.metadata.num_rows,
        "columns": columns,
        "has_target": TARGET in source.schema_arrow.names,
    }
