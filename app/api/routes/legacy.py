"""The seed's API, kept exactly for existing clients: /upload, /fit, /predict, /status, /result.

Response fields and status words are unchanged (times as Unix seconds); new fields are only
added. Errors use the common envelope plus ``detail``.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import ServicesDep, TenantDep
from app.api.legacy_schemas import LegacyFit, LegacyPredict, LegacyResult, LegacyUpload
from app.api.presenters import legacy_status
from app.api.schemas import LegacyStatus
from app.limits import refuse_put_uploads
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


@router.get("/upload", summary="Create a dataset and get a presigned PUT URL for its bytes")
def upload(request: Request, svc: ServicesDep, tenant: TenantDep) -> LegacyUpload:
    """Legacy (the seed's API): `POST /v1/datasets` does the same and says more. Returns a new
    dataset's id and the presigned URL to PUT its Parquet bytes to."""
    refuse_put_uploads(svc.settings)
    dataset, url, _ = create_dataset(svc, tenant, key_id=getattr(request.state, "api_key_id", None))
    return LegacyUpload(id=dataset.id, url=url)


@router.post("/fit", summary="Train a model on an uploaded dataset")
def fit(svc: ServicesDep, tenant: TenantDep, id: str = Query(..., min_length=1, max_length=100)) -> LegacyFit:
    """Legacy: `POST /v1/jobs` with `kind: fit`. Trains on the dataset's column `y`; the returned
    id is the model id once the job has finished."""
    done = submit(svc, tenant, JobRequest("fit", id))
    return LegacyFit(id=done.job.id, deduplicated=done.deduplicated)


@router.post("/predict", summary="Predict an uploaded dataset with a fitted model")
def predict(
    svc: ServicesDep,
    tenant: TenantDep,
    dataset_id: str = Query(..., min_length=1, max_length=100),
    model_id: str = Query(..., min_length=1, max_length=100),
) -> LegacyPredict:
    """Legacy: `POST /v1/jobs` with `kind: predict`. Labels the dataset with a finished fit."""
    done = submit(svc, tenant, JobRequest("predict", dataset_id, model_id))
    return LegacyPredict(id=done.job.id)


@router.get("/status", response_model=LegacyStatus, summary="A job's status and times (Unix seconds)")
async def status(svc: ServicesDep, tenant: TenantDep, id: str = Query(..., min_length=1, max_length=100)) -> Response:
    """Legacy: `GET /v1/jobs/{id}`. The seed's status words, with Unix-second times."""
    job = await svc.state.conn.arun(svc.state.jobs.owned(tenant, id, LEGACY_STATUS_FIELDS))
    # Plain JSON values, serialised directly (no response-model pass): clients poll this route.
    body = legacy_status(job)
    return Response(json.dumps(body), media_type="application/json")


@router.get("/result", summary="A presigned GET URL of a finished prediction")
def result(svc: ServicesDep, tenant: TenantDep, id: str = Query(..., min_length=1, max_length=100)) -> LegacyResult:
    """Legacy: `GET /v1/jobs/{id}/result`. A presigned URL of a finished prediction."""
    url, expires_at = result_download(svc, tenant, id)
    return LegacyResult(url=url, expires_at=expires_at.timestamp())
