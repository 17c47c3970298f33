"""The FastAPI application: assembles routers, error handlers and shared services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import errors
from app.api.middleware import RequestGuards
from app.api.routes import datasets, health, jobs, legacy
from app.auth import seed_bootstrap_keys
from app.services import Services
from app.settings import Settings, get_settings

log = logging.getLogger("tabjob.api")


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The API. Services are built at start-up from ``settings`` unless given (tests)."""

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
        yield

    app = FastAPI(
        title="tabjob",
        version="1.0",
        summary="Tabular training and prediction jobs: upload Parquet, fit, predict, download.",
        lifespan=lifespan,
        # What RequestGuards answers on any route, before routing.
        responses=errors.error_responses(403, 431),
    )
    if services is not None:
        app.state.services = services
    errors.install(app)
    app.add_middleware(RequestGuards)  # auth-off loopback rule, header and body bounds
    app.include_router(health.router)
    app.include_router(legacy.router)
    app.include_router(datasets.router)
    app.include_router(jobs.router)
    return app
