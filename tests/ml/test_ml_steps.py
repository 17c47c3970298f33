"""The two steps' contract: the prepared file, its cache key, reuse, refusals, a model step reading no Parquet."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from ml.bundle import ModelTampered
from ml.errors import DataProblem
from ml.io import file_sha256
from ml.model_step import predict_prepared, train_prepared
from ml.prepare_step import prepare
from ml.prepared import PREPARED_FORMAT_VERSION, PreparedMismatch, prepared_cache_key

FAST = {"n_estimators": 10}


def mixed_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Every kind of feature, with missing values, and a string target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "x": np.where(rng.random(rows) < 0.1, np.nan, x),
            "color": pd.Series(rng.choice(["red", "green", "blue"], size=rows)).mask(rng.random(rows) < 0.1),
            "flag": x > 1,
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, size=rows), unit="D"),
        }
    )
    frame["y"] = np.where(x > 0, "up", "down")
    return frame


@pytest.fixture
def prepared_fit(tmp_path, write_parquet) -> tuple[str, dict, pd.DataFrame]:
    """A training file of mixed_frame() prepared for a fit: (prepared path, prepare's summary, the frame)."""
    frame = mixed_frame()
    path = str(tmp_path / "fit.arrow")
    return path, prepare(write_parquet("train.parquet", frame), path), frame


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_prepared_file_is_arrow_ipc_of_a_float32_row_major_matrix_and_class_codes(prepared_fit):
    path, summary, frame = prepared_fit

    table = feather.read_table(path, memory_map=True)  # any Arrow reader opens it

    # Then column X holds each row's four features as float32 (its values are the C-order matrix)
    assert table.column_names == ["X", "y"]
    assert table.schema.field("X").type == pa.list_(pa.float32(), 4)
    assert table.schema.field("y").type == pa.int32()
    assert table.num_rows == summary["rows"] == len(frame)
    X = table.column("X").combine_chunks().flatten().to_numpy().reshape(-1, 4)
    assert list(summary["features"]["columns"]) == ["x", "color", "flag", "when"]
    assert np.array_equal(X[:, 0], frame["x"].to_numpy(np.float32), equal_nan=True)
    colors = summary["features"]["categories"]["color"]
    codes = X[:, 1]
    assert np.array_equal(np.isnan(codes), frame["color"].isna().to_numpy())
    assert [colors[int(c)] for c in codes[~np.isnan(codes)]] == frame["color"].dropna().tolist()
    assert np.array_equal(X[:, 2], frame["flag"].to_numpy(np.float32))
    assert summary["classes"] == ["down", "up"]
    assert table.column("y").to_pylist() == [summary["classes"].index(v) for v in frame["y"]]
    assert (summary["kind"], summary["format"]) == ("fit", PREPARED_FORMAT_VERSION)
    assert summary["bytes"] == Path(path).stat().st_size


def test_one_prepared_file_serves_several_models(prepared_fit, tmp_path):
    # Given one prepared training file
    path, _, frame = prepared_fit
    before = sha256(path)

    # When two models of two families train from it (no second prepare)
    first = train_prepared(path, str(tmp_path / "xgb.pkl"), family="xgboost", params=FAST)
    second = train_prepared(path, str(tmp_path / "hgb.pkl"), family="hgb", params={"max_iter": 10})

    # Then both trained on every row, and the file is untouched, ready for a third
    assert (first["family"], second["family"]) == ("xgboost", "hgb")
    assert first["rows"] == second["rows"] == len(frame)
    assert first["features"] == second["features"]
    assert sha256(path) == before


def test_cache_key_follows_the_dataset_bytes(tmp_path, write_parquet):
    # Given two datasets with different bytes, and a byte-for-byte copy of the first
    first = write_parquet("first.parquet", mixed_frame(seed=0))
    second = write_parquet("second.parquet", mixed_frame(seed=1))
    copy = str(tmp_path / "copy.parquet")
    shutil.copyfile(first, copy)
    assert Path(first).read_bytes() != Path(second).read_bytes()

    keys = {
        name: prepared_cache_key(file_sha256(path), kind="fit")
        for name, path in [("first", first), ("second", second), ("copy", copy)]
    }

    assert keys["first"] == keys["copy"]
    assert keys["first"] != keys["second"]
    assert file_sha256(first) == sha256(first)
    assert len(keys["first"]) == 64


def test_predict_cache_key_follows_the_model_encoding():
    digest = "ab" * 32
    schema = {"columns": {"a": "numeric", "b": "categorical"}, "categories": {"b": ["x", "y"]}}
    reordered = {"columns": {"b": "categorical", "a": "numeric"}, "categories": {"b": ["x", "y"]}}
    recategorised = {"columns": {"a": "numeric", "b": "categorical"}, "categories": {"b": ["y", "x"]}}

    key = prepared_cache_key(digest, kind="predict", feature_schema=schema)

    assert key == prepared_cache_key(digest, kind="predict", feature_schema=dict(schema))
    assert key != prepared_cache_key(digest, kind="predict", feature_schema=reordered)  # column order is matrix order
    assert key != prepared_cache_key(digest, kind="predict", feature_schema=recategorised)  # codes differ
    assert key != prepared_cache_key(digest, kind="fit")
    with pytest.raises(ValueError):
        prepared_cache_key(digest, kind="predict")
    with pytest.raises(ValueError):
        prepared_cache_key(digest, kind="fit", feature_schema=schema)
    with pytest.raises(ValueError):
        prepared_cache_key(digest, kind="score")


@pytest.mark.slow  # trains for several seconds
def test_model_step_reads_no_parquet(prepared_fit, tmp_path, write_parquet, monkeypatch, read_predictions):
    # Given the prediction data prepared too, while Parquet could still be read
    path, _, frame = prepared_fit
    new = write_parquet("new.parquet", frame.drop(columns="y"))
    summary = train_prepared(path, str(tmp_path / "warmup.pkl"), family="xgboost", params=FAST)
    prepare(new, str(tmp_path / "new.arrow"), kind="predict", feature_schema=summary["features"])

    # When every way of reading Parquet fails
    def refuse(*args, **kwargs):
        raise AssertionError("the model step read Parquet")

    for name in ("ParquetFile", "read_table", "read_schema", "read_metadata", "read_pandas", "ParquetDataset"):
        monkeypatch.setattr(pq, name, refuse)
    monkeypatch.setattr(pd, "read_parquet", refuse)

    # Then the model step still trains and predicts (and writes its Parquet result)
    train_prepared(path, str(tmp_path / "m.pkl"), family="xgboost", params=FAST)
    predicted = predict_prepared(str(tmp_path / "new.arrow"), str(tmp_path / "m.pkl"), str(tmp_path / "r.parquet"))
    monkeypatch.undo()
    assert predicted["rows"] == len(frame)
    assert set(read_predictions(str(tmp_path / "r.parquet"))) <= {"up", "down"}


def test_prediction_data_not_matching_the_model_is_refused_at_prepare(tmp_path, write_parquet):
    schema = {"columns": {"x": "numeric", "color": "categorical"}, "categories": {"color": ["red"]}}
    out = tmp_path / "new.arrow"

    with pytest.raises(DataProblem) as missing:
        prepare(write_parquet("a.parquet", pd.DataFrame({"x": [1.0]})), str(out), kind="predict", feature_schema=schema)
    with pytest.raises(DataProblem) as wrong_type:
        data = pd.DataFrame({"x": ["one"], "color": ["red"]})
        prepare(write_parquet("b.parquet", data), str(out), kind="predict", feature_schema=schema)

    assert missing.value.code == "dataset.missing_columns"
    assert "'color'" in missing.value.message
    assert wrong_type.value.code == "dataset.incompatible_types"
    assert not out.exists()


@pytest.mark.parametrize(
    ("labels", "code"),
    [([np.nan] * 4, "dataset.target_all_missing"), ([1.0, np.nan, 1.0, np.nan], "dataset.single_class")],
    ids=["all-nan", "one-class-and-nan"],
)
def test_prepare_refuses_what_fit_refuses(tmp_path, write_parquet, labels, code):
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": pa.array(labels, from_pandas=False)})
    out = tmp_path / "fit.arrow"

    with pytest.raises(DataProblem) as caught:
        prepare(write_parquet("train.parquet", table), str(out))

    assert caught.value.code == code
    assert not out.exists()


def test_model_step_refuses_files_prepared_for_something_else(prepared_fit, tmp_path, write_parquet):
    # Given a model, and prediction data prepared for another model's categories
    path, _, frame = prepared_fit
    summary = train_prepared(path, str(tmp_path / "m.pkl"), family="xgboost", params=FAST)
    other = {**summary["features"], "categories": {"color": ["purple"]}}
    new = write_parquet("new.parquet", frame.drop(columns="y"))
    prepare(new, str(tmp_path / "other.arrow"), kind="predict", feature_schema=other)
    (tmp_path / "junk.arrow").write_bytes(b"not arrow at all")

    with pytest.raises(PreparedMismatch):
        predict_prepared(str(tmp_path / "other.arrow"), str(tmp_path / "m.pkl"), str(tmp_path / "r.parquet"))
    with pytest.raises(PreparedMismatch):  # a fit file is no prediction input
        predict_prepared(path, str(tmp_path / "m.pkl"), str(tmp_path / "r.parquet"))
    with pytest.raises(PreparedMismatch):  # and a predict file trains nothing
        train_prepared(str(tmp_path / "other.arrow"), str(tmp_path / "m2.pkl"), family="xgboost")
    with pytest.raises(PreparedMismatch):
        train_prepared(str(tmp_path / "junk.arrow"), str(tmp_path / "m2.pkl"), family="xgboost")
    assert not (tmp_path / "r.parquet").exists()
    assert not (tmp_path / "m2.pkl").exists()


def test_predict_prepared_checks_the_model_digest(prepared_fit, tmp_path, write_parquet):
    path, _, frame = prepared_fit
    summary = train_prepared(path, str(tmp_path / "m.pkl"), family="xgboost", params=FAST)
    prepare(
        write_parquet("new.parquet", frame),
        str(tmp_path / "new.arrow"),
        kind="predict",
        feature_schema=summary["features"],
    )

    with pytest.raises(ModelTampered):
        predict_prepared(
            str(tmp_path / "new.arrow"), str(tmp_path / "m.pkl"), str(tmp_path / "r.parquet"), model_sha256="0" * 64
        )
    predict_prepared(
        str(tmp_path / "new.arrow"),
        str(tmp_path / "m.pkl"),
        str(tmp_path / "r.parquet"),
        model_sha256=summary["model_sha256"],
    )


def test_steps_through_http_urls(http_store, tmp_path, read_predictions):
    # Given the data in an HTTP object store (as presigned URLs give it) and a scratch directory
    frame = mixed_frame()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), http_store.root / "train.parquet")
    pq.write_table(pa.Table.from_pandas(frame.drop(columns="y"), preserve_index=False), http_store.root / "new.parquet")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    url = http_store.url

    # When the three steps run over HTTP
    prepare(url("train.parquet"), url("fit.arrow"), scratch_dir=str(scratch))
    summary = train_prepared(url("fit.arrow"), url("m.pkl"), family="xgboost", params=FAST, scratch_dir=str(scratch))
    prepare(
        url("new.parquet"),
        url("new.arrow"),
        kind="predict",
        feature_schema=summary["features"],
        scratch_dir=str(scratch),
    )
    predict_prepared(url("new.arrow"), url("m.pkl"), url("r.parquet"), scratch_dir=str(scratch))

    # Then each object went up with PUT and came down with GET, and nothing is left in scratch
    puts = [path for method, path, _ in http_store.requests if method == "PUT"]
    assert puts == ["/fit.arrow", "/m.pkl", "/new.arrow", "/r.parquet"]
    assert len(read_predictions(str(http_store.root / "r.parquet"))) == len(frame)
    assert list(scratch.iterdir()) == []
