"""``GET /metrics``: the API's Prometheus metrics and every lane's queue gauges."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from app.observability import exposition

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format): requests, jobs, queues, workers",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"example": 'tabjob_jobs_queued{lane="small"} 1.0\n'}}}},
)
async def metrics(request: Request) -> Response:
    """The API's metrics and every lane's queue gauges in Prometheus' text format (`tabjob_` prefix,
    base units, no tenant or id labels), for a scraper; no API key needed."""
    # No key: Prometheus scrapes without one, and no label names a tenant or an id. The queue
    # collector talks to Valkey, so the rendering runs in the thread pool.
    collector = request.app.state.queue_collector
    body, content_type = await run_in_threadpool(exposition.render, collector)
    return Response(body, media_type=content_type)
