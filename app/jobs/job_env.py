"""The job process's environment: what a job needs (threads, temp dirs, locale), never the
platform's credentials. A job reads and writes only through the presigned URLs it is given, and
one warm job process serves every tenant's jobs in turn, so the store's keys, the broker's
password and the like must not be readable from it (``os.environ``, ``/proc/self/environ``).
"""

from __future__ import annotations

import ctypes
import os

# Variables a job process keeps: anything else (TABJOB_*, AWS_*, GOOGLE_*, REDIS*...) goes.
KEEP = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH", "PYTHONHASHSEED",
                  "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
                  "NVIDIA_VISIBLE_DEVICES", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
                  "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"})  # fmt: skip
# Settings a job process reads itself (ml/): none is a credential.
KEEP_PREFIXES = ("TABJOB_ML_", "TABJOB_TEST_")


def clean_environment() -> None:
    """Keep only ``KEEP`` (and ``KEEP_PREFIXES``) in this process's environment, and blank the
    environment block the kernel shows in ``/proc/self/environ`` (inherited from the worker
    through the forkserver), which ``os.environ`` changes do not touch."""
    kept = {k: v for k, v in os.environ.items() if k in KEEP or k.startswith(KEEP_PREFIXES)}
    _blank_initial_block()
    os.environ.clear()
    os.environ.update(kept)


def _blank_initial_block() -> None:
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # Fields 50 and 51 of /proc/<pid>/stat (env_start, env_end), counted after the "(comm)" field.
        start, end = int(fields[47]), int(fields[48])
    except (OSError, IndexError, ValueError):
        return  # not Linux: os.environ is what there is
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)
