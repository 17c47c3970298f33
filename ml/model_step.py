"""Step two of a two-step job, on the gpu lane: prepared matrix in, model or predictions out.

Reads only the prepared file (``ml.prepared``, memory-mapped Arrow IPC) and the model: no Parquet
is parsed here, so a warm GPU process spends its time on the model. The results are the same
files the one-call ``fit``/``predict`` write (a ModelBundle; the predictions Parquet of ``ml.outputs``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from ml import families
from ml.bundle import ModelBundle, load_bundle, predict_to_result, save_trained
from ml.checkpoint import Checkpoint
from ml.device import choose_device
from ml.io import Progress, fetch_to_file, report
from ml.model import add_evaluation
from ml.prepared import PREDICT, PreparedMismatch, read_prepared
from ml.training import fit_summary, train_family


def train_prepared(
    prepared_url: str,
    model_url: str,
    *,
    family: str,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    device: str | None = None,
    evaluate_url: str | None = None,
    checkpoint: Checkpoint | None = None,
) -> dict[str, Any]:
    """Train ``family`` on the prepared file (kind ``fit``) at ``prepared_url``; write the model to ``model_url``.

    Parameters:
      family: ``xgboost`` (or any family of ``ml.families``, ``hgb`` included).
      params: the family's parameters (its ``tunable_params``).
      progress: called with (phase, fraction or None, message or None): downloading, training, uploading.
      device: ``auto``, ``cpu`` or ``cuda`` (None: the ``TABJOB_ML_DEVICE`` environment variable, else auto).
      evaluate_url: a Parquet file with the target to score the model on after training. The one
        Parquet this step reads: an evaluation set is encoded with the encoding the model learned,
        which the prepare step of a cached training matrix never saw.
      checkpoint: train in chunks of rounds, saving and resuming there (``ml.checkpoint``); None: in one go.

    Returns the same summary as ``ml.model.fit``, with timings download_s, load_s, train_s, upload_s.
    """
    chosen = families.family(family)
    chosen_params = families.chosen_params(chosen, params)
    used_device = choose_device(device) if chosen.uses_gpu else "cpu"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    report(progress, "downloading", 0.0)
    path, temporary = fetch_to_file(prepared_url, scratch_dir=scratch_dir, progress=progress)
    try:
        timings["download_s"] = time.perf_counter() - started
        t0 = time.perf_counter()
        prepared = read_prepared(path)
        data = prepared.training_set(chosen_params, chosen.matrix_dtype)
        spec, notes = prepared.spec, prepared.notes
        facts = {"task_reason": prepared.task_reason, "feature_types": prepared.feature_types}
        target = prepared.target
        del prepared  # the matrices are copies: let the mapping go
        timings["load_s"] = time.perf_counter() - t0
    finally:
        if temporary:
            os.unlink(path)

    n_rows = len(data.codes) + (0 if data.codes_val is None else len(data.codes_val))
    report(progress, "training", None, f"Training on {n_rows:,} rows x {data.X.shape[1]} features.")
    trained, timings["train_s"] = train_family(chosen, data, chosen_params, used_device, checkpoint, progress)
    summary = fit_summary(chosen, trained, data, chosen_params, target)
    summary.update(facts)
    del data
    add_evaluation(summary, timings, chosen, trained, spec, evaluate_url, scratch_dir, progress)

    report(progress, "uploading")
    t0 = time.perf_counter()
    digest = save_trained(model_url, trained, spec, summary, scratch_dir)
    timings["upload_s"] = time.perf_counter() - t0
    return {"model_sha256": digest, "features": spec.to_dict(), **summary, "notes": notes, "timings": timings}


def predict_prepared(
    prepared_url: str,
    model_url: str,
    result_url: str,
    *,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    model_sha256: str | None = None,
    device: str | None = None,
    probabilities: bool = False,
) -> dict[str, Any]:
    """Predict every row of the prepared file (kind ``predict``) at ``prepared_url`` with the model at
    ``model_url``; write the predictions to ``result_url`` (``ml.outputs``: the passthrough columns
    kept in the prepared file, the target-named column, and ``proba_<class>`` columns when
    ``probabilities``).

    Parameters:
      model_sha256: the digest the fit returned; the model's bytes must match it before unpickling.
      device: ``auto``, ``cpu`` or ``cuda`` (for families that can use a GPU).

    Returns a summary: rows, family, device, timings (download_s, load_s, predict_s, upload_s).

    Raises:
      PreparedMismatch: the file was prepared for another feature encoding than the model's.
      ModelTampered: the model's bytes do not match ``model_sha256``.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    report(progress, "downloading", 0.0)
    bundle: ModelBundle = load_bundle(model_url, model_sha256)
    chosen = families.family(bundle.family)
    used_device = choose_device(device) if chosen.uses_gpu else "cpu"
    path, temporary = fetch_to_file(prepared_url, scratch_dir=scratch_dir, progress=progress)
    try:
        timings["download_s"] = time.perf_counter() - started
        t0 = time.perf_counter()
        prepared = read_prepared(path)
        if prepared.kind != PREDICT or prepared.spec.to_dict() != bundle.spec.to_dict():
            raise PreparedMismatch("the prepared file was not prepared for this model's features")
        X = prepared.matrix(chosen.matrix_dtype)
        kept = prepared.passthrough()
        if kept is not None:
            kept = pa.table({n: kept.column(n).combine_chunks() for n in kept.column_names})  # off the mapping
        del prepared
        timings["load_s"] = time.perf_counter() - t0
    finally:
        if temporary:
            os.unlink(path)

    return predict_to_result(
        bundle, X, used_device, result_url, timings=timings, progress=progress, scratch_dir=scratch_dir,
        probabilities=probabilities, passthrough=kept,
    )  # fmt: skip
