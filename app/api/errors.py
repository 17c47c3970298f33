"""One error envelope for every route: ``{"error": {"code", "message", "hint"}}``.

Legacy routes also carry ``detail`` (the message), which clients written for FastAPI's default
error bodies read. No error ever leaves as HTML or as a bare 500 without a body.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.schemas import ErrorEnvelope
from app.core.errors import TabjobError

log = logging.getLogger("tabjob.api")
LEGACY_PATHS = ("/upload", "/fit", "/predict", "/status", "/result")


class LegacyErrorEnvelope(ErrorEnvelope):
    """Every error of the seed's routes: the common envelope plus ``detail``."""

    detail: str = Field(
        description="The error's message as a string (as the seed's clients read it; not FastAPI's list "
        "of validation errors, a 422 included)."
    )


# What each error status means on this API; the body is always the envelope.
ERROR_MEANINGS: dict[int, str] = {
    400: "The body is not JSON, or the request cannot be carried out as asked (a model_id naming a predict job).",
    401: "No API key, or an unknown, malformed or revoked one.",
    403: "Authentication is off and the request did not arrive on a loopback address.",
    404: "No such dataset or job for this tenant.",
    409: "The resource is not in a state that allows this (a job not finished, a dataset not uploaded), "
    "or the deployment hands out no PUT upload URLs.",
    410: "The model was deleted (`model.deleted`): train a new one.",
    413: "The dataset (its bytes, rows, columns or footer) or the request body is larger than the service accepts.",
    422: "The request or its data is invalid; the message names what to fix.",
    429: "The tenant has as many queued jobs as allowed; retry once some have started.",
    431: "The request has too many or too large headers.",
    503: "The broker or the object store is unavailable; retry shortly (retryable is true).",
}


def error_responses(*statuses: int, legacy: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer ``statuses``: each with its meaning and the
    envelope (the legacy one, with ``detail``, on the seed's routes). Declaring 422 replaces
    FastAPI's default validation-error schema, which this API never sends."""
    model = LegacyErrorEnvelope if legacy else ErrorEnvelope
    return {status: {"model": model, "description": ERROR_MEANINGS[status]} for status in statuses}


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


def _problem(error: dict) -> str:
    """One validation problem: where, and what (a validator's own message says both)."""
    message, where = str(error.get("msg", "")), _field(tuple(error.get("loc", ())))
    if error.get("type") == "value_error" and where == "request":
        # A whole-body validator's message names its field itself and reads as a sentence.
        return message.removeprefix("Value error, ")
    return f"{where}: {message}"


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
        problems = [_problem(e) for e in exc.errors()[:10]]
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
