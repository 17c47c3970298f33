"""Names the ml package and the service share, in a module that imports nothing: the API and the
workers use them without importing numpy or pyarrow (about 20-30 MiB of each process's own
memory on ``tabjob stack``, where they never read a tenant's file themselves)."""

from __future__ import annotations

# The target column when a request names none.
TARGET = "y"
CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)
