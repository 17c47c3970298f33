"""``tabjob.Client``: the ``/v1`` API from Python, over HTTP, with typed results.

Bytes never pass through the API: uploads and downloads go straight to the object store
through the short-lived presigned URLs the API hands out, on a second HTTP client that never
carries the API key.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from tabjob import transfers
from tabjob.csv_input import CsvConversion
from tabjob.errors import ApiError, InvalidDataset, JobCanceled, JobFailed, WaitTimeout
from tabjob.job_logs import LogMethods
from tabjob.managing import ManagingMethods
from tabjob.registry import RegistryMethods
from tabjob.results import Dataset, EventPage, Job, JobEvent, Page
from tabjob.transfers import ProgressCallback

DEFAULT_URL = "http://127.0.0.1:8000"
# Presigned transfers may move gigabytes: their timeout is per read/write, never below this.
STORE_TIMEOUT_S = 300.0

UpdateCallback = Callable[[Job, list[JobEvent]], None]
log = logging.getLogger("tabjob")


class Client(ManagingMethods, RegistryMethods, LogMethods):
    """A connection to one tabjob service, as one tenant.

    Parameters:
        url: the API's base URL (default: ``TABJOB_URL``, else http://127.0.0.1:8000).
        api_key: a bearer API key (default: ``TABJOB_API_KEY``; none for a local stack).
        timeout_s: per-request timeout of API calls, in seconds.
        http: an ``httpx.Client`` to send API calls with (tests pass one bound to an app);
            its base URL and headers are used as they are.

    Use it as a context manager, or call ``close()``. Every method raises ``ApiError`` when the
    API answers an error (its ``code``, ``message``, ``hint``, ``retryable`` and ``status``).
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        from tabjob import __version__

        self.url = (url or os.environ.get("TABJOB_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("TABJOB_API_KEY")
        headers = {"user-agent": f"tabjob-client/{__version__}"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        self._owns_http = http is None
        self.http = http or httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        # Presigned URLs carry their own authorization: never send the API key to the store.
        self.storage = httpx.Client(timeout=max(timeout_s, STORE_TIMEOUT_S))

    def close(self) -> None:
        """Close the connections (the API's, when this client opened it, and the store's)."""
        if self._owns_http:
            self.http.close()
        self.storage.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                0,
                "client.unreachable",
                f"Cannot reach the tabjob API at {self.url}: {exc}",
                "Is the service running? Check the URL (TABJOB_URL or --url).",
                retryable=True,
            ) from exc
        if response.status_code >= 400:
            raise _api_error(response)
        try:
            return response.json() if response.content else None
        except ValueError:
            raise ApiError(
                response.status_code,
                "client.not_the_api",
                f"{self.url} answered {path} with something that is not the tabjob API's JSON.",
                "Check the URL (TABJOB_URL or --url): it should be the tabjob API's base URL.",
            ) from None

    def _error(self, response: httpx.Response) -> ApiError:
        return _api_error(response)

    def usage(self) -> dict[str, Any]:
        """Your quotas (``quotas``: name, used, limit) and whether the gpu lane is granted (``gpu_lane``)."""
        return self._call("GET", "/v1/usage")

    # -- datasets ---------------------------------------------------------------------------

    def create_dataset(self, name: str | None = None) -> Dataset:
        """Create an empty dataset; POST its bytes with ``upload_form`` (``upload`` does both)."""
        return Dataset.from_api(self._call("POST", "/v1/datasets", json={"name": name}))

    def dataset(self, dataset_id: str) -> Dataset:
        """A dataset as the server sees it now: state, size, rows, columns, or its problem."""
        return Dataset.from_api(self._call("GET", f"/v1/datasets/{dataset_id}"))

    def datasets(self, *, limit: int = 50, cursor: str | None = None) -> Page[Dataset]:
        """Your datasets, newest first, ``limit`` per page (1-500)."""
        body = self._call("GET", "/v1/datasets", params=_present(limit=limit, cursor=cursor))
        return Page([Dataset.from_api(d) for d in body["items"]], body.get("next_cursor"))

    def upload(
        self,
        data: str | os.PathLike[str] | bytes | Any,
        *,
        name: str | None = None,
        on_bytes: ProgressCallback | None = None,
        raise_on_invalid: bool = True,
        on_csv: Callable[[CsvConversion], None] | None = None,
    ) -> Dataset:
        """Upload training or prediction data as a new dataset, and return it once checked.

        Parameters:
            data: a path to a Parquet or CSV file (``.csv``, ``.tsv``, ``.csv.gz``: converted to
                Parquet here, with pyarrow's type inference), Parquet bytes, a ``pyarrow.Table`` or
                a ``pandas.DataFrame`` (its index is dropped; pandas is needed only for this).
            on_csv: called with what a CSV file was read as (rows, each column's inferred type)
                before it is uploaded; the same is logged on the ``tabjob`` logger.
            name: the dataset's name (default: the file name).
            on_bytes: called as ``on_bytes(sent, total)`` while the bytes go up.
            raise_on_invalid: raise ``InvalidDataset`` when the server's check refuses the data
                (not Parquet, no rows, unsupported types...); when False, return the dataset
                with ``state == "invalid"`` and its ``problem``.

        Raises ``FileNotFoundError`` for a path that does not exist, before anything is created.
        """
        try:
            source = transfers.upload_source(data)
        except ValueError as exc:  # a file pyarrow cannot read as CSV
            raise ApiError(0, "client.unreadable_csv", str(exc), hint="Fix the file, or write it as Parquet.") from exc
        if source.csv is not None:
            log.info("%s", source.csv.describe())
            if on_csv is not None:
                on_csv(source.csv)
        created = self.create_dataset(name or source.name)
        transfers.send(self.storage, created.raw["upload_form"], source, on_bytes)
        checked = self.dataset(created.id)
        if raise_on_invalid and checked.state == "invalid":
            raise InvalidDataset(checked)
        return checked

    def upload_parts(
        self,
        source: str | os.PathLike[str],
        *,
        parts: int | None = None,
        name: str | None = None,
        on_bytes: ProgressCallback | None = None,
    ) -> Dataset:
        """Upload a dataset in parts: a folder of Parquet files (one part each, in name order), or
        one Parquet file split into ``parts`` parts. Only the Dask engine reads such a dataset."""
        from tabjob.parts import upload_dataset_in_parts

        return upload_dataset_in_parts(self, source, parts=parts, name=name, on_bytes=on_bytes)

    # -- jobs -------------------------------------------------------------------------------

    def fit(
        self,
        dataset_id: str,
        *,
        params: dict[str, Any] | None = None,
        lane: str = "auto",
        model: str | None = None,
        target: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        idempotency_key: str | None = None,
        task: str | None = None,
        evaluate_on: str | None = None,
        engine: str | None = None,
    ) -> Job:
        """Start training a model on a dataset; returns the queued job.

        Parameters:
            params: model parameters (``max_iter``, ``learning_rate``... see docs/api.md).
            lane: ``auto`` (by dataset size), ``small``, ``large`` or ``gpu``.
            model: the model family, ``hgb`` (default) or ``xgboost`` (prepared on a CPU lane,
                trained on the gpu lane).
            target: the column to learn (default ``y``).
            task: ``classification`` or ``regression``; None infers it from the target (the job's
                ``task`` and ``task_reason`` say what was chosen and why).
            evaluate_on: a dataset id with the target: the model is also scored on all its rows
                (``job.validation.evaluation``).
            webhook_url, webhook_secret: POST a signed notification to this URL when the job
                ends (the service must have webhooks on; check it with ``tabjob.verify_webhook``).
            idempotency_key: retries with the same key return the same job instead of a new one.
            engine: ``dask`` to train on the distributed engine (xgboost only; docs/distributed.md).

        The job's id is the model's id once it has finished. Bad data is refused here, as an
        ``ApiError`` naming the problem, not as a job that fails later.
        """
        body = {"kind": "fit", "dataset_id": dataset_id, "params": params, "lane": lane}
        body |= {"model": model, "target": target, "task": task, "evaluate_on": evaluate_on, "engine": engine}
        return self._submit(body, idempotency_key, webhook_url, webhook_secret)

    def predict(
        self,
        dataset_id: str,
        model_id: str,
        *,
        lane: str = "auto",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        idempotency_key: str | None = None,
        passthrough: list[str] | None = None,
        engine: str | None = None,
    ) -> Job:
        """Start predicting a dataset with a model (a finished fit's id); returns the queued job.

        The predictions file has the ``passthrough`` columns of the data (in the data's order, to
        join back), a column named after the model's target and, for a classification, one
        ``proba_<class>`` column per class. ``engine="dask"`` predicts on the distributed engine,
        writing the output in parts."""
        body = {"kind": "predict", "dataset_id": dataset_id, "model_id": model_id, "lane": lane, "engine": engine}
        body["passthrough"] = list(passthrough) if passthrough else None
        return self._submit(body, idempotency_key, webhook_url, webhook_secret)

    def _submit(
        self, body: dict[str, Any], idempotency_key: str | None, webhook_url: str | None, webhook_secret: str | None
    ) -> Job:
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        if webhook_url:
            body["webhook"] = {"url": webhook_url, "secret": webhook_secret or ""}
        return Job.from_api(self._call("POST", "/v1/jobs", json=_present(**body), headers=headers))

    def job(self, job_id: str) -> Job:
        """A job now: status, phase, progress, error, result, and why it waits when queued."""
        return Job.from_api(self._call("GET", f"/v1/jobs/{job_id}"))

    def jobs(
        self, *, status: str | None = None, kind: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Job]:
        """Your jobs, newest first, optionally only one ``status`` or ``kind`` (fit, predict)."""
        params = _present(status=status, kind=kind, limit=limit, cursor=cursor)
        body = self._call("GET", "/v1/jobs", params=params)
        return Page([Job.from_api(j) for j in body["items"]], body.get("next_cursor"))

    def events(self, job_id: str, after: int = 0) -> EventPage:
        """The job's timeline from position ``after`` on (pass the last page's ``next_after``)."""
        body = self._call("GET", f"/v1/jobs/{job_id}/events", params={"after": after})
        return EventPage([JobEvent.from_api(e) for e in body["items"]], body["next_after"])

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job and return its state after the request.

        A queued job is canceled at once; a running one shows ``cancel_requested`` until its
        worker stops it. Canceling an ended job is an ``ApiError`` (409 ``job.already_ended``).
        """
        return Job.from_api(self._call("POST", f"/v1/jobs/{job_id}/cancel"))

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float | None = None,
        poll_s: float = 0.5,
        raise_on_failure: bool = True,
        on_update: UpdateCallback | None = None,
    ) -> Job:
        """Wait until the job ends and return it.

        Parameters:
            timeout_s: give up after this many seconds with ``WaitTimeout`` (the job goes on).
            poll_s: seconds between two looks at the job.
            raise_on_failure: raise ``JobFailed`` for a failed job and ``JobCanceled`` for a
                canceled one (both carry ``.job``); when False, return the job whatever its end.
            on_update: called as ``on_update(job, new_events)`` after every look.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        after = 0
        # The client installs without the server, so it has its own small poll loop (the
        # server's app.core.waiting is not importable here).
        while True:
            job = self.job(job_id)
            new = self.events(job_id, after)
            after = new.next_after
            if on_update:
                on_update(job, new.items)
            if job.ended:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(job, timeout_s or 0)
            time.sleep(poll_s if deadline is None else max(0.0, min(poll_s, deadline - time.monotonic())))
        if raise_on_failure and job.status == "failed":
            raise JobFailed(job)
        if raise_on_failure and job.status == "canceled":
            raise JobCanceled(job)
        return job

    def ready(self) -> bool:
        """True when the service answers and its broker and store are reachable."""
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False


def _api_error(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = {"code": f"http.{response.status_code}", "message": response.text[:500] or response.reason_phrase}
    return ApiError(
        response.status_code,
        error.get("code") or "unknown",
        error.get("message") or "",
        error.get("hint"),
        retryable=bool(error.get("retryable")),
    )


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
