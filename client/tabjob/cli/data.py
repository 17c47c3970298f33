"""User commands for data: upload, datasets, dataset."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from tabjob.cli import show
from tabjob.cli.common import JSON, KEY, LIMIT, QUIET, URL, connected, expect_id
from tabjob.cli.output import EXIT_MISTAKE, Mistake, console, emit, fail, plain, transfer_progress


def upload(
    path: Annotated[Path, typer.Argument(help="A Parquet file.", show_default=False)],
    name: Annotated[str | None, typer.Option(help="The dataset's name [default: the file's name].")] = None,
    quiet: QUIET = False, url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Upload a Parquet file as a new dataset; waits for the server's check and prints rows x columns.

    Exits 2 when the server cannot use the file (not Parquet, no rows, unsupported types).
    """
    with connected(url, api_key, as_json) as client:
        if not path.exists():
            raise Mistake(f"No such file: {path}", "Check the path; upload takes one Parquet file.", "cli.no_such_file")
        if path.is_dir():
            raise Mistake(f"{path} is a folder; upload takes one Parquet file.", code="cli.not_a_file")
        progress, update = transfer_progress(f"upload {path.name}", not (quiet or as_json))
        with progress:
            dataset = client.upload(path, name=name, on_bytes=update, raise_on_invalid=False)
    if dataset.state == "invalid" and dataset.problem:
        if as_json:
            problem = {**asdict(dataset.problem), "status": 422}
            emit({"error": problem, "dataset": dataset.to_dict()}, True)
            raise SystemExit(EXIT_MISTAKE)
        console.print(f"Uploaded as [bold]{dataset.id}[/], but the file cannot be used:")
        fail(Mistake(dataset.problem.message, dataset.problem.hint, dataset.problem.code), as_json)
    if quiet:
        plain(dataset.id)
    else:
        emit(dataset.to_dict(), as_json, show.dataset_summary(dataset))


def datasets(
    limit: LIMIT = 20, quiet: QUIET = False, url: URL = None, api_key: KEY = None, as_json: JSON = False
) -> None:
    """List your datasets, newest first (whole ids; -q for ids alone)."""
    with connected(url, api_key, as_json) as client:
        page = client.datasets(limit=limit)
    if quiet:
        for dataset in page:
            plain(dataset.id)
        return
    body = {"items": [d.to_dict() for d in page], "next_cursor": page.next_cursor}
    emit(body, as_json, show.datasets_table(page.items) if page.items else "No datasets yet: tabjob upload FILE")


def dataset(
    dataset_id: Annotated[str, typer.Argument(help="The dataset's id (ds_…).", show_default=False)],
    url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Show a dataset: its state, rows and columns (with their types), or the problem with it."""
    with connected(url, api_key, as_json) as client:
        found = client.dataset(expect_id(dataset_id, "dataset", "DATASET_ID"))
    human = show.dataset_summary(found)
    if found.columns:
        human += "\n" + "\n".join(f"  {c.name}: {c.type} ({c.kind})" for c in found.columns)
    emit(found.to_dict(), as_json, human)


def register(app: typer.Typer) -> None:
    for command in (upload, datasets, dataset):
        app.command()(command)
