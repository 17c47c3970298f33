"""Figure 5: the job process's peak RSS while it fits a large float dataset, as a multiple of
that dataset's in-memory size (pandas ``memory_usage(deep=True)``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

from bench.harness import Harness, job_process, random_frame, write_frame
from bench.table import Figure

ROWS, QUICK_ROWS, FEATURES = 1_000_000, 200_000, 50
# Few boosting rounds: the peak comes while the data is loaded, split and binned, before
# boosting; more rounds only add time. Early stopping stays at its default (on above 10k rows).
PARAMS = {"max_iter": 10}
POLL_S = 0.05
TARGET_X = 2.5
MIB = 2**20


def _hwm_bytes(pid: int) -> int:
    """VmHWM (peak RSS) of ``pid`` from /proc, in bytes (0 when it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_hwm(pid: int) -> bool:
    """Reset the peak-RSS counter of ``pid`` (Linux: write 5 to clear_refs); False when refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssPoller:
    """Polls the RSS of a lane's job process every POLL_S seconds; keeps the maximum."""

    def __init__(self, worker: psutil.Process) -> None:
        self.worker = worker
        self.peak_rss = 0
        self.peak_hwm = 0
        self.samples = 0
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = None
        while not self._stop.is_set():
            try:
                if proc is None or not proc.is_running():
                    proc = job_process(self.worker)
                if proc is not None:
                    self.pids.add(proc.pid)
                    self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
                    self.peak_hwm = max(self.peak_hwm, _hwm_bytes(proc.pid))
                    self.samples += 1
            except psutil.Error:
                proc = None
            self._stop.wait(POLL_S)

    def __enter__(self) -> RssPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(h: Harness) -> list[Figure]:
    rows = QUICK_ROWS if h.quick else ROWS
    frame = random_frame(rows, FEATURES, seed=5)
    data_bytes = int(frame.memory_usage(deep=True).sum())
    path = write_frame(h.workdir / "memory.parquet", frame)
    del frame
    parquet_bytes = path.stat().st_size
    dataset = h.upload(path)
    path.unlink()

    worker = h.worker("large")
    # The warm job process, if any (a canceled job's process is killed and the next job forks a
    # fresh one, whose VmHWM is then this job's peak alone).
    before = job_process(worker)
    idle_rss = before.memory_info().rss if before is not None else None
    reset = _reset_hwm(before.pid) if before is not None else False
    with RssPoller(worker) as poller:
        job_id = h.client.fit(dataset, params=PARAMS, lane="large").id
        record = h.wait(job_id, poll_s=0.1)
        time.sleep(2 * POLL_S)
    after = job_process(worker)
    clean = after is not None and (before is None or (after.pid == before.pid and reset))
    hwm = _hwm_bytes(after.pid) if after is not None and clean else 0
    peak = max(poller.peak_rss, hwm)
    details = {
        "rows": rows,
        "features": FEATURES,
        "params": PARAMS,
        "dataset_mib": data_bytes / MIB,
        "parquet_mib": parquet_bytes / MIB,
        "idle_job_process_rss_mib": None if idle_rss is None else idle_rss / MIB,
        "polled_peak_rss_mib": poller.peak_rss / MIB,
        "vmhwm_mib": hwm / MIB,
        "hwm_reset": reset,
        "vmhwm_is_this_job_only": clean,
        "samples": poller.samples,
        "job_pids": sorted(poller.pids),
        "job_s": record["ended_at"] - record["started_at"],
        "worker_timings": (h.client.job(job_id).result or {}).get("timings"),
        "peak_above_idle_x": None if idle_rss is None else (peak - idle_rss) / data_bytes,
    }
    ratio = peak / data_bytes
    return [
        Figure("5 memory", f"job peak RSS, fit {rows:,} x {FEATURES} floats", "MiB", peak / MIB, data_bytes / MIB,
               f"<= {TARGET_X:g}x dataset", ratio <= TARGET_X, details),
    ]  # fmt: skip
