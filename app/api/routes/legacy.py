"""The seed's API, kept exactly for existing clients: /upload, /fit, /predict, /status, /result.

Response fields and status words are unchanged (times as Unix seconds); new fields are only
added. Errors use the common envelope plus ``detail``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import ServicesDep, TenantDep
from app.api.errors import error_responses
from app.api.plain_bodies import LegacyDownload, LegacyFitSubmitted, LegacyPredictSubmitted, LegacyUploaded
from app.api.presenters import legacy_status
from app.api.schemas import LegacyStatus
from app.inspection.record_limits import refuse_put_uploads
from app.usecases.datasets import create_dataset
from app.usecases.jobs import result_download
from app.usecases.submission import JobRequest, submit

# Deprecated in the OpenAPI document (kept, unchanged, for the seed's clients): /v1 is the API to use.
router = APIRouter(tags=["legacy"], deprecated=True)
# What /status shows: read just these fields of the job record (not the fit's whole result).
LEGACY_STATUS_FIELDS = (
    "id", "status", "queued_at", "created_at", "started_at", "ended_at",
    "kind", "lane", "phase", "progress", "attempts", "error",
)  # fmt: skip


@router.get(
    "/upload",
    response_model=LegacyUploaded,
    summary="Create a dataset and get a presigned PUT URL for its bytes",
    responses=error_responses(401, 409, 503, legacy=True),
)
def upload(request: Request, svc: ServicesDep, tenant: TenantDep) -> dict[str, Any]:
    """Legacy (the seed's API): `POST /v1/datasets` does the same and says more. Returns a new
    dataset's id and the presigned URL to PUT its Parquet bytes to."""
    refuse_put_uploads(svc.settings)
    dataset, url, *_ = create_dataset(svc, tenant, key_id=getattr(request.state, "api_key_id", None))
    return {"id": dataset.id, "url": url}


@router.post(
    "/fit",
    response_model=LegacyFitSubmitted,
    summary="Train a model on an uploaded dataset",
    responses=error_responses(401, 404, 409, 413, 422, 429, 503, legacy=True),
)
def fit(svc: ServicesDep, tenant: TenantDep, id: str = Query(..., min_length=1, max_length=100)) -> dict[str, Any]:
    """Legacy: `POST /v1/jobs` with `kind: fit`. Trains on the dataset's column `y`; the returned
    id is the model id once the job has finished."""
    done = submit(svc, tenant, JobRequest("fit", id))
    return {"id": done.job.id, "deduplicated": done.deduplicated}


@router.post(
    "/predict",
    response_model=LegacyPredictSubmitted,
    summary="Predict an uploaded dataset with a fitted model",
    responses=error_responses(400, 401, 404, 409, 413, 422, 429, 503, legacy=True),
)
def predict(
    svc: ServicesDep,
    tenant: TenantDep,
    dataset_id: str = Query(..., min_length=1, max_length=100),
    model_id: str = Query(..., min_length=1, max_length=100),
) -> dict[str, Any]:
    """Legacy: `POST /v1/jobs` with `kind: predict`. Labels the dataset with a finished fit."""
    done = submit(svc, tenant, JobRequest("predict", dataset_id, model_id))
    return {"id": done.job.id}


@router.get(
    "/status",
    response_model=LegacyStatus,
    summary="A job's status and times (Unix seconds)",
    responses=error_responses(401, 404, 422, 503, legacy=True),
)
async def status(svc: ServicesDep, tenant: TenantDep, id: str = Query(..., min_length=1, max_length=100)) -> Response:
    """Legacy: `GET /v1/jobs/{id}`. The seed's status words, with Unix-second times."""
    job = await svc.state.conn.arun(svc.state.jobs.owned(tenant, id, LEGACY_STATUS_FIELDS))
    # Plain JSON values, serialised directly (no response-model pass): clients poll this route.
    body = legacy_status(job)
    return Response(json.dumps(body), media_type="application/json")


@router.get(
    "/result",
    response_model=LegacyDownload,
    summary="A presigned GET URL of a finished prediction",
    responses=error_responses(401, 404, 409, 422, 503, legacy=True),
)
def result(svc: ServicesDep, tenant: TenantDep, id: str = Query(..., min_length=1, max_length=100)) -> dict[str, Any]:
    """Legacy: `GET /v1/jobs/{id}/result`. A presigned URL of a finished prediction."""
    url, expires_at = result_download(svc, tenant, id)
    return {"url": url, "expires_at": expires_at.timestamp()}
