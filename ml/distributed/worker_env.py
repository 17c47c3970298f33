"""The Dask worker process's side of the engine: keep it lean, find its scratch disk, download a part.

Imported on Dask workers (and by ``ml.distributed.preload`` at their start); it never imports
XGBoost, pandas, scikit-learn or httpx itself.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def lean_imports() -> None:
    """Keep scikit-learn and pandas (and the scipy they drag in) out of a Dask worker.

    ``import xgboost`` imports scikit-learn for its estimator wrappers when it is installed, and
    pyarrow imports pandas on its first ``pa.array`` or ``to_numpy`` (measured in a ``dask worker``
    process: 112 MiB RSS idle, 169 MiB after pyarrow pulled pandas in, 190 MiB with XGBoost and
    scikit-learn; 135 MiB with XGBoost alone), which would leave a 192 MiB worker nothing for data.
    Both treat the module as optional, and the worker's tasks use neither (XGBoost's Booster API,
    pyarrow and numpy), so they are marked absent before anything imports them. So are rich and
    pygments: ``import httpx`` (the parts' downloads) imports its command-line client when they are
    installed and falls back to a stub without them (measured: 5.7 MiB of RSS and 40-90 ms, httpx
    0.28). Called by the worker preload (``ml.distributed.preload``) and again by each task; a no-op
    in a process that already imported any of them (a tabjob job process, a test)."""
    if not any(name in sys.modules for name in (*_KEPT_OUT, "xgboost")):
        # A finder, not ``sys.modules[name] = None``: pyarrow's pandas shim reads sys.modules directly.
        sys.meta_path.insert(0, _KeepOut())


_KEPT_OUT = ("sklearn", "pandas", "rich", "pygments")


# prctl(2)'s PR_SET_THP_DISABLE (linux/prctl.h).
_PR_SET_THP_DISABLE = 41


def no_huge_pages() -> bool:
    """Turn transparent huge pages off for this process (``prctl(PR_SET_THP_DISABLE)``); True if done.

    Where a node's kernel runs THP in ``always`` mode (a sysctl of the node, not of the pod), every
    anonymous region that grows past 2 MiB may be backed by whole huge pages, and Dask's memory limit
    counts them in full: the held-out 192 MiB case peaked 6 MiB higher with ``always`` than with
    ``madvise`` on the same VM (183.8 vs 177.6 MiB, docs/distributed.md). The worker's batches are
    streamed once and dropped, so huge pages buy it nothing. Inherited by the processes it starts;
    a no-op off Linux or where prctl refuses (an old kernel)."""
    prctl = _c_function("prctl")
    return prctl is not None and prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0


class _KeepOut(importlib.abc.MetaPathFinder):
    """Makes ``import sklearn`` and ``import pandas`` (and their submodules) fail as if not installed."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.partition(".")[0] in _KEPT_OUT:
            raise ModuleNotFoundError(f"No module named {fullname!r} (kept out of Dask workers)", name=fullname)
        return None


def scratch() -> str | None:
    """The Dask worker's own local directory for downloads (its spill directory's parent)."""
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):
        return None


def download(url: str) -> tuple[Path, bool]:
    # Imported here: ``ml.io`` imports httpx, which must come after the preload's ``lean_imports``.
    from ml.io import fetch_to_file

    return fetch_to_file(url, scratch_dir=scratch())


def release(path: Path, temporary: bool) -> None:
    if temporary:
        path.unlink(missing_ok=True)


def peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def worker_device(requested: str | None) -> str:
    """``cpu`` or ``cuda``: what this Dask worker trains on for a request (``ml.device``)."""
    lean_imports()
    from ml.device import choose_device

    return choose_device(requested)


# A batch gets this share of the worker's memory limit (24 MiB of 192 MiB): each batch becomes one of
# XGBoost's external-memory pages, and every page costs training memory of its own (measured: 240,000
# rows x 64 features trained in 25 MiB more with pages of 39,000 rows than of 11,000, and 75 MiB more
# with pages of 1,300), so batches are as large as the build phase allows.
BATCH_SHARE_OF_LIMIT = 8
MIN_BATCH_BYTES, MAX_BATCH_BYTES = 1 << 20, 64 << 20


def memory_limit_bytes() -> int | None:
    """This Dask worker's memory limit (``--memory-limit``), or None outside a worker or without one."""
    try:
        from distributed import get_worker

        return get_worker().memory_manager.memory_limit or None
    except (ImportError, ValueError, AttributeError):
        return None


def batch_budget_bytes() -> int:
    """The bytes one batch of rows may take on this worker: a share of its memory limit."""
    limit = memory_limit_bytes()
    if limit is None:
        return 8 << 20
    return max(MIN_BATCH_BYTES, min(MAX_BATCH_BYTES, limit // BATCH_SHARE_OF_LIMIT))


def trim_memory() -> None:
    """Hand freed heap pages back to the system: what XGBoost and Arrow freed after building the
    matrix would otherwise still count in the worker's RSS, which is what Dask's memory limit
    measures (a tabjob job process calls it after each job too, ``app.jobs.child``). Two heaps:
    Arrow allocates from its own pool (mimalloc in current wheels, unless
    ``ARROW_DEFAULT_MEMORY_POOL=system``), which keeps freed pages until later allocations go by,
    and glibc's (``malloc_trim``). A no-op where neither applies."""
    if "pyarrow" in sys.modules:  # imported by the parts' reads; never imported here just to trim
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    malloc_trim = _c_function("malloc_trim")  # glibc only (not musl or macOS): nothing to trim there
    if malloc_trim is not None:
        malloc_trim(0)


@functools.cache
def _c_function(name: str) -> Callable[..., int] | None:
    """The C library's function ``name`` as this process has it loaded, looked up once per process
    (``malloc_trim`` was looked up on every trim); None where the C library has no such function."""
    import ctypes

    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
