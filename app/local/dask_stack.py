"""``tabjob stack --dask-workers N``: the embedded stack with the Dask engine beside it.

The scheduler and workers (``app.local.dask_cluster``) start before the API and the workers, so
their environment names the scheduler; they are supervised with the rest (restarted with the same
back-off) and stopped after the API and the workers, before Valkey and SeaweedFS.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.local.dask_cluster import LocalDaskCluster
from app.local.stack import EmbeddedStack


@dataclass
class DaskStack(EmbeddedStack):
    """An EmbeddedStack plus ``dask``, the Dask scheduler and workers it supervises."""

    dask: LocalDaskCluster | None = None

    def child_env(self) -> dict[str, str]:
        env = super().child_env()
        return {**env, **self.dask.env()} if self.dask else env

    def start(self, *, timeout_s: float = 120.0) -> None:
        """Start the Dask cluster, then the stack; return once both are ready."""
        if self.dask:
            self.logs.mkdir(parents=True, exist_ok=True)
            self.dask.launch(self.logs)
        super().start(timeout_s=timeout_s)
        if self.dask:
            self.dask.wait_ready(timeout_s)

    def supervise_once(self) -> list[str]:
        restarted = super().supervise_once()
        if self.dask and not self.stopping.is_set():
            restarted.extend(self.dask.supervise_once(self.logs))
        return restarted

    def stop(self) -> None:
        """Stop the API and the workers, the Dask cluster, then the servers."""
        if not self.dask:
            super().stop()
            return
        servers, self.s3, self.valkey = (self.s3, self.valkey), None, None
        super().stop()  # the API and the workers only: their jobs may still talk to Dask
        self.dask.stop()
        self.s3, self.valkey = servers
        if self.s3:
            self.s3.stop()
        if self.valkey:
            self.valkey.stop()
