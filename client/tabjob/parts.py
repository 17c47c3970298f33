"""Datasets in parts: upload a folder of Parquet files, or one table split into parts.

A dataset in parts (``POST /v1/datasets {"parts": K}``) is K Parquet files of one schema, each
uploaded with its own size-bounded form; the service checks each part as it would a single file,
then the whole (equal schemas, rows summed). Only the Dask engine reads such a dataset. Splitting
writes row groups of at most ROW_GROUP_ROWS rows, so a Dask worker reads a part in small pieces.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tabjob import transfers
from tabjob.results import Dataset

if TYPE_CHECKING:
    from tabjob.client import Client

ROW_GROUP_ROWS = 65_536
ProgressCallback = Callable[[int, int], None]


def part_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of ``folder`` in name order (the parts' order)."""
    found = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix == ".parquet")
    if not found:
        raise FileNotFoundError(f"No .parquet files in {folder}.")
    return found


@contextmanager
def split_file(path: str | os.PathLike[str], parts: int) -> Iterator[list[Path]]:
    """``path`` split into ``parts`` Parquet files of consecutive rows (temporary, removed after),
    read and written a row group at a time."""
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    rows = source.metadata.num_rows
    per_part = max(1, math.ceil(rows / parts))
    with tempfile.TemporaryDirectory(prefix="tabjob-parts-") as tmp:
        paths = [Path(tmp) / f"part-{i:05d}.parquet" for i in range(parts)]
        writers = [pq.ParquetWriter(p, source.schema_arrow) for p in paths]
        try:
            written = 0
            for batch in source.iter_batches(batch_size=ROW_GROUP_ROWS):
                while batch.num_rows:
                    index = min(written // per_part, parts - 1)
                    room = per_part - written % per_part if index < parts - 1 else batch.num_rows
                    piece, batch = batch.slice(0, room), batch.slice(room)
                    writers[index].write_batch(piece, row_group_size=ROW_GROUP_ROWS)
                    written += piece.num_rows
        finally:
            for writer in writers:
                writer.close()
        yield paths


def upload_parts(
    client: Client, files: list[Path], *, name: str | None = None, on_bytes: ProgressCallback | None = None
) -> Dataset:
    """Create a dataset of ``len(files)`` parts, upload each file to its form in order, and return
    the dataset as the server checked it. ``on_bytes(sent, total)`` counts every part's bytes."""
    sources = [transfers.upload_source(f) for f in files]
    total = sum(s.size for s in sources)
    created = client._call("POST", "/v1/datasets", json={"name": name, "parts": len(files)})
    done = 0
    for source, form in zip(sources, created["upload_forms"], strict=True):
        base = done

        def counted(sent: int, _: int, base: int = base) -> None:
            if on_bytes:
                on_bytes(base + sent, total)

        transfers.send(client.storage, form, source, counted)
        done += source.size
    return client.dataset(created["id"])


def upload_dataset_in_parts(
    client: Client,
    source: str | os.PathLike[str],
    *,
    parts: int | None = None,
    name: str | None = None,
    on_bytes: ProgressCallback | None = None,
) -> Dataset:
    """Upload a folder of Parquet files (one part each, in name order), or one Parquet file split
    into ``parts`` parts; returns the dataset as the server checked it."""
    path = Path(source)
    if path.is_dir():
        return upload_parts(client, part_files(path), name=name or path.name, on_bytes=on_bytes)
    if not path.exists():
        raise FileNotFoundError(f"No such file: {path}")
    with split_file(path, parts or 1) as files:
        return upload_parts(client, files, name=name or path.name, on_bytes=on_bytes)


def join_parts(storage: httpx.Client, urls: list[str], dest: Path, on_bytes: ProgressCallback | None) -> None:
    """Download a prediction written in parts and write it as one Parquet file at ``dest``, part
    after part (one part in memory at a time)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        with tempfile.TemporaryDirectory(prefix="tabjob-result-") as tmp:
            for i, url in enumerate(urls):
                part = Path(tmp) / f"{i}.parquet"
                transfers.save(storage, url, part, on_bytes)
                table = pq.read_table(part)
                writer = writer or pq.ParquetWriter(dest, table.schema)
                writer.write_table(table)
                part.unlink()
    finally:
        if writer is not None:
            writer.close()
