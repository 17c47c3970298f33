"""A fit's metrics as people read them in ``tabjob status``, ``wait`` and ``model``."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from tabjob.model_results import CLASSIFICATION_METRICS, REGRESSION_METRICS


def _value(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def scalar_metrics(scores: dict[str, Any]) -> str:
    """``accuracy 0.9120, log_loss 0.2410, ...`` for the metric keys present in ``scores``."""
    keys = [k for k in CLASSIFICATION_METRICS + REGRESSION_METRICS if k in scores and k != "confusion_matrix"]
    return ", ".join(f"{k} {_value(scores[k])}" for k in keys)


def confusion_lines(matrix: list[list[int]], classes: list[Any]) -> list[str]:
    """The confusion matrix as aligned rows (true class down, predicted across)."""
    labels = [str(c) for c in classes] if len(classes) == len(matrix) else [str(i) for i in range(len(matrix))]
    width = max([len(label) for label in labels] + [len(str(n)) for row in matrix for n in row])
    lines = ["    " + "true / predicted".rjust(17) + "  " + " ".join(escape(label.rjust(width)) for label in labels)]
    for label, row in zip(labels, matrix, strict=True):
        lines.append(f"    {escape(label.rjust(17))}  " + " ".join(str(n).rjust(width) for n in row))
    return lines


def metrics_lines(validation: dict[str, Any] | None, classes: list[Any]) -> list[str]:
    """Every metric of a fit's ``result.validation``: on the held-out rows, then on its
    evaluation dataset, each with its confusion matrix for a classification."""
    if not validation:
        return []
    lines = []
    if scalars := scalar_metrics(validation):
        lines.append(f"  held-out rows ({validation.get('rows', 0):,}): {scalars}")
        if validation.get("confusion_matrix"):
            lines += confusion_lines(validation["confusion_matrix"], classes)
    evaluation = validation.get("evaluation")
    if evaluation:
        lines.append(
            f"  evaluation dataset {evaluation.get('dataset_id')} ({evaluation.get('rows', 0):,} rows): "
            f"{scalar_metrics(evaluation)}"
        )
        if evaluation.get("confusion_matrix"):
            lines += confusion_lines(evaluation["confusion_matrix"], classes)
        lines += [f"    {escape(note)}" for note in evaluation.get("notes") or []]
    return lines
