"""Checkpoints: a long fit trains in chunks of boosting rounds and saves its state after each, so
a fit whose worker is lost resumes from its last chunk instead of its first round.

HistGradientBoosting continues with ``warm_start`` (more ``max_iter`` on the same estimator),
XGBoost from a saved booster (``xgb_model``). A first chunk of 2 % of the rounds measures the
speed; after it a chunk ends after ``interval_s`` seconds or 10 % of the planned rounds, whichever
comes first, but never under ``MIN_CHUNK_S`` (which bounds the cost), and a fit whose rest takes
less than that finishes in one more chunk and saves nothing more.

A warm-started HistGradientBoosting fit would re-bin the whole matrix and re-predict every tree
on every training row at each chunk (measured at 75,000 x 50 on one thread: 10 chunks took 47.6 s
where one took 13.9 s). The estimator therefore trains as a subclass that keeps the binned
matrix and the running raw predictions between chunks (the fit updates them in place, tree by
tree, as an uninterrupted fit does), so chunks cost about what one fit costs and the model is
the same; the class and the caches are taken off before the estimator is saved.

A checkpoint is pinned: it records a digest of what it was trained on (dataset version, family,
parameters, target); one with another pin is ignored, and the fit starts from its first round.
Only workers write checkpoints (their key is never presigned for users).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ml.bundle import write_blob
from ml.families import Family, Trained, TrainingSet
from ml.io import Progress, read_bytes, report

log = logging.getLogger("tabjob.ml.checkpoint")
# Saved at least this often while a fit runs (the 30-60 s), and at least every 10 % of rounds.
DEFAULT_INTERVAL_S = 30.0
CHUNK_FRACTION = 0.1
# The first chunk, which measures the speed: 2 % of the rounds (a three-hour fit saves after 4 minutes).
FIRST_CHUNK_FRACTION = 0.02
# The shortest chunk worth a checkpoint. A chunk costs about 14 ms of CPU beyond its rounds at
# 40,000 x 50 (the warm start's checks, pickling and writing the state: 1.81 s of CPU for a plain
# fit of 100 rounds, 1.98 s in 21 chunks), so chunks of a second or more cost under 2 %.
MIN_CHUNK_S = 1.0
FORMAT = 1


class Preempted(Exception):
    """The fit stopped at a chunk's end because its worker is shutting down; its checkpoint is saved."""

    def __init__(self, rounds_done: int, rounds_planned: int) -> None:
        super().__init__(f"stopped after {rounds_done} of {rounds_planned} rounds; checkpoint saved")
        self.rounds_done, self.rounds_planned = rounds_done, rounds_planned


def pin_digest(**facts: Any) -> str:
    """A digest of what a fit trains on (dataset version, family, parameters, target...)."""
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Checkpoint:
    """Where a fit keeps its checkpoint, and when it saves.

    Attributes:
      get_url, put_url: the checkpoint's presigned GET and PUT URLs (or one local path for both).
      pin: ``pin_digest`` of what the fit trains on; a checkpoint with another pin is not resumed.
      interval_s: the longest time between two saves while the fit runs, in seconds.
      stop_requested: true once the worker asked the fit to stop (SIGTERM): the fit saves at the
        end of its chunk and raises Preempted.
      min_chunk_s: the shortest chunk worth a checkpoint, in seconds (MIN_CHUNK_S).
    """

    get_url: str
    put_url: str
    pin: str
    interval_s: float = DEFAULT_INTERVAL_S
    stop_requested: Callable[[], bool] = field(default=lambda: False)
    scratch_dir: str | None = None
    min_chunk_s: float = MIN_CHUNK_S

    def load(self) -> dict[str, Any] | None:
        """The saved state when there is one with this pin, else None."""
        try:
            raw = read_bytes(self.get_url)
        except (FileNotFoundError, httpx.HTTPStatusError):
            return None
        state = pickle.loads(raw)  # only workers write checkpoints: never a user's bytes
        if state.get("format") != FORMAT or state.get("pin") != self.pin:
            log.info("checkpoint ignored: made for other data or parameters")
            return None
        return state

    def save(self, family: str, rounds_done: int, rounds_planned: int, model: bytes) -> None:
        state = {"format": FORMAT, "pin": self.pin, "family": family, "rounds_done": rounds_done,
                 "rounds_planned": rounds_planned, "model": model, "saved_at": time.time()}  # fmt: skip
        write_blob(self.put_url, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), self.scratch_dir)


def train_in_chunks(
    family: Family, data: TrainingSet, params: dict[str, Any], device: str, checkpoint: Checkpoint,
    progress: Progress | None = None,
) -> Trained:  # fmt: skip
    """Train ``family`` as ``family.train`` would, in chunks of rounds, saving to ``checkpoint``
    after each and resuming from it when it holds this fit's state.

    Reports ``training`` progress (rounds done / planned) after each chunk, and ``resumed`` once
    when it continues a checkpoint. Raises Preempted when ``checkpoint.stop_requested()``.
    """
    chunks = CHUNKERS.get(family.name)
    if chunks is None:  # a family that cannot continue a fit trains in one go
        return family.train(data, params, device)
    planned = chunks.planned_rounds(params)
    state, done = None, 0
    saved = checkpoint.load()
    if saved is not None and saved["family"] == family.name:
        state, done = chunks.load(saved["model"]), int(saved["rounds_done"])
        report(progress, "resumed", done / planned, f"Resumed from a checkpoint at {done} of {planned} rounds.")
    # A first short chunk measures the speed; the chunks after it are sized from it.
    step = max(1, math.ceil(planned * FIRST_CHUNK_FRACTION))
    while True:
        target = min(planned, done + step)
        started = time.monotonic()
        state, trained = chunks.train(state, data, params, device, target)
        elapsed = time.monotonic() - started
        finished = trained.iterations < target or target >= planned  # early stopping, or all rounds
        rounds_run = max(1, trained.iterations - done)
        done = trained.iterations
        report(progress, "training", done / planned, None)
        if finished:
            return chunks.finish(state, trained)
        seconds_per_round = max(elapsed / rounds_run, 1e-6)
        shortest = checkpoint.min_chunk_s
        saving = seconds_per_round * (planned - done) > shortest
        if saving:  # at most an interval or 10 % of the rounds, at least the shortest chunk (the cost bound)
            by_time = int(checkpoint.interval_s / seconds_per_round)
            step = max(1, math.ceil(shortest / seconds_per_round), min(math.ceil(planned * CHUNK_FRACTION), by_time))
        else:  # what is left takes under MIN_CHUNK_S: no checkpoint is worth its cost
            step = planned - done
        stop = checkpoint.stop_requested()
        if saving or stop:
            checkpoint.save(family.name, done, planned, chunks.dump(state))
        if stop:
            raise Preempted(done, planned)


class _KeepWork:
    """Mixed into HistGradientBoosting for a chunked fit: keeps the binned matrices and the
    training rows' raw predictions from one warm-started ``fit`` to the next (see the module)."""

    def _bin_data(self, X: Any, sample_weight: Any, is_training_data: bool) -> Any:
        cache = self.__dict__.setdefault("_tabjob_bins", {})
        entry = cache.get((id(X), is_training_data))
        if entry is not None and entry[0] is X:
            if is_training_data:
                self._bin_mapper = cache["mapper"]
            return entry[1]
        binned = super()._bin_data(X, sample_weight, is_training_data)  # type: ignore[misc]
        cache[(id(X), is_training_data)] = (X, binned)
        if is_training_data:
            cache["mapper"] = self._bin_mapper
        return binned

    def _raw_predict(self, X: Any, n_threads: int | None = None) -> Any:
        in_fit = getattr(self, "_in_fit", False)
        cache = self.__dict__.setdefault("_tabjob_raw", {})
        entry = cache.get(id(X))
        if in_fit and entry is not None and entry[0] is X and entry[1] == len(self._predictors):
            return entry[2]  # the fit goes on updating it in place, tree by tree
        raw = super()._raw_predict(X, n_threads)  # type: ignore[misc]
        if in_fit:
            cache[id(X)] = [X, -1, raw]
        return raw

    def fit(self, X: Any, y: Any, **kwargs: Any) -> Any:
        fitted = super().fit(X, y, **kwargs)  # type: ignore[misc]
        for entry in self.__dict__.get("_tabjob_raw", {}).values():
            entry[1] = len(self._predictors)  # the arrays now hold every tree's contribution
        return fitted


_KEEPING: dict[type, type] = {}


def _keeping(base: type) -> type:
    if base not in _KEEPING:
        _KEEPING[base] = type(f"Chunked{base.__name__}", (_KeepWork, base), {})
    return _KEEPING[base]


def _plain(estimator: Any) -> Any:
    """The estimator as its library's own class, without the chunk caches (to save or return)."""
    base = estimator.__class__.__mro__[2] if isinstance(estimator, _KeepWork) else estimator.__class__
    plain = base.__new__(base)
    plain.__dict__.update({k: v for k, v in estimator.__dict__.items() if not k.startswith("_tabjob_")})
    return plain


class HgbChunks:
    """HistGradientBoosting continued with ``warm_start``: ``max_iter`` grows chunk by chunk."""

    @staticmethod
    def planned_rounds(params: Mapping[str, Any]) -> int:
        from sklearn.ensemble import HistGradientBoostingClassifier

        return int(params.get("max_iter", HistGradientBoostingClassifier().max_iter))

    @staticmethod
    def train(state: Any, data: TrainingSet, params: dict[str, Any], device: str, target: int) -> tuple[Any, Trained]:
        from ml.families import hgb

        chunk = {**params, "max_iter": target, "warm_start": True}
        if state is None:
            state = hgb.new_estimator(data, chunk)
        if not isinstance(state, _KeepWork):
            state.__class__ = _keeping(state.__class__)
        trained = hgb.train(data, chunk, device, estimator=state)
        return state, trained

    @staticmethod
    def dump(state: Any) -> bytes:
        return pickle.dumps(_plain(state), protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(model: bytes) -> Any:
        return pickle.loads(model)

    @staticmethod
    def finish(state: Any, trained: Trained) -> Trained:
        plain = _plain(state)
        plain.set_params(warm_start=False)
        trained.estimator = plain
        return trained


class XgbChunks:
    """XGBoost continued from the booster of the chunks before (``xgb_model``)."""

    @staticmethod
    def planned_rounds(params: Mapping[str, Any]) -> int:
        return int(params.get("n_estimators") or 100)

    @staticmethod
    def train(state: Any, data: TrainingSet, params: dict[str, Any], device: str, target: int) -> tuple[Any, Trained]:
        from ml.families import xgb

        before = None if state is None else state.estimator
        rounds = target - (0 if state is None else state.iterations)
        trained = xgb.train(data, {**params, "n_estimators": rounds}, device, start_from=before)
        return trained, trained

    @staticmethod
    def dump(state: Any) -> bytes:
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(model: bytes) -> Any:
        return pickle.loads(model)

    @staticmethod
    def finish(state: Any, trained: Trained) -> Trained:
        return trained


CHUNKERS: dict[str, Any] = {"hgb": HgbChunks, "xgboost": XgbChunks}
