"""The part of ``tabjob.Client`` about what jobs leave behind: predictions to download, models to
list, export and delete, and datasets to delete (``Client`` inherits these methods)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tabjob import transfers
from tabjob.model_results import Model, ModelExport
from tabjob.results import Page
from tabjob.transfers import ProgressCallback


class ManagingMethods:
    """Predictions (download, read), models (list, show, export, delete) and dataset deletion."""

    # Provided by Client: the store's connection and the API call with its error handling.
    storage: httpx.Client
    _call: Callable[..., Any]

    def result_url(self, job_id: str) -> tuple[str, datetime]:
        """A presigned GET URL of a finished prediction's Parquet file, and when it expires."""
        body = self._call("GET", f"/v1/jobs/{job_id}/result")
        return body["url"], datetime.fromisoformat(body["expires_at"])

    def download(self, job_id: str, dest: str | os.PathLike[str], *, on_bytes: ProgressCallback | None = None) -> Path:
        """Save a finished prediction (Parquet, one column ``y``) and return the file's path.

        ``dest`` is a file path, or an existing folder to save ``<job_id>.parquet`` into. The
        file appears only once complete (written beside it, then renamed).
        """
        target = Path(dest)
        if target.is_dir():
            target = target / f"{job_id}.parquet"
        elif not target.parent.is_dir():
            raise FileNotFoundError(f"The folder {target.parent} does not exist.")
        url, _ = self.result_url(job_id)
        partial = target.with_name(target.name + ".part")
        try:
            transfers.save(self.storage, url, partial, on_bytes)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def read_result(self, job_id: str) -> Any:
        """A finished prediction as a ``pyarrow.Table`` (``.to_pandas()`` for a DataFrame)."""
        import pyarrow.parquet as pq

        url, _ = self.result_url(job_id)
        buffer = io.BytesIO()
        with transfers.stream(self.storage, url) as response:
            for chunk in response.iter_bytes(transfers.CHUNK_BYTES):
                buffer.write(chunk)
        return pq.read_table(io.BytesIO(buffer.getvalue()))

    def models(self, *, limit: int = 50, cursor: str | None = None) -> Page[Model]:
        """Your models (finished fits that were not deleted), newest first, ``limit`` per page."""
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = self._call("GET", "/v1/models", params=params)
        return Page([Model.from_api(m) for m in body["items"]], body.get("next_cursor"))

    def model(self, model_id: str) -> Model:
        """A model: its features, target, classes, validation score, training time and size."""
        return Model.from_api(self._call("GET", f"/v1/models/{model_id}"))

    def model_export(self, model_id: str) -> ModelExport:
        """A presigned URL of the model's file, its format, and its feature schema."""
        return ModelExport.from_api(self._call("GET", f"/v1/models/{model_id}/export"))

    def export_model(self, model_id: str, dest: str | os.PathLike[str] = ".") -> Path:
        """Save the model's file, and its feature schema beside it as ``<file>.schema.json``.

        ``dest`` is a file path, or an existing folder to save the server's file name into.
        Returns the model file's path. The file's ``format`` (``model_export``) says how to load it.
        """
        export = self.model_export(model_id)
        target = Path(dest)
        if target.is_dir():
            target = target / export.filename
        elif not target.parent.is_dir():
            raise FileNotFoundError(f"The folder {target.parent} does not exist.")
        partial = target.with_name(target.name + ".part")
        try:
            transfers.save(self.storage, export.url, partial, None)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        schema = {"model_id": model_id, "format": export.format, **export.schema}
        target.with_name(target.name + ".schema.json").write_text(json.dumps(schema, indent=2, default=str) + "\n")
        return target

    def delete_model(self, model_id: str) -> None:
        """Delete a model's file; the fit job stays in the history, and predicts with it are refused.

        Predicts already queued with it fail with ``model.deleted``.
        """
        self._call("DELETE", f"/v1/models/{model_id}")

    def overview(self) -> dict[str, Any]:
        """What the dashboard and ``tabjob top`` show: lanes, running and waiting jobs, recent
        failures and workers (``GET /v1/overview``, as the API answers it)."""
        return self._call("GET", "/v1/overview")

    def delete_dataset(self, dataset_id: str) -> None:
        """Delete a dataset's bytes and record. Jobs still queued on it fail with ``dataset.deleted``;
        models trained on it and finished predictions stay."""
        self._call("DELETE", f"/v1/datasets/{dataset_id}")
