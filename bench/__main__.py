"""``python -m bench [--quick] [--json PATH] [--only SECTION ...]``: run the benchmarks against a
fresh embedded stack, print one table and write it as JSON."""

from __future__ import annotations

import argparse
import logging
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from app.local.bytecode import ensure_compiled
from bench import (
    api,
    burst,
    dask_engine,
    dispatch,
    estimates,
    fairness,
    memory,
    overhead,
    resume,
    stack_start,
    throughput,
)
from bench.harness import Harness, cpu_info, running_stack
from bench.table import Figure, render, write_json

SECTIONS: dict[str, Callable[[Harness], list[Figure]]] = {
    "overhead": overhead.run,
    "dispatch": dispatch.run,
    "fairness": fairness.run,
    "api": api.run,
    "memory": memory.run,
    "throughput": throughput.run,
    "burst": burst.run,
    "estimates": estimates.run,
    "resume": resume.run,
}
# Sections that start a stack of their own: run before the harness's stack starts, so their
# PSS is not shared with it (shared library pages are divided among the processes mapping them:
# measured beside the harness's stack, the idle stack showed ~580 MiB instead of ~670).
STANDALONE: dict[str, Callable[[], list[Figure]]] = {"stack": stack_start.run, "dask": dask_engine.run}
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def _git_commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller data (under 2 minutes)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results ({DEFAULT_JSON})")
    parser.add_argument("--only", nargs="+", choices=[*STANDALONE, *SECTIONS], help="run only these sections")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=max(Console().width, 150))
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    figures: list[Figure] = []
    section_s: dict[str, float] = {}
    stack_s: dict[str, float] = {}
    failures: dict[str, str] = {}

    def run(name: str, section: Callable[[], list[Figure]]) -> None:
        t0 = time.perf_counter()
        console.print(f"[dim]running {name} ...[/]")
        try:
            figures.extend(section())
        except Exception as exc:  # one broken section must not hide the others' numbers
            failures[name] = f"{type(exc).__name__}: {exc}"
            console.print_exception(max_frames=5)
        section_s[name] = time.perf_counter() - t0
        console.print(f"[dim]{name}: {section_s[name]:.1f} s[/]")

    for name, standalone in STANDALONE.items():
        if not args.only or name in args.only:
            run(name, standalone)
    if not args.only or set(args.only) & set(SECTIONS):
        console.print(f"[bold]tabjob bench ({mode})[/]: starting an embedded stack ...")
        with running_stack(quick=args.quick, timings=stack_s) as h:
            console.print(f"stack up at {h.stack.url} in {time.perf_counter() - started:.1f} s")
            for name, section in SECTIONS.items():
                if not args.only or name in args.only:
                    run(name, lambda section=section: section(h))
    total_s = time.perf_counter() - started
    title = f"tabjob bench ({mode}) - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC - {total_s:.0f} s"
    console.print(render(figures, title))
    start_s, stop_s = stack_s.get("stack_start_s"), stack_s.get("stack_stop_s", 0.0)
    harness = f"stack start {start_s:.1f} s, stop {stop_s:.1f} s; " if start_s is not None else ""
    console.print(harness + ", ".join(f"{k} {v:.1f} s" for k, v in section_s.items()))
    for name, error in failures.items():
        console.print(f"[bold red]{name} failed[/]: {error}")
    meta: dict[str, Any] = {
        "mode": mode,
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "when": datetime.now(UTC).isoformat(),
        "commit": _git_commit(),
        "python": platform.python_version(),
        "machine": cpu_info(),
        "total_s": total_s,
        "section_s": section_s,
        "stack_s": stack_s,
        "failures": failures,
    }
    write_json(args.json, figures, meta)
    console.print(f"results written to {args.json}")
    # A missed target is a finding, reported in the table; only a section that broke fails the run.
    return 1 if failures else 0


if __name__ == "__main__":
    ensure_compiled()  # the stack's cost is measured, not the compiler's (app/local/bytecode.py)
    raise SystemExit(main())
