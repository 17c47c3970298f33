"""User commands for jobs: fit, predict, status, wait, cancel, jobs, download."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

import tabjob
from tabjob.cli import show
from tabjob.cli.common import JSON, KEY, LANE, LIMIT, QUIET, URL, WAIT, Lane, connected, expect_id, parse_params
from tabjob.cli.live import follow
from tabjob.cli.output import EXIT_FAILED, console, emit, plain, transfer_progress

PARAM = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="NAME=VALUE",
        help="A model parameter, e.g. -p max_iter=200 (repeatable).",
    ),
]
WEBHOOK = Annotated[
    str | None, typer.Option(help="POST a signed notification to this URL when the job ends (if the service allows).")
]
WEBHOOK_SECRET = Annotated[
    str | None,
    typer.Option(envvar="TABJOB_WEBHOOK_SECRET", help="The notification's signing secret (16+ characters)."),
]
TIMEOUT = Annotated[float | None, typer.Option(help="Stop waiting after this many seconds (the job goes on).")]
JOB_ID = Annotated[str, typer.Argument(help="The job's id (job_…).", show_default=False)]
DATASET_ID = Annotated[str, typer.Argument(help="The data's id (ds_…), from `tabjob upload`.", show_default=False)]


class Status(StrEnum):
    queued = "queued"
    started = "started"
    finished = "finished"
    failed = "failed"
    canceled = "canceled"


class Family(StrEnum):
    hgb = "hgb"
    xgboost = "xgboost"


class Kind(StrEnum):
    fit = "fit"
    predict = "predict"


def fit(
    dataset_id: DATASET_ID, param: PARAM = None,
    target: Annotated[str | None, typer.Option(help="The column of class labels [default: y].")] = None,
    model: Annotated[Family | None, typer.Option(help="The model family [default: hgb].")] = None,
    lane: LANE = Lane.auto, wait: WAIT = False, timeout: TIMEOUT = None, webhook: WEBHOOK = None,
    webhook_secret: WEBHOOK_SECRET = None, quiet: QUIET = False, url: URL = None, api_key: KEY = None,
    as_json: JSON = False,
) -> None:  # fmt: skip
    """Train a model on a dataset. The job's id is the model's id once it has finished."""
    with connected(url, api_key, as_json) as client:
        dataset_id = expect_id(dataset_id, "dataset", "DATASET_ID")
        job = client.fit(
            dataset_id, params=parse_params(param), lane=lane.value, model=model.value if model else None,
            target=target, webhook_url=webhook, webhook_secret=webhook_secret,
        )  # fmt: skip
        _submitted(client, job, wait=wait, timeout=timeout, quiet=quiet, as_json=as_json)


def predict(
    dataset_id: DATASET_ID,
    model_id: Annotated[str, typer.Argument(help="A finished fit job's id (job_…).", show_default=False)],
    lane: LANE = Lane.auto, wait: WAIT = False, timeout: TIMEOUT = None,
    quiet: QUIET = False, url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Predict a dataset with a model (a finished fit job's id); `tabjob download` fetches the result."""
    with connected(url, api_key, as_json) as client:
        dataset_id = expect_id(dataset_id, "dataset", "DATASET_ID")
        job = client.predict(dataset_id, expect_id(model_id, "model", "MODEL_ID"), lane=lane.value)
        _submitted(client, job, wait=wait, timeout=timeout, quiet=quiet, as_json=as_json)


def _submitted(
    client: tabjob.Client, job: tabjob.Job, *, wait: bool, timeout: float | None, quiet: bool, as_json: bool
) -> None:
    """Print the new job (its id alone with -q), follow it with --wait, exit 1 if it then did not finish."""
    if quiet:
        plain(job.id)
    if wait:
        job = follow(client, job.id, show=not (quiet or as_json), timeout_s=timeout)
    if not quiet:
        emit(job.to_dict(), as_json, show.job_summary(job))
    if wait and job.status != "finished":
        raise SystemExit(EXIT_FAILED)


def status(job_id: JOB_ID, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Show a job: status, phase, progress, result or error, and why it waits."""
    with connected(url, api_key, as_json) as client:
        job = client.job(expect_id(job_id, "job", "JOB_ID"))
        emit(job.to_dict(), as_json, show.job_summary(job))


def wait(job_id: JOB_ID, timeout: TIMEOUT = None, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Follow a job live until it ends; exit 1 unless it finished. Ctrl-C stops waiting, not the job."""
    with connected(url, api_key, as_json) as client:
        job = follow(client, expect_id(job_id, "job", "JOB_ID"), show=not as_json, timeout_s=timeout)
        emit(job.to_dict(), as_json, show.job_summary(job))
        if job.status != "finished":
            raise SystemExit(EXIT_FAILED)


def cancel(
    job_id: JOB_ID,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a running job to stop (0: do not wait).")] = 30,
    url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Cancel a queued or running job and show its state after the cancel."""
    with connected(url, api_key, as_json) as client:
        job = client.cancel(expect_id(job_id, "job", "JOB_ID"))
        if not job.ended and timeout > 0:
            if not as_json:
                console.print(f"Cancel requested; waiting for the worker to stop {job.id} ...")
            try:
                job = client.wait(job.id, timeout_s=timeout, poll_s=0.2, raise_on_failure=False)
            except tabjob.WaitTimeout as exc:
                job = exc.job
        if not as_json and job.status in ("finished", "failed"):
            console.print(f"{job.id} ended ({job.status}) before its worker could stop it.")
        elif not as_json and not job.ended:
            console.print(f"{job.id} is still stopping; `tabjob status {job.id}` shows when it has.")
        emit(job.to_dict(), as_json, show.job_summary(job))


def jobs(
    status: Annotated[Status | None, typer.Option(help="Only jobs with this status.")] = None,
    kind: Annotated[Kind | None, typer.Option(help="Only fit or only predict jobs.")] = None,
    limit: LIMIT = 20, quiet: QUIET = False, url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """List your jobs, newest first (whole ids; -q for ids alone)."""
    with connected(url, api_key, as_json) as client:
        page = client.jobs(status=status.value if status else None, kind=kind.value if kind else None, limit=limit)
        if quiet:
            for job in page:
                plain(job.id)
            return
        body = {"items": [j.to_dict() for j in page], "next_cursor": page.next_cursor}
        emit(body, as_json, show.jobs_table(page.items) if page.items else "No jobs yet.")


def download(
    job_id: JOB_ID,
    dest: Annotated[
        Path, typer.Argument(help="A file to write, or a folder to write <job id>.parquet into.")
    ] = Path("."),
    quiet: QUIET = False, url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Download a finished prediction (Parquet, one column y); prints where it was saved."""
    with connected(url, api_key, as_json) as client:
        job_id = expect_id(job_id, "job", "JOB_ID")
        progress, update = transfer_progress(f"download {job_id}", not (quiet or as_json))
        with progress:
            saved = client.download(job_id, dest, on_bytes=update)
        if quiet:
            plain(str(saved))
        else:
            emit({"id": job_id, "path": str(saved)}, as_json, f"saved [bold]{saved}[/]")


def register(app: typer.Typer) -> None:
    for command in (fit, predict, status, wait, cancel, jobs, download):
        app.command()(command)
