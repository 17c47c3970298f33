"""``tabjob schedules``: submit a fit or predict on a cron schedule; list, show, pause, resume, delete."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer

from tabjob.cli.common import JSON, KEY, QUIET, URL, connected, parse_params
from tabjob.cli.jobs import PARAM
from tabjob.cli.output import Mistake, emit, plain

SCHEDULE_ID = Annotated[str, typer.Argument(help="The schedule's id (sch_…).", show_default=False)]

app = typer.Typer(help="Schedules: a fit or predict on a cron expression, fired by the workers.")


class Concurrency(StrEnum):
    forbid = "forbid"
    allow = "allow"


class Catchup(StrEnum):
    none = "none"
    last = "last"


def _line(s: dict[str, Any]) -> str:
    job = s["job"]
    what = f"{job['kind']} {job['dataset_id']}" + (f" -> {job['register_as']}" if job.get("register_as") else "")
    state = "paused" if s["paused"] else f"next {str(s['next_run_at'])[:16].replace('T', ' ')} UTC"
    return f"{s['id']}  '{s['cron']}' {s['timezone']}  {what}  ({state})"


@app.callback(invoke_without_command=True)
def listing(context: typer.Context, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """List your schedules with their next tick."""
    if context.invoked_subcommand is not None:
        return
    with connected(url, api_key, as_json) as client:
        items = client.schedules()
    human = "\n".join(_line(s) for s in items) or "No schedules: tabjob schedules create --help"
    emit({"items": items}, as_json, human)


def _job(job: str | None, fit: str | None, predict: str | None, model: str | None, **registration: Any) -> dict:
    """The job body from --job JSON, or from --fit/--predict and their options."""
    if sum(x is not None for x in (job, fit, predict)) != 1:
        raise Mistake("Give exactly one of --fit DATASET, --predict DATASET or --job JSON.", code="cli.bad_schedule")
    if job is not None:
        try:
            return json.loads(job)
        except ValueError as exc:
            raise Mistake(f"--job is not JSON: {exc}.", 'Quote the body: --job \'{"kind": "fit", ...}\'.') from exc
    if predict is not None:
        if not model:
            raise Mistake("A scheduled predict needs --model (e.g. churn@champion).", code="cli.bad_schedule")
        return {"kind": "predict", "dataset_id": predict, "model_id": model}
    body: dict[str, Any] = {"kind": "fit", "dataset_id": fit, "params": registration.pop("params")}
    alias, metric = registration.pop("promote"), registration.pop("metric")
    body |= {k: v for k, v in registration.items() if v is not None}
    if alias:
        body["promote"] = {"alias": alias, "metric": metric}
    return {k: v for k, v in body.items() if v is not None}


@app.command()
def create(
    cron: Annotated[str, typer.Argument(help="Five fields: minute hour day month weekday, e.g. '0 6 * * 1'.")],
    timezone: Annotated[str, typer.Option(help="An IANA time zone, e.g. Europe/Paris.")] = "UTC",
    fit: Annotated[str | None, typer.Option(help="Fit this dataset (e.g. sales@latest) on each tick.")] = None,
    register_as: Annotated[str | None, typer.Option(help="Register each fit as a version of this model.")] = None,
    evaluate_on: Annotated[str | None, typer.Option(help="Labelled data each fit is scored on.")] = None,
    promote: Annotated[str | None, typer.Option(help="Move this alias when a fit wins (needs --evaluate-on).")] = None,
    metric: Annotated[str, typer.Option(help="The metric promotion compares.")] = "accuracy",
    param: PARAM = None,
    predict: Annotated[str | None, typer.Option(help="Predict this dataset on each tick.")] = None,
    model: Annotated[str | None, typer.Option(help="The model of --predict (e.g. churn@champion).")] = None,
    job: Annotated[str | None, typer.Option(help="The job body as JSON (as POST /v1/jobs takes).")] = None,
    concurrency: Annotated[Concurrency, typer.Option(help="forbid: skip a tick while the last run is active.")] = (
        Concurrency.forbid
    ),
    catchup: Annotated[Catchup, typer.Option(help="After an outage: last runs the latest missed tick.")] = Catchup.last,
    quiet: QUIET = False, url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Create a schedule: the workers submit the job on every tick (exactly once, whatever the replicas)."""
    body = _job(job, fit, predict, model, register_as=register_as, evaluate_on=evaluate_on, promote=promote,
                metric=metric, params=parse_params(param))  # fmt: skip
    with connected(url, api_key, as_json) as client:
        created = client.create_schedule(
            cron, body, timezone=timezone, concurrency=concurrency.value, catchup=catchup.value
        )
    if quiet:
        plain(created["id"])
        return
    emit(created, as_json, _line(created))


@app.command()
def show(schedule_id: SCHEDULE_ID, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Show a schedule and its runs, newest first: the tick, the job and its status, or why it did not run."""
    with connected(url, api_key, as_json) as client:
        found = client.schedule(schedule_id)
    runs = [f"  {r['scheduled_for'][:16].replace('T', ' ')}  {r['status']:<9} {r.get('job_id') or ''}"
            f"{'  ' + r['reason'] if r.get('reason') else ''}" for r in found["runs"] or []]  # fmt: skip
    emit(found, as_json, "\n".join([_line(found), *runs]))


@app.command()
def pause(schedule_id: SCHEDULE_ID, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Pause a schedule: no tick fires until it is resumed."""
    with connected(url, api_key, as_json) as client:
        emit(client.pause_schedule(schedule_id), as_json, f"paused {schedule_id}")


@app.command()
def resume(schedule_id: SCHEDULE_ID, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Resume a schedule from its next tick (the ticks of the pause are not caught up)."""
    with connected(url, api_key, as_json) as client:
        found = client.resume_schedule(schedule_id)
    emit(found, as_json, _line(found))


@app.command()
def delete(schedule_id: SCHEDULE_ID, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Delete a schedule and its runs (the jobs it submitted stay)."""
    with connected(url, api_key, as_json) as client:
        client.delete_schedule(schedule_id)
    emit({"id": schedule_id, "deleted": True}, as_json, f"deleted {schedule_id}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="schedules")
