"""Helpers for tests that drive the service as a user does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from app.core.domain import is_terminal
from app.core.waiting import wait_until

T = TypeVar("T")


def put_file(url: str, path: Path) -> None:
    """PUT a file to a presigned URL, as a user's client does."""
    response = httpx.put(url, content=path.read_bytes())
    assert response.status_code == 200, response.text


def wait_for(predicate: Callable[[], T], timeout_s: float = 60, interval_s: float = 0.05) -> T:
    """``app.core.waiting.wait_until`` with the test's defaults; the condition's source names it."""
    return wait_until(
        predicate, what=getattr(predicate, "__name__", "a condition"), timeout_s=timeout_s, interval_s=interval_s
    )


def upload(api: httpx.Client, path: Path) -> str:
    """Create a dataset through /v1 and PUT ``path`` to it; return the dataset id."""
    created = api.post("/v1/datasets", json={"name": path.name})
    assert created.status_code == 201, created.text
    put_file(created.json()["upload_url"], path)
    return created.json()["id"]


def wait_job(api: httpx.Client, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """Poll /v1/jobs/{id} until the job ends; return it."""

    def ended() -> dict[str, Any] | None:
        job = api.get(f"/v1/jobs/{job_id}").json()
        return job if is_terminal(job["status"]) else None

    return wait_for(ended, timeout_s, 0.1)
