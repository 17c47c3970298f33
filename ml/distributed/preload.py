"""A Dask worker preload (``dask worker --preload ml.distributed.preload``): keeps scikit-learn,
pandas and httpx's command-line client out of the worker process before anything imports XGBoost
(``ml.distributed.worker_env.lean_imports``), and transparent huge pages off
(``ml.distributed.worker_env.no_huge_pages``): both only cost the worker memory its limit counts."""

from ml.distributed.worker_env import lean_imports, no_huge_pages

lean_imports()
no_huge_pages()
