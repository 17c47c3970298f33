"""The metrics a process records as things happen (the queue gauges are read from Valkey at
scrape time instead: see ``app.observability.queues``).

Jobs are counted where they end, by ``end_job`` (the one way a job ends): in the worker that ran
it, or in the API for a job canceled while queued. Prometheus sums the processes
(``sum by (lane)``).
Label values are bounded: lane, kind, model, status and error code come from fixed sets the
service defines, never ids or user text.

In a process where ``PROMETHEUS_MULTIPROC_DIR`` is set before this module is imported (an API
run with several uvicorn workers), prometheus-client keeps the values in files there and
``app.observability.exposition`` merges them.
"""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from app.core.domain import Job, JobStatus

JOB_DURATION_BUCKETS_S = (0.25, 0.5, 1, 2.5, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400)
QUEUE_WAIT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
HTTP_BUCKETS_S = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
DATASET_BUCKETS_BYTES = (1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10)
# The model family of jobs that name none: the seed's HistGradientBoosting.
DEFAULT_MODEL = "hgb"  # the family name of the seed model, as the API spells it
_BOUNDED = re.compile(r"^[a-z0-9_.-]{1,48}$")

JOBS = Counter(
    "tabjob_jobs",
    "Jobs that ended, by kind, lane, model family and final status (finished, failed, canceled).",
    ["kind", "lane", "model", "status"],
)
JOB_FAILURES = Counter(
    "tabjob_job_failures",
    "Failed jobs by lane, kind and error code (the code users see in the job's error).",
    ["lane", "kind", "code"],
)
JOB_RETRIES = Counter(
    "tabjob_job_retries",
    "Job attempts that failed on a platform error and were queued again, by lane and error code.",
    ["lane", "code"],
)
JOB_DURATION = Histogram(
    "tabjob_job_duration_seconds",
    "Run time of a job's last attempt, from its start on a worker to its end, by lane, kind and status.",
    ["lane", "kind", "status"],
    buckets=JOB_DURATION_BUCKETS_S,
)
QUEUE_WAIT = Histogram(
    "tabjob_job_queue_wait_seconds",
    "Time a job waited from submission to its first start on a worker, by lane.",
    ["lane"],
    buckets=QUEUE_WAIT_BUCKETS_S,
)
DATASET_BYTES = Histogram(
    "tabjob_job_dataset_bytes",
    "Size of the dataset each started job reads, by lane and kind.",
    ["lane", "kind"],
    buckets=DATASET_BUCKETS_BYTES,
)
WORKER_BUSY = Gauge(
    "tabjob_worker_busy",
    "Jobs this worker process runs now: 0 or 1 in a pod, up to its consumers on `tabjob stack` "
    "(exported by each worker on its health port).",
    ["lane"],
    multiprocess_mode="livesum",
)
HTTP_DURATION = Histogram(
    "tabjob_http_request_duration_seconds",
    "API request latency by method, route template (never the raw path) and status code.",
    ["method", "route", "status"],
    buckets=HTTP_BUCKETS_S,
)


def bounded(value: Any, default: str = "unknown") -> str:
    """A label value from a fixed vocabulary; anything else becomes ``other`` so a bad record
    can never create unbounded series."""
    if value is None or value == "":
        return default
    text = str(value)
    return text if _BOUNDED.match(text) else "other"


def model_of(job: Job) -> str:
    """The job's model family (``Job.model``: ``hgb`` unless the job chose another)."""
    return bounded(job.model, DEFAULT_MODEL)


def record_started(job: Job) -> None:
    """A job's first attempt started: how long it waited, and how big its data is."""
    lane, kind = bounded(job.lane), bounded(job.kind)
    if job.attempts <= 1 and job.started_at and job.queued_at:
        # Retries are left out: their wait would include the failed attempt and its back-off.
        QUEUE_WAIT.labels(lane).observe(max(0.0, job.started_at - job.queued_at))
    if job.dataset_bytes:
        DATASET_BYTES.labels(lane, kind).observe(float(job.dataset_bytes))


def record_ended(job: Job) -> None:
    """A job reached its final status (finished, failed or canceled)."""
    lane, kind, status = bounded(job.lane), bounded(job.kind), bounded(job.status.value)
    JOBS.labels(kind, lane, model_of(job), status).inc()
    if job.status == JobStatus.FAILED:
        JOB_FAILURES.labels(lane, kind, bounded((job.error or {}).get("code"))).inc()
    if job.started_at and job.ended_at:
        JOB_DURATION.labels(lane, kind, status).observe(max(0.0, job.ended_at - job.started_at))


def record_retry(job: Job, code: str | None) -> None:
    JOB_RETRIES.labels(bounded(job.lane), bounded(code)).inc()
