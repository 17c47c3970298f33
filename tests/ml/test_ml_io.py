"""ml.io against local paths, file:// URLs and a real HTTP server on loopback (standing in for presigned URLs)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from ml.io import CHUNK_BYTES, fetch_to_file, read_bytes, write_file
from ml.model import fit, predict

PAYLOAD = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 17)  # a little over two chunks


def test_local_path_is_used_in_place(tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(b"abc")

    assert fetch_to_file(str(source)) == (source, False)
    assert read_bytes(str(source)) == b"abc"


def test_file_url_with_escapes(tmp_path):
    source = tmp_path / "my data.bin"
    source.write_bytes(b"abc")
    url = source.as_uri()
    assert "%20" in url

    assert fetch_to_file(url) == (source, False)
    assert read_bytes(url) == b"abc"


def test_write_file_to_a_local_path_creates_folders(tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(b"abc")
    target = tmp_path / "deep" / "er" / "out.bin"

    write_file(target.as_uri(), source)

    assert target.read_bytes() == b"abc"


def test_fetch_over_http_streams_to_a_scratch_copy(http_store, tmp_path):
    # Given an object of a little over two chunks behind an HTTP URL
    (http_store.root / "data.bin").write_bytes(PAYLOAD)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    calls = []

    # When it is fetched with progress
    path, temporary = fetch_to_file(
        http_store.url("data.bin"), scratch_dir=str(scratch), phase="fetching", progress=lambda *c: calls.append(c)
    )

    # Then it lies in the scratch dir, a copy for the caller to delete, and progress rose to 1
    assert temporary
    assert path.parent == scratch
    assert path.read_bytes() == PAYLOAD
    fractions = [fraction for phase, fraction, _ in calls if phase == "fetching"]
    assert fractions == sorted(fractions)
    assert len(fractions) >= 2
    assert fractions[-1] == 1.0


def test_fetch_of_a_missing_object_raises_and_leaves_no_scratch_file(http_store, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    with pytest.raises(httpx.HTTPStatusError) as caught:
        fetch_to_file(http_store.url("absent.bin"), scratch_dir=str(scratch))

    assert caught.value.response.status_code == 404
    assert list(scratch.iterdir()) == []


def test_read_bytes_over_http(http_store):
    (http_store.root / "model.pkl").write_bytes(b"model bytes")

    assert read_bytes(http_store.url("model.pkl")) == b"model bytes"
    with pytest.raises(httpx.HTTPStatusError):
        read_bytes(http_store.url("absent.pkl"))


def test_write_file_streams_a_put_with_its_length(http_store, tmp_path):
    source = tmp_path / "result.parquet"
    source.write_bytes(PAYLOAD)

    write_file(http_store.url("result.parquet?X-Amz-Signature=abc"), source, content_type="application/x-parquet")

    assert (http_store.root / "result.parquet").read_bytes() == PAYLOAD
    [(method, path, headers)] = http_store.requests
    assert (method, path) == ("PUT", "/result.parquet?X-Amz-Signature=abc")
    # Presigned PUTs to S3 need a Content-Length; chunked transfer encoding is refused there.
    assert headers["content-length"] == str(len(PAYLOAD))
    assert "transfer-encoding" not in headers
    assert headers["content-type"] == "application/x-parquet"


def test_fit_and_predict_through_http_urls(http_store, tmp_path):
    # Given training and prediction data behind URLs, and URLs to PUT the model and the result to
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    pd.DataFrame({"x": x, "y": x > 0}).to_parquet(http_store.root / "train.parquet", index=False)
    pd.DataFrame({"x": [-1.0, 1.0]}).to_parquet(http_store.root / "new.parquet", index=False)
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    # When a model is fitted and used through them
    fit(http_store.url("train.parquet"), http_store.url("model.pkl"), params={"max_iter": 20}, scratch_dir=str(scratch))
    predict(
        http_store.url("new.parquet"),
        http_store.url("model.pkl"),
        http_store.url("result.parquet"),
        scratch_dir=str(scratch),
    )

    # Then the result was uploaded, and no downloaded copy was left behind
    assert pd.read_parquet(http_store.root / "result.parquet")["y"].tolist() == [False, True]
    assert [(method, path) for method, path, _ in http_store.requests] == [
        ("GET", "/train.parquet"),
        ("PUT", "/model.pkl"),
        ("GET", "/model.pkl"),
        ("GET", "/new.parquet"),
        ("PUT", "/result.parquet"),
    ]
    assert list(scratch.iterdir()) == []


def test_fit_reports_download_progress_over_http(http_store):
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    pd.DataFrame({"x": x, "y": x > 0}).to_parquet(http_store.root / "train.parquet", index=False)
    calls = []

    fit(
        http_store.url("train.parquet"),
        http_store.url("model.pkl"),
        params={"max_iter": 20},
        progress=lambda *c: calls.append(c),
    )

    downloading = [fraction for phase, fraction, _ in calls if phase == "downloading"]
    assert downloading[0] == 0.0
    assert downloading[-1] == 1.0
    assert Path(http_store.root / "model.pkl").stat().st_size > 0
