"""Data and helpers for the registry and schedule tests: labelled sets of known quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from jobs_testing import put_file, wait_job


def quality_sets(folder: Path, rows: int = 1500) -> dict[str, Path]:
    """A clean hold-out set and training sets of falling quality: ``good`` (clean labels),
    ``fair`` (30 % of labels flipped), ``bad`` (labels unrelated to the features)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=2 * rows, n_features=6, n_informative=4, random_state=7, flip_y=0.0)
    frame = pd.DataFrame(X, columns=[f"col_{i}" for i in range(6)])
    frame["y"] = y
    train, holdout = frame.iloc[:rows].copy(), frame.iloc[rows:].copy()
    rng = np.random.default_rng(7)
    fair = train.copy()
    flip = rng.random(rows) < 0.3
    fair.loc[flip, "y"] = 1 - fair.loc[flip, "y"]
    bad = train.copy()
    bad["y"] = rng.integers(0, 2, rows)
    paths = {name: folder / f"{name}.parquet" for name in ("good", "fair", "bad", "holdout", "unlabelled")}
    for name, data in (("good", train), ("fair", fair), ("bad", bad), ("holdout", holdout)):
        data.to_parquet(paths[name], index=False)
    holdout.drop(columns="y").to_parquet(paths["unlabelled"], index=False)
    return paths


def upload_named(api: httpx.Client, path: Path, name: str) -> dict[str, Any]:
    """Upload ``path`` as the next version of dataset ``name``; the dataset as created."""
    created = api.post("/v1/datasets", json={"name": name})
    assert created.status_code == 201, created.text
    put_file(created.json()["upload_url"], path)
    return created.json()


def registered_fit(api: httpx.Client, dataset: str, name: str = "churn", **extra: Any) -> dict[str, Any]:
    """Submit a registered fit (promoting ``champion`` on accuracy unless ``extra`` says
    otherwise) and wait for it; the finished job."""
    body = {"kind": "fit", "dataset_id": dataset, "register_as": name, "params": {"max_iter": 20}, **extra}
    body.setdefault("evaluate_on", "holdout@latest")
    body.setdefault("promote", {"alias": "champion", "metric": "accuracy"})
    submitted = api.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    return wait_job(api, submitted.json()["id"])
