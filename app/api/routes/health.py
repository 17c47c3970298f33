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
    svc.state.ping()
    svc.store.ping()
    return {"status": "ready"}
