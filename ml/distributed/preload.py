"""A Dask worker preload (``dask worker --preload ml.distributed.preload``): keeps scikit-learn out
of the worker process before anything imports XGBoost (``ml.distributed.worker_env.lean_imports``)."""

from ml.distributed.worker_env import lean_imports

lean_imports()
