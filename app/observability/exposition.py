"""The Prometheus text a process answers ``GET /metrics`` with.

One process (a worker, or an API run by one uvicorn process) exports its own default registry.
When ``PROMETHEUS_MULTIPROC_DIR`` is set (an API with several uvicorn workers sharing one port),
each process writes its values to files there and any of them merges all the files on a scrape,
so the answer does not depend on which process the scrape reached. Collectors that read Valkey
(``extra``) run on every scrape and are never written to files.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from app.observability import MULTIPROC_ENV


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


def process_registry() -> CollectorRegistry:
    """This process's metrics, or every process's when they share a multiprocess directory."""
    if multiprocess_dir() is None:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def render(*extra: Collector) -> tuple[bytes, str]:
    """The exposition text and its content type: the process metrics, then ``extra``'s."""
    body = generate_latest(process_registry())
    if extra:
        registry = CollectorRegistry(auto_describe=False)
        for collector in extra:
            registry.register(collector)
        body += generate_latest(registry)
    return body, CONTENT_TYPE_LATEST
