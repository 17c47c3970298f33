"""Settings of the distributed engine and of datasets in parts.

Part of ``app.core.settings.Settings`` (inherited with its ``TABJOB_`` prefix), kept apart so the
settings module stays small; docs/configuration.md lists them with the others.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class EngineSettings(BaseSettings):
    """Where the Dask cluster is, when a job goes to it, and how many parts a dataset may have."""

    dask_scheduler_address: str | None = Field(
        None,
        description="The Dask scheduler of the distributed engine (`tcp://host:8786`); unset: no engine, and a "
        "job asking for `engine: dask` is refused with 422 `engine.unavailable`. `tabjob stack --dask-workers N` "
        "sets it; the chart sets it when `dask.enabled`.",
    )
    dask_workers_wait_s: float = Field(
        300.0, gt=0, description="How long a Dask job waits for a first Dask worker (a cluster scaled to zero "
        "starts one on demand) before it fails as a platform error (retried).",
    )  # fmt: skip
    dask_min_workers: int = Field(
        1, ge=1, description="Dask workers a Dask job waits for before it starts (at most dask_workers_wait_s): a "
        "retry after a lost worker waits for its replacement rather than doubling another worker's share. "
        "`tabjob stack --dask-workers N` sets N.",
    )  # fmt: skip
    dask_threads_per_worker: int = Field(
        1, ge=1, description="XGBoost threads in each Dask worker: its cores (the chart's Dask worker CPU limit)."
    )
    single_node_max_matrix_bytes: int = Field(
        4 * 1024**3,
        gt=0,
        description="One worker's memory budget for a dataset's feature matrix (rows x columns x 8 bytes, from the "
        "footer). A larger dataset goes to the Dask engine when there is one (xgboost jobs), and is refused "
        "with 422 `dataset.too_large_for_worker` otherwise.",
    )
    max_dataset_parts: int = Field(
        1000, ge=1, le=10_000, description="Most parts of a dataset in parts (`POST /v1/datasets` with `parts`)."
    )
