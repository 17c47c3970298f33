"""Submission reads footers and bounded samples: a decompression bomb and a very wide file,
submitted in parallel to a real API process, do not grow its memory; the row, column and footer
limits refuse what they bound, and a bounded scan still accepts files whose classes it did not
reach."""

from __future__ import annotations

import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from jobs_testing import upload

from app.api.main import create_app
from app.local.spawn import answers, spawn, tabjob_command

ROOT = Path(__file__).resolve().parents[2]
BOMB_ROWS = 100_000_000
WIDE_COLUMNS = 50_000
# Generous against allocator noise, far below the ~1 GB per request the whole-column read cost.
MAX_RSS_GROWTH_BYTES = 300 * 1024**2


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    # A decompression bomb: 100M rows of one constant, under 1 MB on disk (800 MB per column
    # once decoded), written a million rows at a time.
    schema = pa.schema([("a", pa.int64()), ("y", pa.int64())])
    ones = pa.array(np.ones(1_000_000, dtype=np.int64))
    batch = pa.record_batch([ones, ones], schema=schema)
    with pq.ParquetWriter(base / "bomb.parquet", schema, compression="zstd") as writer:
        for _ in range(BOMB_ROWS // batch.num_rows):
            writer.write_batch(batch)
    # 50,000 columns of two rows: a 15 MB file whose footer alone is 9.5 MB.
    wide = {f"c{i}": pa.array([0.0, 1.0]) for i in range(WIDE_COLUMNS)}
    pq.write_table(pa.table({**wide, "y": pa.array([0, 1])}), base / "wide.parquet")
    # 12,000 columns: a footer under the footer limit, over the column limit.
    columns = {f"c{i}": pa.array([0.0, 1.0]) for i in range(12_000)}
    pq.write_table(pa.table({**columns, "y": pa.array([0, 1])}), base / "columns.parquet")
    # Labels sorted by class: the first rows (all the bounded scan reads) hold one class.
    sorted_y = pa.table({"a": np.arange(300_000.0), "y": np.repeat([0, 1], 150_000)})
    pq.write_table(sorted_y, base / "sorted.parquet", row_group_size=100_000)
    # The same layout with class 0 only: what the scan alone sees, and what must be refused.
    single_y = pa.table({"a": np.arange(300_000.0), "y": np.zeros(300_000, dtype=np.int64)})
    pq.write_table(single_y, base / "single.parquet", row_group_size=100_000)
    return {p.stem: p for p in base.iterdir()}


def _start_api(env: dict[str, str], port: int) -> subprocess.Popen:
    return spawn(
        tabjob_command("api", "--host", "127.0.0.1", "--port", str(port)), env=env, log=subprocess.DEVNULL,
        ready=answers(f"http://127.0.0.1:{port}"), what="the API to answer /healthz",
    )  # fmt: skip


@pytest.mark.slow  # starts its own server processes
def test_a_bomb_and_a_wide_file_in_parallel_do_not_grow_the_api(base_env, new_tenant, hostile_files, free_tcp_port):
    # Rows up to 200M: the bomb passes the row limit, so its target is really scanned.
    env = {**base_env, "TABJOB_MAX_DATASET_ROWS": str(2 * BOMB_ROWS)}
    _, key = new_tenant()
    process = _start_api(env, free_tcp_port)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{free_tcp_port}", headers={"authorization": f"Bearer {key}"}
        ) as api:
            datasets = [(kind, upload(api, hostile_files[kind])) for kind in ("bomb", "wide") for _ in range(8)]

            def submit(dataset: tuple[str, str]) -> tuple[str, httpx.Response]:
                return dataset[0], api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset[1]}, timeout=120)

            submit(datasets[0]), submit(datasets[-1])  # warm: imports and first allocations
            api_process = psutil.Process(process.pid)
            before = api_process.memory_info().rss
            peak = before
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.wait(0.02):
                    peak = max(peak, api_process.memory_info().rss)

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                with ThreadPoolExecutor(len(datasets)) as pool:
                    answers = list(pool.map(submit, datasets))
            finally:
                done.set()
                sampler.join()
            after = api_process.memory_info().rss
    finally:
        process.terminate()
        process.wait(30)
    for kind, answer in answers:
        expected = (422, "dataset.single_class") if kind == "bomb" else (413, "dataset.footer_too_large")
        assert (answer.status_code, answer.json()["error"]["code"]) == expected, answer.text
    assert peak - before < MAX_RSS_GROWTH_BYTES, f"peak grew {(peak - before) / 2**20:.0f} MiB"
    assert after - before < MAX_RSS_GROWTH_BYTES, f"grew {(after - before) / 2**20:.0f} MiB"


@pytest.mark.slow  # builds the hostile files (7 s)
def test_row_column_and_footer_limits_refuse_at_submission(api, hostile_files):
    expected = {
        "bomb": "dataset.too_many_rows",  # 100M rows over the default 50M
        "wide": "dataset.footer_too_large",
        "columns": "dataset.too_many_columns",
    }
    for name, code in expected.items():
        dataset = upload(api, hostile_files[name])
        refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset})
        assert refused.status_code == 413 and refused.json()["error"]["code"] == code, refused.text
        shown = api.get(f"/v1/datasets/{dataset}").json()
        assert shown["state"] == "invalid" and shown["problem"]["code"] == code


@pytest.mark.slow  # builds the hostile files (7 s)
def test_a_bounded_scan_leaves_unread_classes_to_the_statistics(base_env, new_tenant, settings_from, hostile_files):
    _, key = new_tenant()
    settings = settings_from({**base_env, "TABJOB_TARGET_SCAN_ROWS": "65536"})
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        # The scan reads 65,536 rows of class 0; the row groups' statistics show class 1 later.
        dataset = upload(api, hostile_files["sorted"])
        accepted = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large"})
        assert accepted.status_code == 202, accepted.text
        api.post(f"/v1/jobs/{accepted.json()['id']}/cancel")
        # While a file whose statistics show one class too is refused: the check did run.
        single = upload(api, hostile_files["single"])
        refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": single, "lane": "gpu"})
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "dataset.single_class"), refused.text
