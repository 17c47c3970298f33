"""Which device a model trains on: ``cuda`` when a GPU is usable by this process's XGBoost, else ``cpu``.

Asked once per process and remembered. The CUDA driver is probed in a short child process, never in
this one: initialising CUDA here would make every process forked from it afterwards unable to use the
GPU (CUDA does not survive ``fork``), and a worker may fork job processes after asking.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

AUTO, CPU, CUDA = "auto", "cpu", "cuda"
DEVICES = (AUTO, CPU, CUDA)
# Forces the device where the caller passes none: auto (default), cpu or cuda.
DEVICE_ENV = "TABJOB_ML_DEVICE"
PROBE_TIMEOUT_S = 30.0

# Counts the GPUs the CUDA driver shows this process (CUDA_VISIBLE_DEVICES applies); prints 0 on any failure.
_PROBE = """
import ctypes
try:
    cuda = ctypes.CDLL("libcuda.so.1")
    count = ctypes.c_int(0)
    ok = cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0
    print(count.value if ok else 0)
except OSError:
    print(0)
"""


class DeviceUnavailable(RuntimeError):
    """``cuda`` was asked for, but this process has no usable GPU (or its XGBoost has no CUDA)."""


def choose_device(requested: str | None = None) -> str:
    """``cpu`` or ``cuda`` for a request of ``auto``, ``cpu`` or ``cuda``.

    Parameters:
      requested: the caller's choice; None reads the ``TABJOB_ML_DEVICE`` environment variable
        (default ``auto``: cuda when usable, cpu otherwise).

    Raises:
      ValueError: an unknown device name.
      DeviceUnavailable: ``cuda`` forced where no GPU is usable.
    """
    wanted = (requested or os.environ.get(DEVICE_ENV) or AUTO).strip().lower()
    if wanted not in DEVICES:
        raise ValueError(f"unknown device {wanted!r}: use one of {', '.join(DEVICES)}")
    if wanted == CPU:
        return CPU
    if cuda_usable():
        return CUDA
    if wanted == CUDA:
        raise DeviceUnavailable(
            "device 'cuda' was requested but no GPU is usable here (XGBoost built without CUDA, "
            "no CUDA driver, or no visible GPU)."
        )
    return CPU


@functools.cache
def cuda_usable() -> bool:
    """Whether XGBoost can train on a GPU in this process: a CUDA build and at least one visible GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    try:
        import xgboost
    except ImportError:
        return False
    if not xgboost.build_info().get("USE_CUDA", False):
        return False  # xgboost-cpu: no need to ask the driver
    return visible_gpus() > 0


def visible_gpus() -> int:
    """How many GPUs the CUDA driver shows a process with this environment (0 when there is no driver)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
        return int(done.stdout.strip() or 0)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0
