"""``GET /v1/overview``: what runs, what waits and why, what failed, and the workers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from app.api import examples as ex
from app.api.deps import ServicesDep, ViewerDep
from app.api.schemas import ErrorEnvelope
from app.core.domain import LANES
from app.observability.overview import build_overview

router = APIRouter(prefix="/v1", tags=["observability"], responses={401: {"model": ErrorEnvelope}})


@router.get(
    "/overview",
    summary="Lanes, running and waiting jobs, recent failures by code, workers",
    responses={200: {"content": {"application/json": {"example": ex.OVERVIEW}}}},
)
async def overview(svc: ServicesDep, viewer: ViewerDep) -> dict[str, Any]:
    """What the service is doing now: each lane's load, the running and waiting jobs (and why they
    wait), failures by code over the last `failure_window_s`, and the workers. A tenant sees its own
    jobs and failures (and the lanes' load); an admin key sees all."""
    return await run_in_threadpool(build_overview, svc.state.conn.r, svc.settings, viewer, LANES)
