"""The model families' parameters and their ranges, for ``tabjob fit --help``.

The client installs without the server, so it cannot read the server's parameter models; this
table is their copy, and tests/app/test_cli_params.py fails when it drifts from the API's
``FitParams`` / ``XGBoostParams`` (the OpenAPI document's schemas of the same names).
"""

from __future__ import annotations

# name: (type, minimum, maximum, minimum excluded); None where the API sets no bound.
Bound = tuple[str, float | None, float | None, bool]

PARAMETERS: dict[str, dict[str, Bound]] = {
    "hgb": {
        "learning_rate": ("number", 0, 10, True),
        "max_iter": ("integer", 1, 10000, False),
        "max_leaf_nodes": ("integer", 2, 65536, False),
        "max_depth": ("integer", 1, 1000, False),
        "min_samples_leaf": ("integer", 1, None, False),
        "l2_regularization": ("number", 0, None, False),
        "max_bins": ("integer", 2, 255, False),
        "early_stopping": ("boolean", None, None, False),
        "random_state": ("integer", 0, 4294967295, False),
    },
    "xgboost": {
        "n_estimators": ("integer", 1, 10000, False),
        "learning_rate": ("number", 0, 10, True),
        "max_depth": ("integer", 0, 100, False),
        "max_leaves": ("integer", 0, 1000000, False),
        "min_child_weight": ("number", 0, None, False),
        "reg_lambda": ("number", 0, None, False),
        "reg_alpha": ("number", 0, None, False),
        "subsample": ("number", 0, 1, True),
        "colsample_bytree": ("number", 0, 1, True),
        "max_bin": ("integer", 2, 65536, False),
        "max_cat_to_onehot": ("integer", 1, None, False),
        "early_stopping": ("boolean", None, None, False),
        "random_state": ("integer", 0, 4294967295, False),
    },
}


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe(bound: Bound) -> str:
    """``integer 1..10000``, ``number in (0, 10]``, ``number >= 0``, ``true or false``."""
    kind, low, high, low_open = bound
    if kind == "boolean":
        return "true or false"
    if low is not None and high is not None:
        if kind == "integer" and not low_open:
            return f"integer {_number(low)}..{_number(high)}"
        return f"{kind} in {'(' if low_open else '['}{_number(low)}, {_number(high)}]"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {_number(low)}"
    return kind


def help_epilog() -> str:
    """The families' parameters as help text (click keeps ``\\b`` paragraphs as written)."""
    blocks = []
    for family, params in PARAMETERS.items():
        width = max(map(len, params))
        lines = [f"  {name.ljust(width)}  {describe(bound)}" for name, bound in params.items()]
        blocks.append("\b\n" + f"Parameters of --model {family} (-p NAME=VALUE):\n" + "\n".join(lines))
    return "\n\n".join(blocks)
