"""User commands for what a tenant keeps: models, exports, and deleting models and datasets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tabjob.cli import show
from tabjob.cli.common import JSON, KEY, LIMIT, QUIET, URL, connected, expect_id
from tabjob.cli.output import Mistake, console, emit, plain

MODEL_ID = Annotated[str, typer.Argument(help="The model's id: its fit job's id (job_…).", show_default=False)]
YES = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def models(
    limit: LIMIT = 20, quiet: QUIET = False, url: URL = None, api_key: KEY = None, as_json: JSON = False
) -> None:
    """List your models (finished fits), newest first, with their validation score and size."""
    with connected(url, api_key, as_json) as client:
        page = client.models(limit=limit)
    if quiet:
        for found in page:
            plain(found.id)
        return
    body = {"items": [m.to_dict() for m in page], "next_cursor": page.next_cursor}
    emit(body, as_json, show.models_table(page.items) if page.items else "No models yet: tabjob fit DATASET_ID")


def model(model_id: MODEL_ID, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Show a model: its target, features, classes, validation score, training time and size."""
    with connected(url, api_key, as_json) as client:
        found = client.model(expect_id(model_id, "model", "MODEL_ID"))
    emit(found.to_dict(), as_json, show.model_summary(found))


def export(
    model_id: MODEL_ID,
    dest: Annotated[Path, typer.Argument(help="A file to write, or a folder to write the model's file into.")] = Path(
        "."
    ),
    quiet: QUIET = False, url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Download a model's file and its feature schema (<file>.schema.json beside it)."""
    with connected(url, api_key, as_json) as client:
        saved = client.export_model(expect_id(model_id, "model", "MODEL_ID"), dest)
    schema = saved.with_name(saved.name + ".schema.json")
    if quiet:
        plain(str(saved))
        return
    emit({"id": model_id, "path": str(saved), "schema": str(schema)}, as_json, f"saved [bold]{saved}[/] and {schema}")


def _confirm(what: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise Mistake(f"Not deleting {what} without confirmation.", "Add --yes to delete without a question.")
    if not typer.confirm(f"Delete {what}?"):
        raise Mistake("Nothing deleted.", code="cli.not_confirmed")


def delete_model(
    model_id: MODEL_ID, yes: YES = False, url: URL = None, api_key: KEY = None, as_json: JSON = False
) -> None:
    """Delete a model's file. Its fit job stays in the history; predicts with it are refused."""
    with connected(url, api_key, as_json) as client:
        model_id = expect_id(model_id, "model", "MODEL_ID")
        _confirm(f"model {model_id}", yes)
        client.delete_model(model_id)
    emit({"id": model_id, "deleted": True}, as_json, f"deleted model [bold]{model_id}[/]")


def delete_dataset(
    dataset_id: Annotated[str, typer.Argument(help="The dataset's id (ds_…).", show_default=False)],
    yes: YES = False, url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Delete a dataset. Jobs still queued on it fail (dataset.deleted); models trained on it stay."""
    with connected(url, api_key, as_json) as client:
        dataset_id = expect_id(dataset_id, "dataset", "DATASET_ID")
        _confirm(f"dataset {dataset_id}", yes)
        client.delete_dataset(dataset_id)
    if not as_json:
        console.print("Jobs still queued on it will fail with dataset.deleted; models trained on it stay.")
    emit({"id": dataset_id, "deleted": True}, as_json, f"deleted dataset [bold]{dataset_id}[/]")


def register(app: typer.Typer) -> None:
    for command in (models, model, export):
        app.command()(command)
    app.command("delete-model")(delete_model)
    app.command("delete-dataset")(delete_dataset)
