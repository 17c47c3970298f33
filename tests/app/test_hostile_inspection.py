"""One upload, whatever it declares, cannot grow the API: inspection is bounded in bytes (encrypted
footers, column chunks, labels, column names) and runs in a child process under a memory limit.

Each hostile file is submitted to a real API process (``tabjob api``) against the real store,
and that process's resident memory is sampled while it is inspected (bound: 64 MiB over its start).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
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
from app.core.waiting import wait_until
from app.local.servers import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
MAX_API_GROWTH_BYTES = 64 * 1024**2  # the bound for any single upload


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("inspection")
    # An "encrypted" footer (magic PARE) declaring 64 MiB: pyarrow would read all of it.
    pare = base / "pare.parquet"
    with open(pare, "wb") as out:
        out.write(b"PAR1")
        out.write(os.urandom(1024) * (64 * 1024 - 1))
        out.write(struct.pack("<i", 64 * 1024**2 - 16) + b"PARE")
    # 65,536 rows of 8 KiB labels, two distinct: ~200 KB on disk, dictionary-encoded; 512 MiB decoded.
    labels = ["a" * 8192, "b" * 8192] * 32_768
    pq.write_table(pa.table({"x": np.arange(65_536.0), "y": labels}), base / "labels.parquet")
    # 10M rows of a constant target, plain-encoded: 80 MB of target chunk in a 0.5 MB file.
    ones = pa.array(np.ones(10_000_000, dtype=np.int64))
    pq.write_table(pa.table({"x": ones, "y": ones}), base / "chunk.parquet", use_dictionary=False,
                   compression="zstd", row_group_size=10_000_000)  # fmt: skip
    # One column name of 300 characters; 2,000 of them (600 KB of names in a record).
    pq.write_table(pa.table({"c" * 300: [0.0, 1.0], "y": [0, 1]}), base / "long_name.parquet")
    # 50,000 columns: a 9.5 MB footer, ~160 MB once parsed.
    wide = {f"c{i}": pa.array([0.0, 1.0]) for i in range(50_000)}
    pq.write_table(pa.table({**wide, "y": pa.array([0, 1])}), base / "wide.parquet")
    return {p.stem: p for p in base.iterdir()}


def _start_api(env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env}, cwd=ROOT, preexec_fn=die_with_parent,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
        what="the API to answer /healthz",
        timeout_s=60,
        ignore=(httpx.HTTPError,),
        give_up=lambda: None if process.poll() is None else f"the API exited with {process.returncode}",
    )
    return process


def _peak_growth(pid: int, action: callable) -> tuple[int, object]:  # type: ignore[valid-type]
    """(peak RSS growth of ``pid`` in bytes while ``action()`` runs, its result)."""
    process = psutil.Process(pid)
    before = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.01):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    return max(peak, process.memory_info().rss) - before, result


@pytest.mark.slow  # starts its own API process
def test_no_hostile_upload_grows_the_api_process_by_more_than_64_mib(base_env, new_tenant, files, free_tcp_port):
    # Given a real API process whose limits let every hostile file reach the inspection
    env = {**base_env, "TABJOB_MAX_DATASET_BYTES": str(128 * 1024**2)}
    _, key = new_tenant()
    process = _start_api(env, free_tcp_port)
    expected = {
        "pare": (422, "dataset.encrypted"),
        "labels": (422, "dataset.label_too_long"),
        "chunk": (413, "dataset.target_chunk_too_large"),
        "long_name": (422, "dataset.column_name_too_long"),
        "wide": (413, "dataset.footer_too_large"),
    }
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{free_tcp_port}", headers={"authorization": f"Bearer {key}"}, timeout=120
        ) as api:
            datasets = {name: upload(api, files[name]) for name in expected}
            warm = upload(api, files["long_name"])
            api.post("/v1/jobs", json={"kind": "fit", "dataset_id": warm})  # imports and first allocations
            for name, dataset in datasets.items():
                # When each hostile file is submitted (and its dataset page inspected)
                def submit(dataset: str = dataset) -> httpx.Response:
                    api.get(f"/v1/datasets/{dataset}")
                    return api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset})

                grown, answer = _peak_growth(process.pid, submit)
                # Then it is refused by its bound, and the API grew by less than 64 MiB
                assert (answer.status_code, answer.json()["error"]["code"]) == expected[name], answer.text
                assert grown < MAX_API_GROWTH_BYTES, f"{name}: the API grew {grown / 2**20:.0f} MiB"
            assert api.get("/healthz").status_code == 200
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.slow  # builds the hostile files (14 s)
def test_an_inspection_over_its_memory_limit_is_refused_and_the_next_one_works(
    base_env, new_tenant, settings_from, files, seed_files
):
    # Given limits that let a 9.5 MB footer through, but a child allowed 32 MiB only
    settings = settings_from(
        {**base_env, "TABJOB_MAX_FOOTER_BYTES": str(64 * 1024**2), "TABJOB_MAX_DATASET_COLUMNS": "100000",
         "TABJOB_MAX_COLUMN_NAMES_BYTES": str(1024**2), "TABJOB_INSPECTION_MEMORY_BYTES": str(32 * 1024**2)}
    )  # fmt: skip
    _, key = new_tenant()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        # When the wide file is submitted, its parsed footer passes the child's address-space limit
        refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, files["wide"])})
        assert refused.status_code == 413, refused.text
        assert refused.json()["error"]["code"] == "dataset.inspection_too_large"
        # Then a normal file is still inspected (a fresh child replaced the failed one)
        accepted = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, seed_files["train"])})
        assert accepted.status_code == 202, accepted.text
        api.post(f"/v1/jobs/{accepted.json()['id']}/cancel")


def test_column_names_are_capped_one_by_one_and_together(api, tmp_path):
    names = {f"{i:04d}" + "c" * 200: [0.0, 1.0] for i in range(2_000)}  # 200-odd chars each, 400 KB together
    path = tmp_path / "names.parquet"
    pq.write_table(pa.table({**names, "y": [0, 1]}), path)
    dataset = upload(api, path)
    refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset})
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "dataset.column_names_too_large"
    shown = api.get(f"/v1/datasets/{dataset}")
    assert shown.json()["state"] == "invalid" and shown.json()["columns"] is None
    assert len(shown.content) < 4096  # the page does not carry the names


def test_short_labels_and_names_still_pass(api, tmp_path):
    path = tmp_path / "fine.parquet"
    labels = ["l" * 256, "m" * 256] * 50  # at the label limit
    pq.write_table(pa.table({"n" * 256: np.arange(100.0), "y": labels}), path)
    accepted = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, path)})
    assert accepted.status_code == 202, accepted.text
    api.post(f"/v1/jobs/{accepted.json()['id']}/cancel")


def test_the_same_bytes_asked_the_same_question_are_inspected_once(api, tmp_path, monkeypatch):
    """A burst of fits on one dataset inspects it once (app.inspection.pool keeps answers by the
    object's key, etag and size and by the question); other bytes or another target are inspected
    again (a file swapped under the key changes its etag: test_hostile_pinning.py)."""
    from app.inspection.pool import InspectionPool

    calls: list[str] = []
    run = InspectionPool.run

    def counted(self, request):
        calls.append(request.purpose)
        return run(self, request)

    monkeypatch.setattr(InspectionPool, "run", counted)
    frame = {"a": np.arange(200.0), "y": np.arange(200) % 2}
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(frame), path)
    dataset = upload(api, path)
    calls.clear()
    for seed in range(3):
        submitted = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": {"random_state": seed}})
        assert submitted.status_code == 202, submitted.text
    assert calls == ["fit"]
    # A fit with another target is another question
    pq.write_table(pa.table({**frame, "z": np.arange(200) % 3}), path)
    other = upload(api, path)
    calls.clear()
    for target in ("y", "z", "z"):
        api.post("/v1/jobs", json={"kind": "fit", "dataset_id": other, "target": target})
    assert calls == ["fit", "fit"]
