"""The HistGradientBoostingClassifier parameters a user may set, with their types.

Kept apart from ``ml.model`` so the API can validate parameters without importing
scikit-learn (seconds of start-up and a hundred MiB it never uses).
"""

from __future__ import annotations

TUNABLE_PARAMS: dict[str, type] = {
    "learning_rate": float,
    "max_iter": int,
    "max_leaf_nodes": int,
    "max_depth": int,
    "min_samples_leaf": int,
    "l2_regularization": float,
    "max_bins": int,
    "early_stopping": bool,
    "random_state": int,
}
