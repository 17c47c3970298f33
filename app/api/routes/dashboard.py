"""``GET /dashboard``: one self-contained page (HTML, JS, CSS served from here, no CDN, no build
step) that polls ``/v1/overview``. The page itself holds no data, so it needs no key; the
browser sends the key with each overview request (see app/api/static/dashboard.js)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.core.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Only this origin may provide scripts, styles and data: a page that shows every tenant's jobs
# to an admin must not run anyone else's code.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_FILES = {
    "dashboard_common.js": "text/javascript",
    "dashboard.js": "text/javascript",
    "dashboard_models.js": "text/javascript",
    "dashboard.css": "text/css",
    "job.js": "text/javascript",
}

router = APIRouter(tags=["observability"])


def _file(name: str, media_type: str) -> FileResponse:
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=headers)


@router.get("/dashboard", summary="The live dashboard page (for browsers)", response_class=FileResponse)
async def dashboard() -> FileResponse:
    """A page for browsers that polls `/v1/overview` (with the key typed into it) and shows the
    lanes, the running and waiting jobs and the recent failures; no API key needed for the page."""
    return _file("dashboard.html", "text/html; charset=utf-8")


@router.get("/dashboard/job", include_in_schema=False, response_class=FileResponse)
async def dashboard_job() -> FileResponse:
    """A page for browsers that shows one job (`?id=job_...`) from `/v1/history/{id}`: status,
    steps, timings, parameters, metrics, events, the error with its hint, and links to its dataset
    and model; no API key needed for the page (the browser sends the key it holds)."""
    return _file("job.html", "text/html; charset=utf-8")


@router.get("/dashboard/{name}", include_in_schema=False, response_class=FileResponse)
async def dashboard_asset(name: str) -> FileResponse:
    if name not in _FILES:
        raise NotFound(f"No dashboard file '{name}'.", code="dashboard.not_found")
    return _file(name, _FILES[name])
