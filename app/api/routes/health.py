"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.api.errors import error_responses
from app.api.plain_bodies import HealthStatus

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthStatus, summary="The process is alive")
def healthz() -> dict[str, str]:
    """Liveness: the API process answers (it checks nothing else)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=HealthStatus,
    summary="The broker and the store are reachable",
    responses=error_responses(503),
)
def readyz(svc: ServicesDep) -> dict[str, str]:
    """Ready when the app could serve a job now: the broker answers and the store lets the app's
    own credentials read its bucket. The store check uses object permissions only (see
    ``Store.ping``), so an HMAC key limited to objects, as on GCS, is enough."""
    svc.state.ping()
    svc.store.ping()
    return {"status": "ready"}
