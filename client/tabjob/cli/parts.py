"""``tabjob upload-parts``: a dataset in parts, from a folder of Parquet files or one split file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tabjob.cli import show
from tabjob.cli.common import JSON, KEY, QUIET, URL, connected
from tabjob.cli.output import Mistake, console, emit, fail, plain, transfer_progress


def upload_parts(
    path: Annotated[Path, typer.Argument(help="A folder of Parquet files, or one Parquet file to split.",
                                         show_default=False)],
    parts: Annotated[int | None, typer.Option(min=1, help="Split one file into this many parts.")] = None,
    name: Annotated[str | None, typer.Option(help="The dataset's name [default: the file's or folder's].")] = None,
    quiet: QUIET = False, url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Upload a dataset in parts (for the Dask engine): each .parquet file of a folder is a part (in
    name order), or --parts K splits one file; waits for the server's check of every part."""
    with connected(url, api_key, as_json) as client:
        if not path.exists():
            raise Mistake(f"No such file or folder: {path}", code="cli.no_such_file")
        if path.is_dir() and parts:
            raise Mistake("--parts splits one file; a folder's files are its parts already.", code="cli.bad_option")
        if not path.is_dir() and not parts:
            raise Mistake(f"{path} is one file: say how many parts with --parts K.", code="cli.bad_option")
        progress, update = transfer_progress(f"upload {path.name} in parts", not (quiet or as_json))
        with progress:
            try:
                dataset = client.upload_parts(path, parts=parts, name=name, on_bytes=update)
            except FileNotFoundError as exc:
                raise Mistake(str(exc), "Put the parts in the folder as .parquet files.", "cli.no_such_file") from exc
    if dataset.state == "invalid" and dataset.problem:
        console.print(f"Uploaded as [bold]{dataset.id}[/], but the parts cannot be used:")
        fail(Mistake(dataset.problem.message, dataset.problem.hint, dataset.problem.code), as_json)
    if quiet:
        plain(dataset.id)
    else:
        emit(dataset.to_dict(), as_json, show.dataset_summary(dataset))


def register(app: typer.Typer) -> None:
    app.command("upload-parts")(upload_parts)
