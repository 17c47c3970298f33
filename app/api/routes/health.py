"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.api.errors import error_responses
from app.api.plain_bodies import HealthStatus

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthStatus, summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=HealthStatus,
    summary="The broker and the store are reachable",
    responses=error_responses(503),
)
def readyz(svc: ServicesDep) -> dict[str, str]:
    svc.state.ping()
    svc.store.ping()
    return {"status": "ready"}
