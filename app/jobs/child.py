"""The job process: runs one ``ml`` call at a time for its worker, in its own process.

A worker keeps one such process warm (pandas and scikit-learn imported once, in the forkserver
that forks it) and kills it to cancel a job or enforce a time limit: a signal stops a long
native HistGradientBoosting fit at once, where Dramatiq's asynchronous exceptions would wait for
it to return. If the worker dies, the lifeline pipe closes and this process exits too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import httpx
import psutil
import pyarrow
from threadpoolctl import ThreadpoolController

import ml.checkpoint
import ml.evaluation
import ml.io
import ml.model
import ml.model_step
import ml.prepare_step
import ml.prepared
from app.core.cpu import runqueue_wait_s, runqueue_waits
from app.inspection.record_limits import FileBounds
from app.job_logs import job_side
from app.jobs import pinned
from app.jobs.job_env import clean_environment
from ml.distributed.cluster import ClusterUnavailable, WorkerLost
from ml.distributed.worker_env import trim_memory
from ml.errors import DataProblem

# What a job process runs: the one-call jobs, and the two steps of the others.
OPERATIONS = {
    "fit": ml.model.fit,
    "predict": ml.model.predict,
    "prepare": ml.prepare_step.prepare,
    "train_prepared": ml.model_step.train_prepared,
    "predict_prepared": ml.model_step.predict_prepared,
    # The model registry scores a version on a labelled dataset (app/jobs/registration.py).
    "evaluate": ml.evaluation.evaluate,
}


def _dask_fit(**kwargs: Any) -> dict[str, Any]:
    from ml.distributed import engine  # distributed is imported by Dask jobs only

    return engine.fit(**kwargs)


def _dask_predict(**kwargs: Any) -> dict[str, Any]:
    from ml.distributed import engine

    return engine.predict(**kwargs)


OPERATIONS.update({"dask_fit": _dask_fit, "dask_predict": _dask_predict})
# How a job process warms up: the CPU lanes read Parquet and fit HistGradientBoosting; the gpu
# lane runs model steps only (no Parquet), so it loads XGBoost and opens its device instead.
WARM_CPU, WARM_MODEL = "cpu", "model"
# What the worker sends a job process to make a chunked fit checkpoint and stop.
STOP_SIGNAL = signal.SIGUSR1


def _exit_when_worker_dies(lifeline: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv()
    os._exit(3)


def describe_transport_error(exc: Exception) -> str:
    """What went wrong talking to the store, without the URL: presigned URLs are credentials,
    and this text reaches the job's events, which users read."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the store answered {exc.response.status_code} to a {exc.request.method}"
    return f"{type(exc).__name__} talking to the store"


def warm_up() -> None:
    """Fit and predict once on a tiny file, so the first real job of this process does not pay
    for lazy imports, first-call caches and OpenMP's thread pool (measured: a cold first predict
    took 0.5 s against 0.1 s warm)."""
    import numpy as np
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="tabjob-warm-") as tmp:
        data, model, result = (os.path.join(tmp, name) for name in ("data.parquet", "model.pkl", "result.parquet"))
        pd.DataFrame({"a": np.arange(64.0), "y": np.arange(64) % 2}).to_parquet(data, index=False)
        ml.model.fit(data, model, params={"max_iter": 2}, scratch_dir=tmp)
        ml.model.predict(data, model, result, scratch_dir=tmp)
        # What a real job adds before its ml call: the byte bounds on the downloaded file (0.3 s
        # cold, for Arrow's footer reader and the label scan), and the store's HTTP client (its
        # TLS context: 0.06 s).
        roomy = FileBounds(**dict.fromkeys(FileBounds.__dataclass_fields__, 1 << 40))
        pinned.check_bounds(data, roomy, "fit", {"target": "y"})
    ml.io.http_client()


def warm_up_model_step() -> None:
    """Load XGBoost and train once on a tiny matrix on this process's device: on a GPU this
    creates the CUDA context here, in the job process (forked from a forkserver that never
    touched CUDA, which does not survive a fork), and the process keeps it for every later job."""
    import numpy as np

    from ml.device import choose_device
    from ml.families import FAMILIES, TrainingSet

    family = FAMILIES["xgboost"]
    try:
        import xgboost  # noqa: F401
    except ImportError:  # an image without XGBoost (the CPU image) runs no model step; nothing to warm
        return
    X = np.arange(128, dtype=np.float32).reshape(64, 2)
    data = TrainingSet(X=X, codes=(np.arange(64) % 2).astype(np.int32), classes=np.array([0, 1]),
                       categorical=[False, False])  # fmt: skip
    family.train(data, {**family.default_params, "n_estimators": 2}, choose_device(None))


def release_freed_memory() -> None:
    """Hand the heap a finished job freed back to the system (``ml.distributed.worker_env.trim_memory``:
    Arrow's pool and glibc's arenas). Both keep freed blocks for reuse, so a job process that ran a
    big fit idles at that fit's high-water mark (measured: the stack's three job processes idled at
    257 MiB after four 40,000 x 50 fits and their predicts, 203 MiB with glibc's trim); it runs just
    before the reply (0.55 ms after a 40,000 x 50 fit)."""
    trim_memory()


def hold_if_asked() -> None:
    """A test hook: with ``TABJOB_TEST_HOLD_JOBS`` set to a directory, announce each job there
    (``<pid>.running``) and hold it until a file ``release`` appears, so a test can kill this
    process or its worker while a job is surely running, whatever the machine's speed."""
    folder = os.environ.get("TABJOB_TEST_HOLD_JOBS")
    if not folder:
        return
    from pathlib import Path

    from app.core.waiting import wait_until

    (Path(folder) / f"{os.getpid()}.running").touch()
    wait_until((Path(folder) / "release").exists, what="the test to release the job", timeout_s=600)


def job_limits(threads: int) -> dict[str, int]:
    """Thread pools of a job on ``threads`` cores: OpenMP (HistGradientBoosting, XGBoost) gets
    them; BLAS, which these fits barely use, one: its worker threads spin after each call, and
    beside an OpenMP team of as many they made a 2-core job run 3 threads at once (counted in
    tests/app/test_core_pool.py)."""
    return {"openmp": threads, "blas": 1}


def with_checkpoint(kwargs: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
    """The call's arguments with its checkpoint spec (URLs, pin, interval) made a
    ``ml.checkpoint.Checkpoint`` that stops when ``stop`` is set."""
    spec = kwargs.get("checkpoint")
    if not isinstance(spec, dict):
        return kwargs
    checkpoint = ml.checkpoint.Checkpoint(**spec, stop_requested=stop.is_set, scratch_dir=kwargs.get("scratch_dir"))
    return {**kwargs, "checkpoint": checkpoint}


def openmp_threads(controller: ThreadpoolController, default: int) -> int:
    """The OpenMP threads the job ran with (threadpoolctl's view), or ``default`` without OpenMP."""
    for pool in controller.info():
        if pool.get("user_api") == "openmp":
            return int(pool["num_threads"])
    return default


def serve(
    conn: Connection, lifeline: Connection, threads: int, warm: str = WARM_CPU, log_lines_per_s: int = 50
) -> None:
    """Run operations sent on ``conn`` until it closes.

    Messages in: ``(operation, kwargs, threads)``. Messages out: ``("warm", uss_bytes)`` once,
    when warm; ``("progress", phase, fraction,
    message)`` and ``("log", fields)`` (``app.job_logs.job_side``: at most ``log_lines_per_s``
    lines a second) any number of times, then ``("ok", summary)`` or ``("error", kind, code,
    message, hint)`` where kind is ``data`` (the user's data), ``transport`` (the store) or
    ``internal`` (a bug or resource problem).
    """
    clean_environment()  # presigned URLs only: no store or broker credentials in a job process
    threading.Thread(target=_exit_when_worker_dies, args=(lifeline,), daemon=True).start()
    # The worker got SIGTERM (scale-in, node upgrade, spot preemption): a chunked fit saves its
    # checkpoint at the end of its chunk and stops (ml.checkpoint.Preempted); the job is requeued.
    stop = threading.Event()
    signal.signal(STOP_SIGNAL, lambda *_: stop.set())
    controller = ThreadpoolController()
    controller.limit(limits=job_limits(threads))
    warm_up_model_step() if warm == WARM_MODEL else warm_up()
    forward = job_side.install(conn.send, log_lines_per_s)  # every message goes through its lock
    release_freed_memory()
    # What this process holds once warm: the worker replaces it when it idles far above that.
    forward.send(("warm", psutil.Process().memory_full_info().uss))

    while True:
        try:
            operation, kwargs, job_threads = conn.recv()
        except (EOFError, OSError):
            return
        stop.clear()
        hold_if_asked()
        with forward.job():
            job_side.print_if_asked()
            progress = job_side.progress_reporter(forward.send)
            reply = run_one(controller, operation, kwargs, job_threads, stop, progress)
        # Trim before replying: the worker gives the job's cores back on the reply, and this
        # process must not still be working when another job takes them.
        release_freed_memory()
        forward.send(reply)


def run_one(
    controller: ThreadpoolController, operation: str, kwargs: dict[str, Any], job_threads: int,
    stop: threading.Event, progress: Callable[[str, float | None, str | None], None],
) -> tuple:  # fmt: skip
    """Run one operation on ``job_threads`` cores; the reply to send (see ``serve``)."""
    try:
        kwargs = with_checkpoint(kwargs, stop)
        # Arrow decodes Parquet on a pool of its own (one thread per core by default), which
        # threadpoolctl does not see: it gets the job's cores too.
        pyarrow.set_cpu_count(job_threads)
        waits = runqueue_waits()
        with controller.limit(limits=job_limits(job_threads)):
            # The dataset is downloaded pinned to the version checked at submission.
            summary: Any = OPERATIONS[operation](**pinned.prepare(operation, kwargs, progress), progress=progress)
            if isinstance(summary, dict):  # the threads OpenMP really ran with, for the record
                summary["threads"] = openmp_threads(controller, job_threads)
                # What other processes' load cost it (the estimates learn unloaded run times)
                summary["load"] = {"runqueue_wait_s": runqueue_wait_s(waits, runqueue_waits(), job_threads)}
        return ("ok", summary)
    except ml.checkpoint.Preempted as exc:
        return ("error", "preempted", "platform.worker_shutdown", str(exc), None)
    except DataProblem as exc:
        return ("error", "data", exc.code, exc.message, exc.hint)
    except httpx.HTTPError as exc:
        return ("error", "transport", "platform.store_unavailable", describe_transport_error(exc), None)
    except ml.prepared.PreparedMismatch as exc:
        return ("error", "internal", "step.prepared_mismatch", str(exc), None)
    except ml.model.ModelTampered as exc:
        return ("error", "internal", "model.tampered", str(exc), None)
    except (ClusterUnavailable, WorkerLost) as exc:  # the Dask cluster failed: retried
        code = "platform.dask_worker_lost" if isinstance(exc, WorkerLost) else "platform.dask_unavailable"
        return ("error", "internal", code, str(exc), None)
    except MemoryError:
        return ("error", "internal", "job.out_of_memory", "The job ran out of memory.", None)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return ("error", "internal", "job.internal_error", detail, traceback.format_exc(limit=20))
