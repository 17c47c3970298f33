"""``tabjob registry``: registered models, their versions and aliases; registered fits; rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from tabjob.cli.common import JSON, KEY, LANE, QUIET, URL, WAIT, Lane, connected, parse_params
from tabjob.cli.jobs import PARAM, TIMEOUT, _submitted
from tabjob.cli.output import emit, plain

NAME = Annotated[str, typer.Argument(help="The registered model's name (e.g. churn).", show_default=False)]
ALIAS = Annotated[str, typer.Option("--alias", "-a", help="The alias.")]

app = typer.Typer(help="Registered models: versions, aliases, promotion and rollback.", no_args_is_help=False)


def _when(at: Any) -> str:
    if isinstance(at, int | float):
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(at)[:16].replace("T", " ")


@app.callback(invoke_without_command=True)
def names(context: typer.Context, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """List your registered models with their latest version and aliases."""
    if context.invoked_subcommand is not None:
        return
    with connected(url, api_key, as_json) as client:
        items = client.registry()
    lines = [f"{m['name']}  latest v{m['latest_version']}  " + "  ".join(f"{a}=v{v}" for a, v in m["aliases"].items())
             for m in items]  # fmt: skip
    emit({"items": items}, as_json, "\n".join(lines) or "No registered models yet: tabjob registry fit DATASET NAME")


@app.command()
def show(name: NAME, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Show a model's versions (metrics, data, who registered it) and where its aliases point."""
    with connected(url, api_key, as_json) as client:
        found = client.registered_model(name)
    marks = {v: a for a, v in found["aliases"].items()}
    lines = [f"{found['name']}: " + (", ".join(f"{a} -> v{v}" for a, v in found["aliases"].items()) or "no alias")]
    for v in found["versions"]:
        metrics = " ".join(f"{k}={m:.4g}" for k, m in v["metrics"].items() if isinstance(m, int | float))
        alias = f"  [{marks[v['version']]}]" if v["version"] in marks else ""
        lines.append(f"  v{v['version']}  {v['model_id']}  {_when(v['created_at'])}  {metrics}{alias}")
    emit(found, as_json, "\n".join(lines))


@app.command()
def promote(
    name: NAME,
    version: Annotated[int, typer.Argument(min=1, help="The version the alias will point at.")],
    alias: ALIAS = "champion",
    reason: Annotated[str | None, typer.Option(help="Why (kept in the alias's history).")] = None,
    url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Point an alias at a version by hand: a rollback, or a promotion you decide."""
    with connected(url, api_key, as_json) as client:
        move = client.promote(name, version, alias=alias, reason=reason)
    emit(move, as_json, f"{name}@{alias} -> v{move['version']} (was v{move['from']})")


@app.command()
def history(name: NAME, alias: ALIAS = "champion", url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Every move of an alias, oldest first: which version was live when, who moved it, and why."""
    with connected(url, api_key, as_json) as client:
        found = client.alias_history(name, alias)
    lines = [f"{_when(m['at'])}  v{m['from']} -> v{m['version']}  by {m.get('by')}: {m.get('reason')}"
             for m in found["items"]]  # fmt: skip
    emit(found, as_json, "\n".join(lines) or f"{name}@{alias} never moved")


@app.command("fit")
def registered_fit(
    dataset: Annotated[str, typer.Argument(help="Training data: ds_…, name@latest or name@3.", show_default=False)],
    name: NAME,
    evaluate_on: Annotated[str | None, typer.Option(help="Labelled data to score it on (ds_… or name@…).")] = None,
    promote_alias: Annotated[str | None, typer.Option("--promote", help="Move this alias if it wins.")] = None,
    metric: Annotated[str, typer.Option(help="The metric compared (accuracy, f1, roc_auc, log_loss).")] = "accuracy",
    min_delta: Annotated[float, typer.Option(min=0, help="How much better it must be.")] = 0.0,
    param: PARAM = None, lane: LANE = Lane.auto, wait: WAIT = False, timeout: TIMEOUT = None, quiet: QUIET = False,
    url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Train the next version of a registered model; with --promote it replaces the alias's
    version only if it scores better on the same --evaluate-on data."""
    with connected(url, api_key, as_json) as client:
        job = client.register_fit(
            dataset, name, evaluate_on=evaluate_on, promote=promote_alias, metric=metric, min_delta=min_delta,
            params=parse_params(param), lane=lane.value,
        )  # fmt: skip
        _submitted(client, job, wait=wait, timeout=timeout, quiet=quiet, as_json=as_json)
        if wait and not (quiet or as_json):
            outcome = (client.job(job.id).raw.get("result") or {}).get("registry")
            if outcome:
                plain(f"{name} v{outcome['version']}: " + (outcome.get("reason") or "registered"))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="registry")
