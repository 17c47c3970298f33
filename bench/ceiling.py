"""The framework's ceiling: a FastAPI app whose handlers return a constant, served by uvicorn
with the settings ``tabjob api`` uses. Handlers are plain ``def`` like tabjob's routes, so both
go through the same thread pool. Run: ``python -m bench.ceiling --port N``."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI

from app.api.http_protocol import bounded_protocol
from app.core.settings import Settings

JOB = {"id": "job_0123456789abcdef0123", "kind": "fit", "status": "finished", "lane": "small", "progress": 1.0}


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        return JOB

    @app.get("/status")
    def status(id: str) -> dict[str, Any]:
        return JOB

    @app.post("/v1/jobs", status_code=202)
    def submit() -> dict[str, Any]:
        return JOB

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # As app.cli.main.api: the same protocol (httptools with a bounded head), no access log.
    uvicorn.run(
        create_app(), host=args.host, port=args.port, log_level="info", access_log=False,
        http=bounded_protocol(Settings.model_fields["api_max_header_bytes"].default),
    )  # fmt: skip


if __name__ == "__main__":
    main()
