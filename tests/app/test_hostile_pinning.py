"""A hostile tenant replaces a dataset after submission through its still-valid upload URL: the
worker must run on exactly the bytes that were checked, or refuse (``dataset.changed``)."""

from __future__ import annotations

import hashlib
import io
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from jobs_testing import put_file, wait_job

from app.core.storage import Store
from app.jobs.pinned import fetch_pinned
from app.state import KEYS
from ml.errors import DataProblem

CHECKED_ROWS, SWAPPED_ROWS = 500, 300


@pytest.fixture(scope="module")
def two_training_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two valid training sets told apart by their rows and columns."""
    base = tmp_path_factory.mktemp("swap")
    rng = np.random.default_rng(1)
    checked = pd.DataFrame({"a": rng.normal(size=CHECKED_ROWS), "y": np.arange(CHECKED_ROWS) % 2})
    swapped = pd.DataFrame(
        {"a": rng.normal(size=SWAPPED_ROWS), "b": rng.normal(size=SWAPPED_ROWS), "y": np.arange(SWAPPED_ROWS) % 3}
    )
    checked.to_parquet(base / "checked.parquet", index=False)
    swapped.to_parquet(base / "swapped.parquet", index=False)
    return base / "checked.parquet", base / "swapped.parquet"


def _put(store: Store, key: str, data: bytes) -> None:
    store.client.put_object(store.bucket, key, io.BytesIO(data), len(data))


def test_a_pinned_download_refuses_a_replaced_object(settings, tmp_path):
    store = Store.from_settings(settings)
    key = "tests/pinned/object.bin"
    _put(store, key, b"checked" * 1000)
    checked = store.stat(key)
    url = store.internal_get_url(key, 600)
    # Given the checked version, the download is exactly its bytes.
    path = fetch_pinned(url, etag=checked.etag, size_bytes=checked.size, scratch_dir=str(tmp_path))
    assert path.read_bytes() == b"checked" * 1000
    # When the object is replaced (same size, other bytes) between the check and the download,
    _put(store, key, b"swapped" * 1000)
    with pytest.raises(DataProblem) as refused:
        fetch_pinned(url, etag=checked.etag, size_bytes=checked.size, scratch_dir=str(tmp_path))
    # then the store's 412 for If-Match refuses it, and no scratch file is left behind.
    assert refused.value.code == "dataset.changed"
    assert list(tmp_path.iterdir()) == [path]


def test_a_pinned_download_stops_at_the_checked_size(settings, tmp_path):
    store = Store.from_settings(settings)
    key = "tests/pinned/bigger.bin"
    _put(store, key, b"x" * 5000)
    now = store.stat(key)
    url = store.internal_get_url(key, 600)
    # A size recorded smaller than the object (a store ignoring If-Match would look like this).
    with pytest.raises(DataProblem) as refused:
        fetch_pinned(url, etag=now.etag, size_bytes=1000, scratch_dir=str(tmp_path))
    assert refused.value.code == "dataset.changed" and "1,000" in refused.value.message
    assert list(tmp_path.iterdir()) == []


def test_the_worker_never_trains_on_a_replacement_racing_its_download(api, small_worker, broker_db, two_training_sets):
    """30 tries: while a thread keeps overwriting the dataset through its upload URL, alternating
    two valid training sets, a fit is submitted and run. Each job trains on exactly the version
    its submission checked (the ETag on its record), or is refused as changed; none trains on
    the other one."""
    random.seed(15)
    files = {hashlib.md5(p.read_bytes()).hexdigest(): p for p in two_training_sets}
    rows = {two_training_sets[0]: (CHECKED_ROWS, ["a"]), two_training_sets[1]: (SWAPPED_ROWS, ["a", "b"])}
    outcomes: Counter[str] = Counter()
    for _ in range(30):
        created = api.post("/v1/datasets", json={"name": "race"}).json()
        put_file(created["upload_url"], two_training_sets[0])
        stop = threading.Event()
        hammer = threading.Thread(target=_overwrite_until, args=(created["upload_url"], two_training_sets, stop))
        hammer.start()
        try:
            # A store PUT takes a while to land (about 250 ms on SeaweedFS here): submitting at a
            # random point of the overwrite cycle spreads the swaps over the check, the queue,
            # the worker's look at the object and its download.
            time.sleep(random.uniform(0, 0.5))
            job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": created["id"], "params": {"max_iter": 3}})
            if job.status_code == 409:  # the swap hit the submission's own reads: refused there
                assert job.json()["error"]["code"] == "dataset.changed", job.text
                outcomes["refused at submission"] += 1
                continue
            assert job.status_code == 202, job.text
            ended = wait_job(api, job.json()["id"])
        finally:
            stop.set()
            hammer.join(30)
        checked = files[json.loads(broker_db.hget(KEYS.job(ended["id"]), "dataset_etag"))]
        if ended["status"] == "finished":
            outcomes["trained on the checked version"] += 1
            assert (ended["result"]["rows"], list(ended["result"]["features"]["columns"])) == rows[checked]
        else:
            assert ended["status"] == "failed" and ended["error"]["code"] == "dataset.changed", ended["error"]
            outcomes["refused by the worker"] += 1
    assert sum(outcomes.values()) == 30
    # The race was real: swaps reached the checks (how many varies from run to run).
    assert outcomes["refused by the worker"] + outcomes["refused at submission"] >= 1, outcomes


def _overwrite_until(url: str, paths: tuple[Path, Path], stop: threading.Event) -> None:
    bodies = [p.read_bytes() for p in reversed(paths)]  # the other file first
    with httpx.Client() as client:
        while not stop.is_set():
            for body in bodies:
                client.put(url, content=body)
