"""A job process holds no platform credential: one warm job process serves every tenant's jobs
and reads and writes through presigned URLs only, so the store's keys and the broker's password
must not be readable from it (its environment, nor the block the kernel shows in /proc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
MARKER = "credential-marker-7f3a9c"
_START = f"""
import os, sys, time
os.environ["TABJOB_S3_SECRET_KEY"] = "{MARKER}"
os.environ["TABJOB_REDIS_PASSWORD"] = "{MARKER}"
os.environ["TABJOB_ML_DEVICE"] = "cpu"
from app.jobs.runner import JobRunner
runner = JobRunner(threads=1)
runner.start()
print(runner._process.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.slow  # starts a job process through the forkserver, warm-up fit included
def test_a_job_process_has_no_platform_credentials():
    # Given a worker-like process whose environment holds credentials, with its job process
    worker = subprocess.Popen([sys.executable, "-c", _START], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        job_pid = int(worker.stdout.readline())
        environ = Path(f"/proc/{job_pid}/environ")
        # Then, once it is set up, its environment block no longer shows them (nor anything else)
        wait_until(lambda: MARKER.encode() not in environ.read_bytes(), what="a clean job environment", timeout_s=60)
        assert b"TABJOB_S3_SECRET_KEY" not in environ.read_bytes()
    finally:
        worker.kill()
        worker.wait(30)
