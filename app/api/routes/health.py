"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The broker and the store are reachable", responses={503: {"description": "Not ready"}})
def readyz(svc: ServicesDep) -> dict[str, str]:
    """Ready when the app could serve a job now: the broker answers and the store lets the app's
    own credentials read its bucket. The store check uses object permissions only (see
    ``Store.ping``), so an HMAC key limited to objects, as on GCS, is enough."""
    svc.state.ping()
    svc.store.ping()
    return {"status": "ready"}
