"""CSV in, Parquet inside: a CSV file is converted on the user's side before it is uploaded.

The service's contract stays Parquet. pyarrow's CSV reader infers each column's type from its
values (integers, floats, booleans, dates and timestamps, text; empty cells as nulls); the
conversion says what it inferred, so a column read as text that should be numbers is seen before
a fit, not after.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".tsv")


@dataclass(frozen=True)
class CsvConversion:
    """What a CSV file became: its rows, and each column's inferred type (``int64``, ``double``, ``string``...)."""

    path: str
    rows: int
    columns: dict[str, str]

    def describe(self) -> str:
        """One line a person reads: the rows and the inferred types."""
        kinds = ", ".join(f"{name}: {kind}" for name, kind in self.columns.items())
        return f"Read {Path(self.path).name} as CSV ({self.rows:,} rows); inferred types: {kinds}."


def is_csv(path: Path) -> bool:
    """Whether ``path`` names a CSV (or TSV) file, by its suffix (compressed ones included)."""
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in CSV_SUFFIXES)


def csv_to_parquet(path: Path) -> tuple[bytes, CsvConversion]:
    """The Parquet bytes of the CSV file at ``path`` and what was inferred.

    Raises ``ValueError`` naming the problem when pyarrow cannot read the file as CSV.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    try:
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path} could not be read as CSV: {exc}") from exc
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    conversion = CsvConversion(str(path), table.num_rows, {f.name: str(f.type) for f in table.schema})
    return buffer.getvalue(), conversion
