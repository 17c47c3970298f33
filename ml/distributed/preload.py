"""A Dask worker preload (``dask worker --preload ml.distributed.preload``): keeps scikit-learn out
of the worker process before anything imports XGBoost (``ml.distributed.tasks.lean_imports``)."""

from ml.distributed.tasks import lean_imports

lean_imports()
