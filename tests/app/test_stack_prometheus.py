"""Metrics on one machine too (issue 26): on `tabjob stack` the API's `/metrics` carries every
worker's job counters and histograms (prometheus-client's multiprocess mode: the stack points
every process at one directory, and the API merges it on each scrape), checked by a real
Prometheus (Debian's `prometheus`) scraping the running stack and answering a PromQL query.

prometheus-client's multiprocess rules (https://prometheus.github.io/client_python/multiprocess/):
the directory is set before the processes start and emptied between runs, live gauges of a
dead process are removed with `mark_process_dead`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import tabjob
from app.core.waiting import wait_until
from app.local.servers import free_port
from app.local.spawn import answers, spawn, stop, tabjob_command

PROMETHEUS = "/usr/bin/prometheus"
FITS = 3


def samples(text: str, name: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.mark.slow  # starts a whole stack and a Prometheus server
def test_a_real_prometheus_scraping_the_stacks_api_sees_every_workers_jobs(tmp_path: Path, seed_files):
    if not Path(PROMETHEUS).exists() or shutil.which("prometheus") is None:
        pytest.skip(f"{PROMETHEUS} is not installed (apt-get install -y prometheus)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stack = spawn(
        tabjob_command("stack", "--data-dir", str(tmp_path / "stack"), "--port", str(port)),
        ready=answers(url, "/readyz"), what="the stack to answer /readyz", log=subprocess.DEVNULL, timeout_s=240,
    )  # fmt: skip
    prometheus = None
    try:
        with tabjob.Client(url) as client:
            wait_until(lambda: client.overview()["lanes"][0]["workers"] > 0, what="a small worker", timeout_s=240)
            train = client.upload(seed_files["train"])
            for seed in range(FITS):
                client.wait(client.fit(train.id, params={"max_iter": 5, "random_state": seed}, lane="small").id)
            bad = client.fit(train.id, params={"max_iter": 10_000, "early_stopping": False}, lane="small")
            client.cancel(bad.id)
            client.wait(bad.id, raise_on_failure=False, timeout_s=120)
        # The API's own answer already carries the workers' counters and histograms.
        text = httpx.get(f"{url}/metrics").text
        finished = samples(text, "tabjob_jobs_total")
        assert sum(v for k, v in finished.items() if ("status", "finished") in k) == FITS
        assert sum(v for k, v in finished.items() if ("status", "canceled") in k) == 1
        durations = samples(text, "tabjob_job_duration_seconds_count")
        assert sum(v for k, v in durations.items() if ("status", "finished") in k) == FITS
        # And a real Prometheus, scraping it, answers a query on them.
        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            f"scrape_configs: [{{job_name: tabjob, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}]\n"
        )
        prometheus = spawn(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            ready=answers(f"http://127.0.0.1:{prom_port}", "/-/ready"), what="Prometheus", log=subprocess.DEVNULL,
        )  # fmt: skip
        query = 'sum(tabjob_jobs_total{status="finished"})'

        def answered() -> float | None:
            body = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": query}).json()
            result = body["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        assert wait_until(answered, what="Prometheus to scrape the stack", timeout_s=60, interval_s=0.5) == FITS
    finally:
        if prometheus is not None:
            stop(prometheus)
        stop(stack, 90)
