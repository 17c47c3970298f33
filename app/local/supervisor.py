"""The process ``tabjob stack`` becomes: it starts the embedded stack, supervises it for as long
as it runs, and stops it on SIGINT or SIGTERM.

``tabjob stack`` parses its options with the CLI (typer, rich, the HTTP client: about 30 MiB),
then replaces itself with this module (``os.execv``, same process id), which loads none of it:
it starts servers, waits for them with urllib and hiredis (``app.local.valkey_probe``) and
restarts what dies. Measured on the stack's idle PSS: the supervisor held 53 MiB as the CLI
process, 25 MiB as this one (``python -m bench.stack_start``). A test keeps the client
libraries out of it (``tests/app/test_stack_supervisor.py``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from app.local.dask_cluster import LocalDaskCluster
from app.local.dask_stack import DaskStack
from app.local.on_demand import DEFAULT_IDLE_STOP_S, OnDemandWorkers


def command(
    *, host: str, port: int, data_dir: Path, auth: bool, dask_workers: int, dask_worker_memory: str,
    lane_idle_stop_s: float = DEFAULT_IDLE_STOP_S,
) -> list[str]:  # fmt: skip
    """The command line that runs this module with these options (what ``tabjob stack`` execs)."""
    args = [sys.executable, "-m", "app.local.supervisor", "--host", host, "--port", str(port)]
    args += ["--data-dir", str(data_dir), "--dask-workers", str(dask_workers)]
    args += ["--dask-worker-memory", dask_worker_memory, "--lane-idle-stop-s", str(lane_idle_stop_s)]
    return [*args, "--auth"] if auth else args


def run(
    *, host: str, port: int, data_dir: Path, auth: bool, dask_workers: int, dask_worker_memory: str,
    lane_idle_stop_s: float = DEFAULT_IDLE_STOP_S,
) -> int:  # fmt: skip
    """Start the stack, supervise it until SIGINT/SIGTERM, stop it; the exit status."""
    data_dir = data_dir.resolve()
    dask = LocalDaskCluster(data_dir, dask_workers, dask_worker_memory) if dask_workers else None
    on_demand = OnDemandWorkers(idle_stop_s=lane_idle_stop_s)
    embedded = DaskStack(data_dir=data_dir, host=host, port=port, auth=auth, dask=dask, on_demand=on_demand)
    _say(f"Starting tabjob in {embedded.data_dir} ...")
    embedded.handle_signals()
    try:
        embedded.start()
    except KeyboardInterrupt:
        embedded.stop()
        return 130
    except (RuntimeError, OSError) as exc:
        embedded.stop()
        _say(f"Could not start: {exc}")
        return 1
    mode = (
        f"on (create keys with: tabjob admin create-key --env-file {embedded.data_dir / 'tabjob.env'} --tenant NAME)"
        if embedded.auth_enabled
        else "off (loopback)"
    )
    _say(f"Ready at {embedded.url}  (docs: {embedded.url}/docs, auth {mode}, logs: {embedded.data_dir}/logs)")
    embedded.run_forever()
    _say("Stopped.")
    return 0


def _say(line: str) -> None:
    """A line for the person who started the stack (its logs go to stderr)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tabjob stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data-dir", type=Path, default=Path(".tabjob"))
    parser.add_argument("--auth", action="store_true")
    parser.add_argument("--dask-workers", type=int, default=0)
    parser.add_argument("--dask-worker-memory", default="192MiB")
    parser.add_argument("--lane-idle-stop-s", type=float, default=DEFAULT_IDLE_STOP_S)
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(**vars(args))  # argparse names each option with underscores: run's keywords


if __name__ == "__main__":
    raise SystemExit(main())
