"""Which model family a job uses, and whether it runs as two steps.

The API must not load scikit-learn or XGBoost, so it does not import ``ml.families``: this light
table repeats what the service needs of each family (its name, whether it runs its model on the
gpu lane, the parameters a user may set), and ``tests/app/test_gpu_pipeline_units.py`` keeps it in
step with ``ml.families.FAMILIES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.domain import JobKind
from app.core.errors import UserError


@dataclass(frozen=True)
class ModelFamily:
    """What the service knows of a model family.

    two_steps: its jobs run as ``prepare`` (CPU lane) then ``model`` (gpu lane); otherwise as one
      call on a CPU lane (``ml.model.fit``/``predict``).
    params: the parameters a fit may set (``ml.families.FAMILIES[name].tunable_params``).
    """

    name: str
    two_steps: bool
    params: frozenset[str]


HGB = ModelFamily(
    "hgb",
    two_steps=False,
    params=frozenset({"learning_rate", "max_iter", "max_leaf_nodes", "max_depth", "min_samples_leaf",
                      "l2_regularization", "max_bins", "early_stopping", "random_state"}),
)  # fmt: skip
XGBOOST = ModelFamily(
    "xgboost",
    two_steps=True,
    params=frozenset({"n_estimators", "learning_rate", "max_depth", "max_leaves", "min_child_weight", "reg_lambda",
                      "reg_alpha", "subsample", "colsample_bytree", "max_bin", "max_cat_to_onehot",
                      "early_stopping", "random_state"}),
)  # fmt: skip
FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (HGB, XGBOOST)}
DEFAULT_FAMILY = HGB.name


def choose_family(kind: JobKind, requested: str | None, model_family: str | None = None) -> ModelFamily:
    """The family of a job: a fit's is the one asked for (default ``hgb``); a predict's is its
    model's (``model_family``), and asking for another is refused."""
    if kind == "predict":
        assert model_family is not None
        if requested and requested != model_family:
            raise UserError(
                f"The model was trained as '{model_family}'; a predict uses its model's family.",
                code="job.model_family_mismatch",
                hint="Leave model out of a predict, or pass the model's own family.",
                status=422,
            )
        return FAMILIES[model_family]
    name = requested or DEFAULT_FAMILY
    if name not in FAMILIES:
        raise UserError(
            f"Unknown model family '{name}'.",
            code="job.unknown_model",
            hint=f"Use one of {', '.join(FAMILIES)}.",
            status=422,
        )
    return FAMILIES[name]


def check_params(family: ModelFamily, params: dict[str, object]) -> None:
    """Refuse parameters the family does not take (the API's schemas check them first; this is
    for callers that build a request without them, and names them all)."""
    unknown = sorted(set(params) - family.params)
    if unknown:
        raise UserError(
            f"Parameter(s) {', '.join(unknown)} do not apply to model family '{family.name}'.",
            code="job.invalid_params",
            hint=f"It takes {', '.join(sorted(family.params))}.",
            status=422,
        )
