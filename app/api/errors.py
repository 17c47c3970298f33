"""One error envelope for every route: ``{"error": {"code", "message", "hint"}}``.

Legacy routes also carry ``detail`` (the message), which clients written for FastAPI's default
error bodies read. No error ever leaves as HTML or as a bare 500 without a body.
"""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import TabjobError

log = logging.getLogger("tabjob.api")
LEGACY_PATHS = ("/upload", "/fit", "/predict", "/status", "/result")


def envelope(
    request: Request,
    status: int,
    code: str,
    message: str,
    hint: str | None = None,
    retryable: bool = False,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict = {"error": {"code": code, "message": message, "hint": hint, "retryable": retryable}}
    if request.url.path in LEGACY_PATHS:
        body["detail"] = message
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"


def install(app: FastAPI) -> None:
    @app.exception_handler(TabjobError)
    async def tabjob_error(request: Request, exc: TabjobError) -> JSONResponse:
        if exc.status >= 500:
            log.warning("%s %s: %s (%s)", request.method, request.url.path, exc.message, exc.code)
        return envelope(request, exc.status, exc.code, exc.message, exc.hint, exc.retryable, exc.headers)

    @app.exception_handler(redis.RedisError)
    async def broker_error(request: Request, exc: redis.RedisError) -> JSONResponse:
        if isinstance(exc, redis.ResponseError):
            # The broker answered and refused the command (WRONGTYPE, a script error): a bug of
            # ours, not an outage. A 503 would tell clients to retry, and differ from a 404.
            log.error("%s %s: the broker refused a command (%s)", request.method, request.url.path, exc)
            return envelope(request, 500, "internal", "An unexpected error occurred; it has been logged.")
        log.warning("%s %s: the broker failed (%s)", request.method, request.url.path, type(exc).__name__)
        return envelope(
            request, 503, "platform.unavailable", "The job broker is unavailable; try again shortly.", retryable=True
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_field(tuple(e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()[:10]]
        return envelope(
            request,
            422,
            "request.invalid",
            "The request is invalid: " + "; ".join(problems) + ".",
            "Check the parameters against the API documentation at /docs.",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "route.not_found", 405: "route.method_not_allowed"}.get(exc.status_code, "request.error")
        return envelope(request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return envelope(request, 500, "internal", "An unexpected error occurred; it has been logged.", retryable=True)
