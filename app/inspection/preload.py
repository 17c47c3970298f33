"""What the inspection children's forkserver imports and initialises once, so that every child
shares those pages instead of building its own copy (``app.inspection.pool``).

Importing this module has side effects on purpose: it runs a tiny Arrow compute call and a
Parquet round trip in memory. Arrow builds its compute function registry and its allocator's
arenas on first use, about 40 MiB that each child otherwise held privately (measured with
``psutil``'s USS: 43 MiB per child when each warmed itself, 2 MiB when the forkserver did).
Arrow's thread pools do not survive a fork; Arrow restarts them in the child on first use, which
``app.inspection.pool._child_main`` does before it sets its memory limit.
"""

from __future__ import annotations

import gc
import io

import pandas  # noqa: F401  (the describe and fit checks use it)
import pyarrow as pa
import pyarrow.parquet as pq

import app.core.storage
import app.inspection.checks
import app.inspection.limits
import app.usecases.tasks  # noqa: F401

# One inspection at a time per child: one CPU thread and one I/O thread, no pool to reserve.
pa.set_cpu_count(1)
pa.set_io_thread_count(1)
_buffer = io.BytesIO()
pq.write_table(pa.table({"a": pa.array([1, 2, 2]).cast(pa.float64()).unique()}), _buffer)
_buffer.seek(0)
pq.read_table(_buffer)
del _buffer

# Last, in the forkserver, once everything above is imported: every object so far goes to the
# collector's permanent generation. The inspection children forked from here share these pages copy-on-write,
# and a collection in a child walks (and so writes to) every object it tracks: without this, the
# first collections in each child copied most of the imported modules' pages into it. (Python's
# `gc.freeze` documentation gives this use: "gc.freeze() right before fork()".)
gc.freeze()
