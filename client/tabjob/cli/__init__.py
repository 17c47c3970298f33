"""The ``tabjob`` command's user commands (upload, fit, predict, jobs, top, logs...), speaking the
API through ``tabjob.Client`` only. Installed with ``pip install "tabjob-client[cli]"``; the server
package adds its own commands (``api``, ``worker``, ``stack``, ``admin``...) through the
``tabjob.cli`` entry-point group (see ``tabjob.cli.main``)."""

from __future__ import annotations

import sys


def main() -> None:
    """The ``tabjob`` console script: the CLI, or how to install it when its extra is missing."""
    try:
        from tabjob.cli.main import main as run
    except ModuleNotFoundError as exc:
        if exc.name not in {"typer", "rich", "click"}:
            raise
        sys.stderr.write(f'The tabjob command needs {exc.name}: pip install "tabjob-client[cli]"\n')
        raise SystemExit(2) from None
    run()
