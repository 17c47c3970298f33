"""Which engine runs a job, decided at submission, and the checks of a dataset in parts.

A job runs on the Dask engine when it asks for it (``engine: "dask"``), or, without an engine, when
its dataset is in parts or its feature matrix (rows x columns x 8 bytes, from the footers) exceeds
one worker's memory budget (``single_node_max_matrix_bytes``). Only the xgboost family runs there
(``xgboost.dask``); anything else that needs the engine is refused with a code and a hint naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.errors import UserError
from app.core.storage import ObjectInfo
from app.usecases.parts import validate_parts
from app.usecases.services import Services
from app.usecases.validation import usable_model, validate_fit, validate_predict

if TYPE_CHECKING:
    from app.usecases.job_request import JobRequest

DASK = "dask"
ENGINES = (DASK,)
# The families the engine can train (xgboost.dask); a predict's family is its model's.
DASK_FAMILIES = frozenset({"xgboost"})
MATRIX_BYTES_PER_CELL = 8  # float64, as a single-node fit holds it


def validate(svc: Services, tenant: str, request: JobRequest) -> tuple[ObjectInfo, int, int, bool]:
    """The checks at submission, for a single file or every part: the object info (for a dataset in
    parts, sizes summed and one combined ETag), rows, columns, and whether it is in parts."""
    dataset = svc.state.datasets.get(tenant, request.dataset_id)
    if not dataset.parts:
        if request.kind == "fit":
            return (*validate_fit(svc, tenant, request.dataset_id, request.target), False)
        assert request.model_id is not None
        return (*validate_predict(svc, tenant, request.dataset_id, request.model_id), False)
    features = None
    if request.kind == "predict":
        assert request.model_id is not None
        model = usable_model(svc.state.jobs.get_for(tenant, request.model_id))
        features = (model.result or {})["features"]["columns"]
    _, info, rows, columns = validate_parts(
        svc, tenant, request.dataset_id, target=request.target, features=features, task=request.task
    )
    return info, rows, columns, True


def choose_engine(
    svc: Services, request: JobRequest, family: str, rows: int, columns: int, in_parts: bool
) -> str | None:
    """``dask`` or None (one job process), as the module docstring says; refuses what cannot run."""
    settings = svc.settings
    available = bool(settings.dask_scheduler_address)
    if request.engine is not None:
        if request.engine not in ENGINES:
            raise UserError(
                f"Unknown engine '{request.engine}'.", code="job.unknown_engine", hint="Use dask, or leave engine out."
            )
        if family not in DASK_FAMILIES:
            raise UserError(
                f"The '{family}' model family cannot run on the Dask engine; only xgboost can (xgboost.dask).",
                code="job.engine_unsupported",
                hint='Fit with "model": "xgboost" on the Dask engine, or leave engine out.',
                status=422,
            )
        if not available:
            raise UserError(
                "This deployment has no Dask engine.",
                code="engine.unavailable",
                hint="Leave engine out, or ask an operator to start one (tabjob stack --dask-workers N; the "
                "chart's dask.enabled).",
                status=422,
            )
        return DASK
    matrix_bytes = rows * max(1, columns) * MATRIX_BYTES_PER_CELL
    limit = settings.single_node_max_matrix_bytes
    if not in_parts and matrix_bytes <= limit:
        return None
    why = (
        "is in parts" if in_parts else f"needs about {matrix_bytes:,} bytes of memory; one worker's budget is {limit:,}"
    )
    if available and family in DASK_FAMILIES:
        return DASK
    if available:
        hint = 'Fit with "model": "xgboost" and "engine": "dask" (the Dask engine runs xgboost only).'
    else:
        hint = (
            "Such datasets run on the Dask engine (engine: dask, xgboost), which this deployment does not have: "
            "ask an operator to start one, or upload a smaller dataset as one file."
        )
    raise UserError(
        f"This dataset ({rows:,} rows x {columns:,} columns) {why}, so it cannot run on one worker.",
        code="dataset.too_large_for_worker",
        hint=hint,
        status=422,
    )
