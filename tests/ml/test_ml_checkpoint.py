"""Chunked training with checkpoints (ml/checkpoint.py): a chunked fit, a fit stopped at a chunk's
end and resumed, and a fit resumed after its process was killed all give the model an
uninterrupted fit gives (accuracy within 0.005; HistGradientBoosting's trees are even equal)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ml.checkpoint import Checkpoint, Preempted, pin_digest
from ml.model import fit, predict

# Each test trains real models for several seconds (a kill-and-resume, an xgboost continuation):
# the whole suite runs them, the fast loop does not.
pytestmark = pytest.mark.slow

PARAMS = {"max_iter": 60, "early_stopping": False}
LONG = {"max_iter": 80, "early_stopping": False}


@pytest.fixture(scope="module")
def files(tmp_path_factory, seed_frames) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoint")
    train, test = seed_frames(rows=6000, features=20)
    train.to_parquet(folder / "train.parquet", index=False)
    test.drop(columns="y").to_parquet(folder / "test.parquet", index=False)
    return {
        "dir": folder,
        "train": folder / "train.parquet",
        "test": folder / "test.parquet",
        "y": test["y"].to_numpy(),
    }


def accuracy(files: dict, model: Path, tmp_path: Path) -> float:
    result = tmp_path / f"{model.stem}-result.parquet"
    predict(str(files["test"]), str(model), str(result))
    return float(np.mean(pq.read_table(result).column("y").to_numpy() == files["y"]))


def checkpoint_at(path: Path, *, pin: str = "pin", stop_after: int | None = None) -> Checkpoint:
    """A checkpoint in a local file, saving every few rounds (a tiny interval), that asks the fit to
    stop once ``stop_after`` chunks have run."""
    asked = {"n": 0}

    def stop() -> bool:
        asked["n"] += 1
        return stop_after is not None and asked["n"] >= stop_after

    return Checkpoint(
        get_url=str(path), put_url=str(path), pin=pin, interval_s=0.01, stop_requested=stop, min_chunk_s=0
    )


@pytest.fixture(scope="module")
def uninterrupted(files) -> dict:
    model = files["dir"] / "plain.pkl"
    summary = fit(str(files["train"]), str(model), params=PARAMS)
    return {"model": model, "summary": summary}


def test_a_chunked_fit_reports_rounds_and_equals_an_uninterrupted_one(files, uninterrupted, tmp_path):
    calls: list[tuple] = []
    model = tmp_path / "chunked.pkl"
    summary = fit(str(files["train"]), str(model), params=PARAMS, checkpoint=checkpoint_at(tmp_path / "cp"),
                  progress=lambda *c: calls.append(c))  # fmt: skip
    fractions = [f for phase, f, _ in calls if phase == "training" and f is not None]
    assert len(fractions) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert summary["iterations"] == uninterrupted["summary"]["iterations"] == 60
    assert abs(accuracy(files, model, tmp_path) - accuracy(files, uninterrupted["model"], tmp_path)) <= 0.005
    # The model is the library's own class, without the chunk caches
    bundle = pickle.loads(model.read_bytes())
    assert type(bundle.estimator).__name__ == "HistGradientBoostingClassifier"
    assert not any(k.startswith("_tabjob_") for k in vars(bundle.estimator))


def test_a_fit_stopped_at_a_chunk_resumes_from_its_checkpoint(files, uninterrupted, tmp_path):
    cp = tmp_path / "cp"
    # Given a fit asked to stop (its worker got SIGTERM) after its third chunk
    with pytest.raises(Preempted) as stopped:
        fit(str(files["train"]), str(tmp_path / "m.pkl"), params=PARAMS, checkpoint=checkpoint_at(cp, stop_after=3))
    assert 0 < stopped.value.rounds_done < 60
    saved = pickle.loads(cp.read_bytes())
    assert saved["rounds_done"] == stopped.value.rounds_done and saved["rounds_planned"] == 60

    # When the job runs again, it resumes there and says so
    calls: list[tuple] = []
    model = tmp_path / "resumed.pkl"
    fit(
        str(files["train"]),
        str(model),
        params=PARAMS,
        checkpoint=checkpoint_at(cp),
        progress=lambda *c: calls.append(c),
    )
    resumed = [c for c in calls if c[0] == "resumed"]
    assert resumed == [
        ("resumed", saved["rounds_done"] / 60, f"Resumed from a checkpoint at {saved['rounds_done']} of 60 rounds.")
    ]
    first_training = next(f for phase, f, _ in calls if phase == "training" and f is not None)
    assert first_training > saved["rounds_done"] / 60  # no round trained twice
    # Then its model matches the uninterrupted one
    assert abs(accuracy(files, model, tmp_path) - accuracy(files, uninterrupted["model"], tmp_path)) <= 0.005


def test_a_checkpoint_of_other_data_or_parameters_is_not_resumed(files, tmp_path):
    cp = tmp_path / "cp"
    with pytest.raises(Preempted):
        fit(
            str(files["train"]),
            str(tmp_path / "m.pkl"),
            params=PARAMS,
            checkpoint=checkpoint_at(cp, pin="a", stop_after=2),
        )
    calls: list[tuple] = []
    fit(str(files["train"]), str(tmp_path / "m.pkl"), params=PARAMS, checkpoint=checkpoint_at(cp, pin="b"),
        progress=lambda *c: calls.append(c))  # fmt: skip
    assert not [c for c in calls if c[0] == "resumed"]
    assert pin_digest(etag="e1", params=PARAMS) != pin_digest(etag="e2", params=PARAMS)
    assert pin_digest(etag="e1", params=PARAMS) == pin_digest(params=dict(PARAMS), etag="e1")


def long_checkpoint(cp: Path) -> Checkpoint:
    return Checkpoint(str(cp), str(cp), "p", interval_s=0.2, min_chunk_s=0)


def _fit_long(train: str, model: str, cp: str) -> None:
    fit(train, model, params=LONG, checkpoint=long_checkpoint(Path(cp)))


def test_a_fit_killed_mid_run_resumes_and_matches(files, tmp_path):
    # Given a fit whose process is SIGKILLed once it has saved a checkpoint
    cp = tmp_path / "cp"
    process = multiprocessing.get_context("spawn").Process(
        target=_fit_long, args=(str(files["train"]), str(tmp_path / "killed.pkl"), str(cp))
    )
    process.start()
    deadline = time.monotonic() + 240
    while not cp.exists() and time.monotonic() < deadline and process.is_alive():
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    done = pickle.loads(cp.read_bytes())["rounds_done"]
    assert 0 < done < LONG["max_iter"]
    # When it runs again, it resumes there, and its model matches an uninterrupted fit's
    calls: list[tuple] = []
    resumed_model, plain_model = tmp_path / "resumed.pkl", tmp_path / "plain.pkl"
    fit(str(files["train"]), str(resumed_model), params=LONG, checkpoint=long_checkpoint(cp),
        progress=lambda *c: calls.append(c))  # fmt: skip
    assert [c[1] for c in calls if c[0] == "resumed"] == [done / LONG["max_iter"]]
    fit(str(files["train"]), str(plain_model), params=LONG)
    assert abs(accuracy(files, resumed_model, tmp_path) - accuracy(files, plain_model, tmp_path)) <= 0.005


def test_an_xgboost_fit_continues_from_its_booster(files, tmp_path):
    pytest.importorskip("xgboost")
    params = {"n_estimators": 40, "early_stopping": False}
    cp = tmp_path / "cp"
    with pytest.raises(Preempted) as stopped:
        fit(str(files["train"]), str(tmp_path / "m.pkl"), params=params, family="xgboost",
            checkpoint=checkpoint_at(cp, stop_after=2))  # fmt: skip
    resumed_model, plain_model = tmp_path / "resumed.pkl", tmp_path / "plain.pkl"
    summary = fit(str(files["train"]), str(resumed_model), params=params, family="xgboost",
                  checkpoint=checkpoint_at(cp))  # fmt: skip
    assert 0 < stopped.value.rounds_done < 40 and summary["iterations"] == 40
    fit(str(files["train"]), str(plain_model), params=params, family="xgboost")
    assert abs(accuracy(files, resumed_model, tmp_path) - accuracy(files, plain_model, tmp_path)) <= 0.005
