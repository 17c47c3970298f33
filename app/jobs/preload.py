"""What the job processes' forkserver initialises once, so every job process shares those pages
instead of building its own copy (``app.jobs.runner``).

Importing this module has side effects on purpose: a Parquet round trip in memory through pandas
and Arrow. Arrow builds its compute function registry and its allocator's arenas on first use,
about 40 MiB that each warm job process otherwise held privately (the same measure as
``app.inspection.preload``). Nothing here starts OpenMP: GNU OpenMP's thread pool does not
survive a fork, so the scikit-learn warm-up fit stays in each job process
(``app.jobs.child.warm_up``).
"""

from __future__ import annotations

import gc
import io

import pandas as pd
import pyarrow as pa

_buffer = io.BytesIO()
pd.DataFrame({"a": [0.5, 1.5, 1.5], "y": [0, 1, 1]}).to_parquet(_buffer, index=False)
_buffer.seek(0)
pd.read_parquet(_buffer).astype({"a": "float32"})
pa.array([1, 2, 2]).cast(pa.float64()).unique()
del _buffer

# Last, in the forkserver, once everything above is imported: every object so far goes to the
# collector's permanent generation. The job processes forked from here share these pages copy-on-write,
# and a collection in a child walks (and so writes to) every object it tracks: without this, the
# first collections in each child copied most of the imported modules' pages into it. (Python's
# `gc.freeze` documentation gives this use: "gc.freeze() right before fork()".)
gc.freeze()
