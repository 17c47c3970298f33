"""The two run-time models ``app.usecases.estimates`` chooses between, each with its error on jobs
it was not fitted on (leave-one-out).

- **Power law**: ``log(duration) = c + b1 log(cells) + b2 log(iterations)``, least squares. Right
  where the work dominates and does not grow in proportion to its size (binning, threads).
- **Overhead plus work**: ``duration = a + b cells x iterations + c cells``, all three at least 0,
  least squares on the relative error. Right for small jobs, whose run time is mostly a fixed
  cost (a job process's download, bounds and upload: about 0.05-0.1 s on the embedded stack)
  that a power law bends into a wrong slope.

Each model's leave-one-out residuals come from its hat matrix (for least squares, the residual a
sample would have had were it left out is its residual over ``1 - h``, Hastie, Tibshirani and
Friedman, *The Elements of Statistical Learning*, eq. 7.52), so choosing costs one fit a model.
The model with the smaller leave-one-out error wins, and that error (not the fit's own residual,
which three coefficients on a handful of samples make too small) sets the interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

# A sample whose leverage is this close to 1 decides its own fit: it says nothing about the error.
MAX_LEVERAGE = 0.98
Sample = dict[str, float]


@dataclass(frozen=True)
class Fitted:
    """A model fitted on the samples: ``log_duration(cells, iterations)`` and its leave-one-out
    error (root mean square, in log space)."""

    name: str
    log_duration: Callable[[float, float], float]
    loo_error: float


def fit_power_law(samples: Sequence[Sample]) -> Fitted | None:
    """The power law, or None when the samples do not pin its three coefficients down."""
    import numpy as np  # here: the workers import this module's caller without numpy

    x = np.array([[1.0, math.log(s["cells"]), math.log(s["iterations"])] for s in samples])
    y = np.array([math.log(s["duration_s"]) for s in samples])
    if len(samples) <= 3 or np.linalg.matrix_rank(x) < 3:
        return None
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    loo = _loo_residuals(x, y - x @ coef)
    if loo is None:
        return None

    def log_duration(cells: float, iterations: float) -> float:
        return float(coef @ np.array([1.0, math.log(cells), math.log(iterations)]))

    return Fitted("log(duration) ~ log(rows x columns) + log(iterations)", log_duration, _rms(loo))


def fit_overhead_plus_work(samples: Sequence[Sample]) -> Fitted | None:
    """Overhead plus work, or None when no subset of its terms fits with coefficients >= 0."""
    import numpy as np

    features = np.array([[1.0, s["cells"] * s["iterations"], s["cells"]] for s in samples])
    durations = np.array([s["duration_s"] for s in samples])
    weighted = features / durations[:, None]  # relative error: each row divided by its duration
    best: tuple[float, Any, tuple[int, ...]] | None = None
    # Non-negative least squares by trying each subset of the three terms (7 small fits).
    for size in (1, 2, 3):
        for terms in combinations(range(3), size):
            cols = list(terms)
            coef, *_ = np.linalg.lstsq(weighted[:, cols], np.ones(len(samples)), rcond=None)
            if (coef < 0).any():
                continue
            error = float(np.sum((weighted[:, cols] @ coef - 1.0) ** 2))
            if best is None or error < best[0]:
                best = (error, coef, terms)
    if best is None or len(samples) <= len(best[2]):
        return None
    _, coef, terms = best
    cols = list(terms)
    relative = weighted[:, cols] @ coef - 1.0  # predicted / actual - 1
    loo_relative = _loo_residuals(weighted[:, cols], relative)
    if loo_relative is None:
        return None
    # The log of actual / predicted had the sample been left out (a prediction of zero or less
    # counts as 20x off).
    ratio = np.maximum(1.0 + loo_relative, 0.05)
    loo = -np.log(ratio)

    def log_duration(cells: float, iterations: float) -> float:
        row = np.array([1.0, cells * iterations, cells])[cols]
        return math.log(max(float(row @ coef), 1e-3))

    return Fitted("duration ~ overhead + rows x columns x iterations + rows x columns", log_duration, _rms(loo))


def _loo_residuals(x: Any, residuals: Any) -> Any | None:
    """Each sample's residual had it been left out of the least-squares fit on ``x`` (its hat
    matrix's diagonal); None when fewer than 3 samples have a usable leverage."""
    import numpy as np

    leverage = np.einsum("ij,ji->i", x, np.linalg.pinv(x))
    usable = leverage < MAX_LEVERAGE
    if int(usable.sum()) < 3:
        return None
    return residuals[usable] / (1.0 - leverage[usable])


def _rms(values: Any) -> float:
    return math.sqrt(float((values**2).mean()))


def best_fit(samples: Sequence[Sample]) -> Fitted | None:
    """The model with the smaller leave-one-out error, or None when neither fits."""
    fitted = [m for m in (fit_power_law(samples), fit_overhead_plus_work(samples)) if m is not None]
    return min(fitted, key=lambda m: m.loo_error) if fitted else None
