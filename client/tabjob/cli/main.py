"""The ``tabjob`` command: the user commands, plus whatever installed packages add.

A package adds commands by declaring an entry point in the ``tabjob.cli`` group whose object is
a function taking the typer app (``register(app)``): the server package registers ``api``,
``worker``, ``stack``, ``admin``... that way, so one ``tabjob`` serves both, and a user who
installs only the client gets only the user commands.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Annotated

import typer

import tabjob
from tabjob.cli import data, jobs, logs, models, parts, registry, schedules, top, usage
from tabjob.cli.output import Invocation

PLUGIN_GROUP = "tabjob.cli"

# Plain (click) help: typer's rich help shows every flag as `--json <bool>`.
app = typer.Typer(
    help="tabjob: tabular fit and predict jobs as a service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
data.register(app)
jobs.register(app)
models.register(app)
top.register(app)
logs.register(app)
parts.register(app)
registry.register(app)
schedules.register(app)
usage.register(app)

_added: set[str] = set()


def add_commands(register: Callable[[typer.Typer], None]) -> None:
    """Let ``register`` add its commands to the ``tabjob`` app (once, however often it is asked)."""
    key = f"{register.__module__}:{register.__qualname__}"
    if key not in _added:
        _added.add(key)
        register(app)


def load_plugins() -> None:
    """Add the commands of every installed package that declares a ``tabjob.cli`` entry point."""
    for point in entry_points(group=PLUGIN_GROUP):
        add_commands(point.load())


def _show_version(asked: bool) -> None:
    if asked:
        try:
            server = f"tabjob {version('tabjob')}, "
        except PackageNotFoundError:  # the client alone
            server = ""
        typer.echo(f"{server}client tabjob-client {tabjob.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    context: typer.Context,
    show_version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """tabjob: tabular fit and predict jobs as a service.

    Exit codes of the user commands: 0 done, 2 a mistake or a refusal (the message says what to
    fix), 1 a job that did not finish or a service that failed, 130 Ctrl-C.
    """
    Invocation.command = f"tabjob {context.invoked_subcommand}"


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    load_plugins()
    app()
