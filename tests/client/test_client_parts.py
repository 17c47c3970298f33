"""Splitting one table into parts for a dataset in parts (``tabjob.parts``), without a server."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tabjob.parts import ROW_GROUP_ROWS, part_files, split_file


def test_a_split_keeps_every_row_in_order_in_small_row_groups(tmp_path):
    table = pa.table({"a": pa.array(range(200_001)), "y": pa.array([i % 3 for i in range(200_001)])})
    source = tmp_path / "big.parquet"
    pq.write_table(table, source, row_group_size=150_000)
    with split_file(source, 3) as paths:
        parts = [pq.ParquetFile(p) for p in paths]
        assert [p.metadata.num_rows for p in parts] == [66_667, 66_667, 66_667]
        assert all(p.metadata.row_group(g).num_rows <= ROW_GROUP_ROWS for p in parts for g in range(p.num_row_groups))
        assert pa.concat_tables([p.read() for p in parts]).equals(table)
    assert not any(p.exists() for p in paths)  # temporary


def test_a_folder_gives_its_parquet_files_in_name_order(tmp_path):
    for name in ("b.parquet", "a.parquet", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in part_files(tmp_path)] == ["a.parquet", "b.parquet"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError):
        part_files(empty)
