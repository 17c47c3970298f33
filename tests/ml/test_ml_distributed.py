"""``ml.distributed``: the Dask engine's fit and predict on a real local Dask cluster (local files as
parts), and its reading of parts against the single-node encoding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.local.dask_cluster import LocalDaskCluster
from ml.distributed import engine
from ml.distributed.tasks import batch_matrices
from ml.errors import DataProblem
from ml.features import FeatureSpec
from ml.schema import CATEGORICAL, NUMERIC

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDaskCluster]:
    base = tmp_path_factory.mktemp("dask")
    (base / "logs").mkdir()
    running = LocalDaskCluster(base, workers=2, worker_memory="192MiB")
    running.launch(base / "logs")
    try:
        running.wait_ready(120)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A learnable table with a text column, as one file and as 3 parts."""
    rng = np.random.default_rng(1)
    n = 6_000
    x = rng.standard_normal((n, 4))
    colour = rng.choice(["red", "green", "blue"], n)
    y = ((x[:, 0] + (colour == "red")) > 0.3).astype(np.int64)
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "d": x[:, 3], "colour": colour, "y": y})
    folder = tmp_path_factory.mktemp("data")
    whole = folder / "whole.parquet"
    pq.write_table(table, whole)
    parts = []
    for i, idx in enumerate(np.array_split(np.arange(n), 3)):
        path = folder / f"part-{i}.parquet"
        pq.write_table(table.take(idx), path, row_group_size=700)
        parts.append(path)
    return {"whole": whole, "parts": parts, "y": y, "folder": folder}


def test_batches_encode_like_the_single_node_matrix(tmp_path):
    table = pa.table({"a": [1.0, None, 3.0, 4.0, 5.0], "t": ["x", "y", None, "x", "z"], "y": [0, 1, None, 1, 0]})
    path = tmp_path / "p.parquet"
    pq.write_table(table, path, row_group_size=2)
    spec = FeatureSpec(columns={"a": NUMERIC, "t": CATEGORICAL}, categories={"t": ["x", "y"]})
    batches = list(batch_matrices(path, spec, "y", np.array([0, 1])))
    X = np.concatenate([b[0] for b in batches])
    codes = np.concatenate([b[1] for b in batches])
    # the row without a target is left out, as a single-node fit leaves it out
    keep = pa.array([True, True, False, True, True])
    expected = spec.matrix(pq.ParquetFile(path), pa.chunked_array([keep]), dtype=np.float32)
    np.testing.assert_array_equal(X, expected)
    np.testing.assert_array_equal(codes, [0, 1, 1, 0])


def test_a_dask_model_and_a_single_node_model_predict_alike_anywhere(cluster, files):
    import ml.model

    folder: Path = files["folder"]  # type: ignore[assignment]
    parts = [str(p) for p in files["parts"]]  # type: ignore[union-attr]
    # Given a model trained on Dask (3 parts, 2 workers) and one trained on one node
    dask_model, single_model = folder / "dask.pkl", folder / "single.pkl"
    summary = engine.fit(cluster.address, parts, str(dask_model), params={"n_estimators": 40}, device="cpu")
    assert summary["engine"] == {"name": "dask", "workers": 2} and summary["rows"] == 6_000
    assert summary["features"]["categories"]["colour"] and summary["family"] == "xgboost"
    ml.model.fit(str(files["whole"]), str(single_model), family="xgboost", device="cpu",
                 params={"n_estimators": 40, "early_stopping": False})  # fmt: skip
    # When each predicts on Dask (output in parts) and on one node
    for name, model in (("dask", dask_model), ("single", single_model)):
        outs = [str(folder / f"{name}-out-{i}.parquet") for i in range(3)]
        done = engine.predict(cluster.address, parts, str(model), outs, device="cpu")
        assert done["part_rows"] == [2_000, 2_000, 2_000]
        on_dask = np.concatenate([pq.read_table(o).column("y").to_numpy() for o in outs])
        here = folder / f"{name}-here.parquet"
        ml.model.predict(str(files["whole"]), str(model), str(here), device="cpu")
        on_one_node = pq.read_table(here).column("y").to_numpy()
        # Then both paths give the same labels, and they learnt the data
        np.testing.assert_array_equal(on_dask, on_one_node)
        assert np.mean(on_dask == files["y"]) > 0.9


def test_a_part_that_cannot_train_is_refused_naming_it(cluster, files, tmp_path):
    bad = tmp_path / "no-target.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": [0.0, 1.0]}), bad)
    parts = [str(files["parts"][0]), str(bad)]  # type: ignore[index]
    with pytest.raises(DataProblem) as refused:
        engine.fit(cluster.address, parts, str(tmp_path / "m.pkl"), device="cpu")
    assert refused.value.code == "dataset.missing_target" and refused.value.message.startswith("Part 1:")


def test_an_unreachable_scheduler_is_a_platform_failure():
    with pytest.raises(engine.ClusterUnavailable):
        engine.connect("tcp://127.0.0.1:9", timeout_s=1)


def test_a_row_group_larger_than_a_batch_is_staged_and_reads_the_same(tmp_path):
    # Given a part written as one row group (pyarrow's default) with a text column and a missing target
    rng = np.random.default_rng(3)
    n = 5_000
    y = rng.integers(0, 2, n).astype(float)
    y[::7] = np.nan
    table = pa.table({"a": rng.standard_normal(n), "t": rng.choice(["x", "y", "z"], n), "y": y})
    path = tmp_path / "one-group.parquet"
    pq.write_table(table, path)
    spec = FeatureSpec(columns={"a": NUMERIC, "t": CATEGORICAL}, categories={"t": ["x", "y", "z"]})
    # When it is read in batches smaller than the row group (staged on disk) and in one batch
    small = list(batch_matrices(path, spec, "y", np.array([0.0, 1.0]), rows_per_batch=1_000))
    whole = list(batch_matrices(path, spec, "y", np.array([0.0, 1.0]), rows_per_batch=n))
    # Then the batches are bounded, and together they are the single-batch matrix and labels
    assert len(whole) == 1 and len(small) == 5 and all(len(X) <= 1_000 for X, _ in small)
    np.testing.assert_array_equal(np.concatenate([X for X, _ in small]), whole[0][0])
    np.testing.assert_array_equal(np.concatenate([c for _, c in small]), whole[0][1])
    assert not list(tmp_path.glob("tabjob-stage-*"))  # the staging file is gone


def test_the_bins_come_from_the_sampled_quantiles_and_the_categories():
    from ml.distributed.cuts import cut_table

    rng = np.random.default_rng(0)
    samples = [rng.standard_normal((3_000, 2)).astype(np.float32) for _ in range(2)]
    for s in samples:
        s[:, 1] = np.nan  # the categorical column is not sampled
    spec = FeatureSpec(columns={"a": NUMERIC, "t": CATEGORICAL}, categories={"t": ["x", "y", "z"]})
    table = cut_table(samples, [3_000, 3_000], spec, max_bin=16)
    assert table.shape == (17, 2)
    pooled = np.concatenate([s[:, 0] for s in samples])
    # the numeric column's values are quantiles of the sample, from its minimum to its maximum
    assert table[0, 0] == pooled.min() and table[-1, 0] == pooled.max()
    assert abs(float(np.median(table[:, 0])) - float(np.median(pooled))) < 0.1
    # the categorical column holds every category code once
    assert table[:3, 1].tolist() == [0.0, 1.0, 2.0] and np.isnan(table[3:, 1]).all()


@pytest.fixture(scope="module")
def regression_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    rng = np.random.default_rng(2)
    n = 12_000
    x = rng.standard_normal((n, 3))
    y = 3 * x[:, 0] - 2 * x[:, 1] + 0.1 * rng.standard_normal(n)
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})
    folder = tmp_path_factory.mktemp("regression")
    whole = folder / "whole.parquet"
    pq.write_table(table, whole)
    parts = []
    for i, idx in enumerate(np.array_split(np.arange(n), 3)):
        path = folder / f"part-{i}.parquet"
        pq.write_table(table.take(idx), path)
        parts.append(path)
    return {"whole": whole, "parts": parts, "folder": folder}


def test_a_regression_trains_on_dask_with_early_stopping_and_its_metrics(cluster, regression_files):
    import ml.model

    folder: Path = regression_files["folder"]  # type: ignore[assignment]
    parts = [str(p) for p in regression_files["parts"]]  # type: ignore[union-attr]
    # Given 12,000 rows in 3 parts: "auto" early stopping holds out a tenth, as on one node
    model = folder / "dask.pkl"
    summary = engine.fit(cluster.address, parts, str(model), task="regression", device="cpu",
                         params={"n_estimators": 2_000, "learning_rate": 0.3})  # fmt: skip
    # Then it stopped early, on every worker at the same round, and scored the held-out rows
    assert summary["task"] == "regression" and summary["classes"] == []
    assert summary["best_iteration"] is not None and summary["iterations"] < 2_000
    assert summary["iterations"] <= summary["best_iteration"] + 1 + 10
    assert 900 < summary["validation_rows"] < 1_500 and summary["rows"] == 12_000
    metrics = summary["validation_metrics"]
    assert metrics["r2"] > 0.95 and summary["validation_score"] == metrics["r2"] and metrics["rmse"] > 0
    assert summary["target_range"]["min"] < 0 < summary["target_range"]["max"]
    # And its predictions on Dask are numbers, the same as the model predicts on one node
    outs = [str(folder / f"out-{i}.parquet") for i in range(3)]
    engine.predict(cluster.address, parts, str(model), outs, device="cpu")
    on_dask = np.concatenate([pq.read_table(o).column("y").to_numpy() for o in outs])
    here = folder / "here.parquet"
    ml.model.predict(str(regression_files["whole"]), str(model), str(here), device="cpu")
    np.testing.assert_allclose(on_dask, pq.read_table(here).column("y").to_numpy(), rtol=1e-5, atol=1e-5)


def test_without_early_stopping_every_round_is_trained(cluster, regression_files, tmp_path):
    parts = [str(p) for p in regression_files["parts"]]  # type: ignore[union-attr]
    summary = engine.fit(cluster.address, parts, str(tmp_path / "m.pkl"), task="regression", device="cpu",
                         params={"n_estimators": 30, "early_stopping": False})  # fmt: skip
    assert summary["iterations"] == 30 and summary["best_iteration"] is None
    assert summary["validation_rows"] == 0 and summary["validation_metrics"] is None and summary["rows"] == 12_000


def test_a_regression_of_a_text_target_is_refused(cluster, files, tmp_path):
    text = tmp_path / "text.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "y": ["u", "v", "u"]}), text)
    with pytest.raises(DataProblem) as refused:
        engine.fit(cluster.address, [str(text)], str(tmp_path / "m.pkl"), task="regression", device="cpu")
    assert refused.value.code == "dataset.target_not_numeric"
