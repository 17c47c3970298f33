"""What every user command shares: its options, its connection, and how mistakes end it.

Every command runs inside ``connected()``: API errors, missing files and wrong kinds of ids end
it with a message, a hint and an exit code (never a traceback).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer

import tabjob
from tabjob.cli.output import EXIT_INTERRUPTED, Mistake, console, fail

URL = Annotated[
    str | None, typer.Option("--url", envvar="TABJOB_URL", help="API base URL [default: http://127.0.0.1:8000].")
]
KEY = Annotated[
    str | None, typer.Option("--api-key", envvar="TABJOB_API_KEY", help="Bearer API key.", show_default=False)
]
JSON = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")]
QUIET = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the id (for scripts: ID=$(tabjob ...)).")]
LIMIT = Annotated[int, typer.Option(min=1, max=500, help="How many to list, newest first.")]


class Lane(StrEnum):
    """Where a job runs: auto picks small or large from the dataset's size."""

    auto = "auto"
    small = "small"
    large = "large"
    gpu = "gpu"


LANE = Annotated[Lane, typer.Option(help="Where the job runs; auto picks small or large by dataset size.")]
WAIT = Annotated[bool, typer.Option("--wait", help="Follow the job until it ends; exit 1 unless it finished.")]
PREFIXES = {"dataset": "ds_", "job": "job_", "model": "job_"}
WHAT = {"ds_": "a dataset", "job_": "a job"}
WHERE_IDS_COME_FROM = {
    "dataset": "Dataset ids (ds_…) come from `tabjob upload FILE`; list yours with `tabjob datasets`.",
    "job": "Job ids (job_…) come from `tabjob fit` and `tabjob predict`; list yours with `tabjob jobs`.",
    "model": "A model id is the id of a finished fit job (job_…): `tabjob fit DATASET_ID` trains one; "
    "`tabjob jobs --kind fit` lists them.",
}


def expect_id(value: str, kind: str, argument: str) -> str:
    """``value`` when it can be an id of ``kind`` (dataset, job, model); a Mistake when it is another kind."""
    value = value.strip()
    wanted = PREFIXES[kind]
    for prefix, what in WHAT.items():
        if value.startswith(prefix) and prefix != wanted:
            raise Mistake(
                f"'{value}' is {what} id, but {argument} takes a {kind} id ({wanted}…).",
                WHERE_IDS_COME_FROM[kind],
                code="cli.wrong_kind_of_id",
            )
    return value


def parse_params(pairs: list[str] | None) -> dict[str, Any] | None:
    """``-p NAME=VALUE`` options as a dict; values are JSON when they parse (numbers, true/false)."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise Mistake(f"'{pair}' is not NAME=VALUE.", "Write parameters as -p max_iter=200.", code="cli.bad_param")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    return params or None


@contextmanager
def reported(as_json: bool) -> Iterator[None]:
    """End the command with a message and an exit code on every expected kind of failure."""
    try:
        yield
    except (tabjob.ApiError, Mistake) as exc:
        fail(exc, as_json)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        fail(Mistake(str(exc), code="cli.file"), as_json)
    except KeyboardInterrupt:
        console.print("\nInterrupted: what was under way stopped here (a job already submitted goes on).")
        raise SystemExit(EXIT_INTERRUPTED) from None


@contextmanager
def connected(url: str | None, api_key: str | None, as_json: bool) -> Iterator[tabjob.Client]:
    """A client for the command, inside ``reported``."""
    with reported(as_json), tabjob.Client(url, api_key) as client:
        yield client
