"""What the job processes' forkserver initialises once, so every job process shares those pages
instead of building its own copy (``app.jobs.runner``).

Importing this module has side effects on purpose. First a Parquet round trip in memory through
pandas and Arrow: Arrow builds its compute function registry and its allocator's arenas on first
use, about 40 MiB that each warm job process otherwise held privately (the same measure as
``app.inspection.preload``). Then the job process's own warm-up (``app.jobs.child.warm_up``: a
tiny fit and predict, the byte bounds) on one OpenMP thread: its lazy imports and first-call
caches are then shared by every job process, not built again in each
(the embedded stack's idle PSS went 833 -> 801 MiB, after work 875 -> 852 MiB:
``python -m bench.stack_start``, 2026-12-07). One thread, because GNU OpenMP's thread pool does
not survive a fork, and a team of one starts no thread; each job process still runs the warm-up
once more, which now mostly starts its own OpenMP pool
(``tests/app/test_job_process_warmup.py``).
"""

from __future__ import annotations

import gc
import io

import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from app.jobs.child import warm_up  # the forkserver imported it first (app.jobs.runner's preload list)
from ml.io import drop_http_client

_buffer = io.BytesIO()
pd.DataFrame({"a": [0.5, 1.5, 1.5], "y": [0, 1, 1]}).to_parquet(_buffer, index=False)
_buffer.seek(0)
pd.read_parquet(_buffer).astype({"a": "float32"})
pa.array([1, 2, 2]).cast(pa.float64()).unique()
del _buffer

with threadpool_limits(limits=1):
    warm_up()
drop_http_client()  # each job process makes its own (its warm-up does)

# Last, in the forkserver, once everything above is imported: every object so far goes to the
# collector's permanent generation. The job processes forked from here share these pages copy-on-write,
# and a collection in a child walks (and so writes to) every object it tracks: without this, the
# first collections in each child copied most of the imported modules' pages into it. (Python's
# `gc.freeze` documentation gives this use: "gc.freeze() right before fork()".)
gc.freeze()
