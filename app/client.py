"""A Python client for the tabjob ``/v1`` API: ``TabjobClient(url, api_key)``.

    client = TabjobClient("http://127.0.0.1:8000")
    dataset = client.upload("train.parquet")
    job = client.wait(client.fit(dataset["id"])["id"])

Errors come back as ``ApiError`` with the server's code, message and hint.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from app.domain import is_terminal
from app.waiting import WaitTimeout, wait_until

DEFAULT_URL = "http://127.0.0.1:8000"
CHUNK_BYTES = 1024 * 1024


class _CountingFile(io.FileIO):
    """A file that reports the bytes read so far (a real file, so httpx sends Content-Length)."""

    def __init__(self, path: Path, size: int, on_bytes: Callable[[int, int], None] | None) -> None:
        super().__init__(path, "rb")
        self._size, self._on_bytes, self._done = size, on_bytes, 0

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        self._done += len(chunk)
        if self._on_bytes and chunk:
            self._on_bytes(self._done, self._size)
        return chunk


class ApiError(Exception):
    """An error answered by the API (or the transport), with its stable code."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{message} [{code}]" + (f"\nHint: {hint}" if hint else ""))
        self.status, self.code, self.message, self.hint = status, code, message, hint


class TabjobClient:
    """Parameters:
    url: the API's base URL (default: TABJOB_URL, else http://127.0.0.1:8000).
    api_key: a bearer token (default: TABJOB_API_KEY; none for a local stack).
    timeout_s: per-request timeout in seconds.
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, *, timeout_s: float = 30.0) -> None:
        self.url = (url or os.environ.get("TABJOB_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("TABJOB_API_KEY")
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        # Presigned URLs carry their own authorization: never send the API key to the store.
        self.storage = httpx.Client(timeout=max(timeout_s, 300.0))

    def close(self) -> None:
        self.http.close()
        self.storage.close()

    def __enter__(self) -> TabjobClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                0, "client.unreachable", f"Cannot reach {self.url}: {exc}", "Is the server running? Check TABJOB_URL."
            ) from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": f"http.{response.status_code}", "message": response.text[:500]}
            raise ApiError(
                response.status_code, error.get("code", "unknown"), error.get("message", ""), error.get("hint")
            )
        return response.json()

    # datasets
    def create_dataset(self, name: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/v1/datasets", json={"name": name})

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/datasets/{dataset_id}")

    def upload(self, path: str | Path, *, on_bytes: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Create a dataset and PUT the file's bytes to its presigned URL (streamed)."""
        path = Path(path)
        created = self.create_dataset(path.name)
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            done = 0
            with path.open("rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    done += len(chunk)
                    if on_bytes:
                        on_bytes(done, size)
                    yield chunk

        form, put_url = created.get("upload_form"), created.get("upload_url")
        response = None
        if form:  # size-bounded by the store
            with _CountingFile(path, size, on_bytes) as file:
                response = self.storage.post(form["url"], data=form["fields"], files={"file": (path.name, file)})
        # The PUT URL: older servers, or a store that refused the form for another reason than its
        # size (one without POST policies); the size limit then holds at submission.
        if put_url and (response is None or (response.status_code >= 300 and "EntityTooLarge" not in response.text)):
            response = self.storage.put(put_url, content=chunks(), headers={"content-length": str(size)})
        assert response is not None, "the server gave neither an upload form nor an upload URL"
        if response.status_code >= 300:
            raise ApiError(
                response.status_code, "upload.failed", f"The store refused the upload: {response.text[:300]}"
            )
        return created

    # jobs
    def fit(
        self,
        dataset_id: str,
        *,
        params: dict[str, Any] | None = None,
        lane: str = "auto",
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        body = {"kind": "fit", "dataset_id": dataset_id, "params": params, "lane": lane}
        return self._call("POST", "/v1/jobs", json=body, headers=headers)

    def predict(
        self, dataset_id: str, model_id: str, *, lane: str = "auto", idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        body = {"kind": "predict", "dataset_id": dataset_id, "model_id": model_id, "lane": lane}
        return self._call("POST", "/v1/jobs", json=body, headers=headers)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}")

    def jobs(
        self, *, status: str | None = None, kind: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        params = {
            k: v for k, v in {"status": status, "kind": kind, "limit": limit, "cursor": cursor}.items() if v is not None
        }
        return self._call("GET", "/v1/jobs", params=params)

    def events(self, job_id: str, after: int = 0) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}/events", params={"after": after})

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/jobs/{job_id}/cancel")

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float | None = None,
        poll_s: float = 0.2,
        on_update: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job ends; ``on_update(job, new_events)`` sees every change."""
        after = 0
        last: dict[str, Any] = {}

        def ended() -> dict[str, Any] | None:
            nonlocal after
            job = self.job(job_id)
            new = self.events(job_id, after)
            after = new["next_after"]
            if on_update:
                on_update(job, new["items"])
            last.update(job)
            return job if is_terminal(job["status"]) else None

        try:
            return wait_until(
                ended, what=f"job {job_id} to end", timeout_s=float("inf") if timeout_s is None else timeout_s,
                interval_s=poll_s,
            )  # fmt: skip
        except WaitTimeout:
            raise ApiError(
                0, "client.timeout", f"Job {job_id} did not end within {timeout_s} s (status {last.get('status')})."
            ) from None

    def download(self, job_id: str, dest: str | Path, *, on_bytes: Callable[[int, int], None] | None = None) -> Path:
        """Stream a finished prediction's Parquet file to ``dest``."""
        link = self._call("GET", f"/v1/jobs/{job_id}/result")
        dest = Path(dest)
        with self.storage.stream("GET", link["url"]) as response:
            if response.status_code >= 300:
                raise ApiError(
                    response.status_code,
                    "download.failed",
                    f"The store refused the download: {response.read()[:300]!r}",
                )
            total = int(response.headers.get("content-length") or 0)
            done = 0
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    out.write(chunk)
                    done += len(chunk)
                    if on_bytes:
                        on_bytes(done, total)
        return dest

    def overview(self) -> dict[str, Any]:
        """Lanes, running and waiting jobs, recent failures and workers (all tenants' for an admin key)."""
        return self._call("GET", "/v1/overview")

    def ready(self) -> bool:
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False
