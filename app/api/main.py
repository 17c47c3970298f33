"""The FastAPI application: assembles routers, error handlers and shared services."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import errors
from app.api.middleware import RequestGuards
from app.api.openapi_security import match_auth_mode
from app.api.routes import (
    dashboard,
    datasets,
    docs_pages,
    health,
    history,
    job_logs,
    jobs,
    legacy,
    metrics,
    models,
    overview,
    registry,
    scaling,
    schedules,
    usage,
)
from app.core.auth import seed_bootstrap_keys
from app.core.settings import LANES, Settings, get_settings
from app.inspection.pool import pool_for
from app.observability.http import RequestMetrics
from app.observability.queues import QueueCollector
from app.usecases.services import Services
from app.webhooks.outbox import delivering

log = logging.getLogger("tabjob.api")


API_DESCRIPTION = """Upload a Parquet file (`POST /v1/datasets`, then PUT the bytes to the presigned URL),
train a model on it (`POST /v1/jobs` with `kind: fit`), predict new data with it (`kind: predict`) and
download the predictions (`GET /v1/jobs/{id}/result`). Jobs run on workers: poll `GET /v1/jobs/{id}` or
follow its events. Every error is `{"error": {"code", "message", "hint", "retryable"}}`.

Authorize with an API key (`Authorization: Bearer <key>`; a local stack with auth off needs none).
The Python client is `pip install ./client` (`import tabjob`); the CLI is `tabjob --help`."""
TAGS = [
    {"name": "datasets", "description": "Upload Parquet data, see what the store holds, delete it."},
    {"name": "jobs", "description": "Fits and predicts: submit, follow, cancel, download the result."},
    {"name": "models", "description": "Finished fits: list, inspect, export with their schema, delete."},
    {"name": "usage", "description": "Your quotas and what you use of them."},
    {"name": "health", "description": "Liveness and readiness probes (no API key)."},
    {"name": "legacy", "description": "The seed's five routes, unchanged for existing clients. Deprecated: use /v1."},
]


def create_app(settings: Settings | None = None, services: Services | None = None, *, observe: bool = True) -> FastAPI:
    """The API. Services are built at start-up from ``settings`` unless given (tests).
    ``observe=False`` leaves out the request metrics middleware (to measure its cost)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is None:
            app.state.services = Services.from_settings(settings or get_settings())
        bootstrap = app.state.services.settings.bootstrap_api_keys
        if bootstrap is not None and bootstrap.get_secret_value():
            tenants = seed_bootstrap_keys(app.state.services.keys, bootstrap.get_secret_value())
            log.info("bootstrap API keys seeded for tenant(s) %s", ", ".join(tenants))
        if not app.state.services.settings.auth_enabled:
            log.warning(
                "authentication is OFF: every request acts as tenant 'local'; requests arriving on a "
                "non-loopback address are refused (403)"
            )
        app.state.queue_collector = QueueCollector(client=app.state.services.state.conn.r, lanes=LANES)
        inspections = pool_for(app.state.services.settings)
        # The inspection children start in the background: no submission pays for their interpreters.
        threading.Thread(target=inspections.warm, name="tabjob-inspect-warm", daemon=True).start()
        with delivering(app.state.services.notifier, app.state.services.settings.webhook_timeout_s):
            yield

    app = FastAPI(
        title="tabjob",
        version="1.0",
        summary="Tabular training and prediction jobs: upload Parquet, fit, predict, download.",
        description=API_DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # served from pinned package assets instead of a CDN (routes/docs_pages.py)
        redoc_url=None,
        # What RequestGuards answers on any route, before routing.
        responses=errors.error_responses(403, 431),
    )
    if services is not None:
        app.state.services = services
    errors.install(app)
    match_auth_mode(app)
    app.add_middleware(RequestGuards)  # auth-off loopback rule, header and body bounds
    if observe:  # added last, so outermost: it times and labels the guards' refusals too
        app.add_middleware(RequestMetrics)
    app.include_router(health.router)
    app.include_router(legacy.router)
    app.include_router(datasets.router)
    app.include_router(jobs.router)
    app.include_router(job_logs.router)
    app.include_router(models.router)
    app.include_router(registry.router)
    app.include_router(registry.notices_router)
    app.include_router(schedules.router)
    app.include_router(overview.router)
    app.include_router(history.router)
    app.include_router(usage.router)
    app.include_router(metrics.router)
    app.include_router(dashboard.router)
    app.include_router(scaling.router)
    docs_pages.install(app)
    return app
