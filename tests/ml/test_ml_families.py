"""The registry of model families, and the choice of device."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest

import ml.model
from ml import device as ml_device
from ml import families
from ml.device import DeviceUnavailable, choose_device, cuda_usable, visible_gpus
from ml.families import FAMILIES, Family, Trained, TrainingSet
from ml.model import fit, predict


@dataclass
class MostFrequent:
    label: Any


def train_most_frequent(data: TrainingSet, params: dict[str, Any], device: str) -> Trained:
    [(label, _)] = Counter(data.labels().tolist()).most_common(1)
    return Trained(estimator=MostFrequent(label), iterations=1, device=device)


def predict_most_frequent(estimator: MostFrequent, X: np.ndarray, device: str) -> np.ndarray:
    return np.full(len(X), estimator.label, dtype=object)


def test_the_registry_knows_hgb_and_xgboost():
    assert list(FAMILIES) == ["hgb", "xgboost"]
    assert families.DEFAULT_FAMILY == "hgb"
    assert ml.model.TUNABLE_PARAMS is FAMILIES["hgb"].tunable_params  # what the API validates against
    assert (FAMILIES["hgb"].uses_gpu, FAMILIES["xgboost"].uses_gpu) == (False, True)


def test_unknown_family_and_parameters_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown model family 'lightgbm'"):
        fit(str(tmp_path / "never-read.parquet"), str(tmp_path / "m.pkl"), family="lightgbm")
    with pytest.raises(ValueError, match="max_iter do not apply to model family 'xgboost'"):
        families.chosen_params(FAMILIES["xgboost"], {"max_iter": 3})
    assert families.chosen_params(FAMILIES["xgboost"], {"max_depth": 3}) == {"random_state": 0, "max_depth": 3}


def test_a_third_family_is_one_registry_entry(monkeypatch, tmp_path, write_parquet, read_predictions):
    # Given a family registered with one line
    family = Family(
        name="most-frequent",
        tunable_params={},
        default_params={},
        matrix_dtype=np.float32,
        train=train_most_frequent,
        predict=predict_most_frequent,
    )
    monkeypatch.setitem(FAMILIES, family.name, family)
    data = write_parquet("train.parquet", pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "b"]}))

    # When it fits and predicts through the ordinary contract
    summary = fit(data, str(tmp_path / "m.pkl"), family="most-frequent")
    predicted = predict(data, str(tmp_path / "m.pkl"), str(tmp_path / "r.parquet"))

    # Then the model file records it and predict used it
    assert summary["family"] == predicted["family"] == "most-frequent"
    assert cloudpickle.loads((tmp_path / "m.pkl").read_bytes()).family == "most-frequent"
    assert read_predictions(str(tmp_path / "r.parquet")) == ["b"] * 3


@pytest.fixture
def fresh_probe(monkeypatch):
    """Forget the remembered GPU answer before and after the test (it is asked once per process)."""
    monkeypatch.delenv(ml_device.DEVICE_ENV, raising=False)
    cuda_usable.cache_clear()
    yield
    cuda_usable.cache_clear()


def test_cpu_is_always_available(fresh_probe):
    assert choose_device("cpu") == "cpu"
    assert choose_device(" CPU ") == "cpu"


def test_auto_follows_what_is_usable(fresh_probe):
    assert choose_device() == choose_device("auto") == ("cuda" if cuda_usable() else "cpu")
    assert visible_gpus() >= 0


def test_no_visible_gpu_means_cpu(fresh_probe, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")

    assert cuda_usable() is False
    assert choose_device("auto") == "cpu"
    with pytest.raises(DeviceUnavailable):
        choose_device("cuda")


def test_the_environment_forces_a_device(fresh_probe, monkeypatch):
    monkeypatch.setenv(ml_device.DEVICE_ENV, "cpu")
    assert choose_device() == "cpu"
    assert choose_device("auto") == ("cuda" if cuda_usable() else "cpu")  # a parameter wins over the environment
    monkeypatch.setenv(ml_device.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        choose_device()


def test_forced_cuda_without_a_gpu_fails_before_any_work(fresh_probe, monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    model = tmp_path / "m.pkl"

    with pytest.raises(DeviceUnavailable):
        fit(str(tmp_path / "never-read.parquet"), str(model), family="xgboost", device="cuda")

    assert not model.exists()
