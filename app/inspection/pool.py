"""Inspecting an upload in a warm child process under a memory limit, never in the API process.

Whatever a file declares (footer length, chunk sizes, labels), the bounds of ``app.inspection.limits``
refuse it before decoding; this is the second wall, for the bug or the format trick those bounds
miss. Each child sets ``RLIMIT_AS`` to what it holds idle plus ``inspection_memory_bytes``, so a
file that needs more makes the child's allocations fail (413 ``dataset.inspection_too_large``)
or kills the child, and the API process, which only sends a request and reads a small summary on
a pipe, does not grow. Children are started once (forked from a forkserver, a fresh interpreter
that shares no thread or socket with the API) and reused, so a submission pays a pipe round trip (about
a millisecond, measured in docs/benchmarks.md), not an interpreter start.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any

from app.core.errors import InfraError, TabjobError, TooLarge, UserError
from app.core.settings import Settings
from app.inspection.checks import InspectRequest, inspect_in_child

log = logging.getLogger("tabjob.inspection")
# What the forkserver imports once for every child (the rest of a child's imports come with them).
PRELOAD = ["app.inspection.pool", "app.inspection.preload"]


def _context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    # A process's forkserver is started once, with the preload list set before its first child:
    # in the API that is this pool's (a test process that ran a job runner first may have the job
    # processes' list instead; the children then import what they miss themselves).
    context.set_forkserver_preload(PRELOAD)
    return context


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child_main(conn: Connection, settings: Settings) -> None:
    """A child's loop: one request in, ``("ok", summary)`` or ``("error", fields)`` out."""
    import resource

    import pyarrow as pa

    from app.core.storage import Store

    pa.set_cpu_count(1)  # no thread pool to reserve stacks for: one inspection at a time
    pa.set_io_thread_count(1)
    store = Store.from_settings(settings)
    import app.inspection.limits
    import app.usecases.tasks  # noqa: F401  (a fit's task inference, same reason)

    # Arrow starts its one CPU and one I/O thread on first use; started here, their stacks are
    # not charged to the first inspection under the limit (where a launch could fail).
    pa.array([1, 2, 2]).cast(pa.float64()).unique()

    budget = _vm_size_bytes() + settings.inspection_memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (budget, budget))
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the API process is gone
        try:
            conn.send(("ok", inspect_in_child(store, settings, request)))
        except TabjobError as exc:
            conn.send(("error", _fields(exc)))
        except MemoryError:
            conn.send(("memory", None))
            return  # an allocation failed half-way: start clean rather than trust this process
        except Exception as exc:  # a bug or a file pyarrow chokes on: the user's file, this request only
            conn.send(("bug", f"{type(exc).__name__}: {exc}"[:500]))


def _fields(exc: TabjobError) -> dict[str, Any]:
    return {"class": type(exc).__name__, "message": exc.message, "code": exc.code, "hint": exc.hint,
            "status": exc.status, "headers": exc.headers}  # fmt: skip


def _rebuilt(fields: dict[str, Any]) -> TabjobError:
    """The child's error as the same class in the API process (the classes' constructors
    differ, so the fields are set rather than passed)."""
    import app.core.errors

    cls = getattr(app.core.errors, fields.pop("class"), UserError)
    if not (isinstance(cls, type) and issubclass(cls, TabjobError)):
        cls = UserError
    error = cls.__new__(cls)
    Exception.__init__(error, fields["message"])
    error.__dict__.update(fields)
    return error


def _too_large(detail: str) -> TooLarge:
    return TooLarge(
        f"Checking this file needs more memory than one inspection may use ({detail}).",
        code="dataset.inspection_too_large",
        hint="Write the file with fewer columns, smaller row groups or shorter values, or ask an operator to "
        "raise TABJOB_INSPECTION_MEMORY_BYTES.",
    )


class _Child:
    def __init__(self, settings: Settings) -> None:
        context = _context()
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=_child_main, args=(child_conn, settings), name="tabjob-inspect", daemon=True
        )
        self.process.start()
        child_conn.close()

    def wait_ready(self, timeout_s: float) -> None:
        """Wait for the child's imports and store client (a second or two for a fresh interpreter)."""
        if not self.conn.poll(timeout_s) or self.conn.recv()[0] != "ready":
            raise InfraError("An inspection process did not start.", code="dataset.inspection_unavailable")

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class InspectionPool:
    """At most ``max_concurrent_inspections`` children, started on demand and kept warm.

    Parameters:
        settings: the service's settings (the children build their own store client from them).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.max_concurrent_inspections)
        self._idle: queue.LifoQueue[_Child] = queue.LifoQueue()
        self._started = 0  # children alive or starting
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Start ``inspection_warm_children`` children now, one after the other, so no submission
        pays for an interpreter (a burst of submissions on a cold pool measured 7 req/s where a
        warm one served 30); more start in the background when submissions need them."""
        for _ in range(min(self.settings.inspection_warm_children, self.settings.max_concurrent_inspections)):
            with self._lock:
                if self._started >= self.settings.max_concurrent_inspections:
                    return
                self._started += 1
            self._start_one()

    def close(self) -> None:
        """Stop the idle children (each stopped one may be started again: the count follows)."""
        while True:
            try:
                self._drop(self._idle.get_nowait())
            except queue.Empty:
                return

    def _start_one(self) -> None:
        child = None
        try:
            child = _Child(self.settings)
            child.wait_ready(self.settings.inspection_timeout_s)
        except BaseException:
            log.exception("an inspection process did not start")
            if child is not None:
                child.kill()
            self._forget_one()
            return
        self._idle.put(child)

    def _forget_one(self) -> None:
        with self._lock:
            self._started -= 1

    def _take(self) -> _Child:
        """An idle child; when none is and the pool may grow, one starts in the background while
        this request waits for whichever child is free first (a busy one usually is, within
        milliseconds, where a new interpreter takes a second or two)."""
        while True:
            with self._lock:
                grow = self._idle.empty() and self._started < self.settings.max_concurrent_inspections
                if grow:
                    self._started += 1
            if grow:
                threading.Thread(target=self._start_one, name="tabjob-inspect-start", daemon=True).start()
            try:
                child = self._idle.get(timeout=1.0)
            except queue.Empty:
                continue  # a start failed: look again whether to start one
            if child.process.is_alive():
                return child
            self._drop(child)

    def _drop(self, child: _Child) -> None:
        child.kill()
        self._forget_one()

    def run(self, request: InspectRequest) -> dict[str, Any]:
        """Run ``request`` in a child and return its summary, or raise its error.

        Raises:
            TooLarge: 413 ``dataset.inspection_too_large`` when the child ran out of its memory.
            UserError: 422 ``dataset.not_parquet`` when pyarrow failed on the file otherwise.
            InfraError: the child did not answer within ``inspection_timeout_s``.
        """
        with self._slots:
            child = self._take()
            try:
                child.conn.send(request)
                if not child.conn.poll(self.settings.inspection_timeout_s):
                    self._drop(child)
                    raise InfraError(
                        f"Checking the dataset took longer than {self.settings.inspection_timeout_s:g} s.",
                        code="dataset.inspection_timeout",
                        hint="Retry; if it keeps happening, the store is slow or the file very large.",
                    )
                kind, value = child.conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                self._drop(child)  # died mid-request: killed for memory (OOM killer) or crashed in native code
                log.warning("an inspection child died on %s", request.key)
                raise _too_large("the checking process was stopped") from None
            if kind == "memory":
                self._drop(child)
                raise _too_large("an allocation failed")
            self._idle.put(child)
        if kind == "ok":
            return value
        if kind == "error":
            raise _rebuilt(value)
        raise UserError(
            f"The uploaded file is not a readable Parquet file ({value}).",
            code="dataset.not_parquet",
            hint="Write the data with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table.",
            status=422,
        )


# Pools by the settings they were made with: apps of one process with equal settings (tests make
# many) share one, and at most MAX_POOLS live at once (the oldest is closed).
MAX_POOLS = 2
_pools: dict[str, InspectionPool] = {}
_pools_lock = threading.Lock()
# Each settings object's fingerprint, computed once (dumping every setting cost each submission).
_fingerprints: dict[int, tuple[Settings, str]] = {}
# Answers of checks that passed, by what was checked: the same bytes (the object's etag and size;
# its key names the tenant) asked the same question under the same settings give the same answer,
# so a burst of jobs on one dataset is inspected once (each submission still stats the object).
MAX_RESULTS = 256
_results: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()


def _fingerprint(settings: Settings) -> str:
    with _pools_lock:
        known = _fingerprints.get(id(settings))
        if known is None or known[0] is not settings:
            if len(_fingerprints) >= 4 * MAX_POOLS:
                _fingerprints.clear()
            known = _fingerprints[id(settings)] = (settings, settings.model_dump_json())
        return known[1]


def pool_for(settings: Settings) -> InspectionPool:
    """The process's pool for ``settings``: its children live as long as the process."""
    fingerprint = _fingerprint(settings)
    with _pools_lock:
        pool = _pools.pop(fingerprint, None) or InspectionPool(settings)
        _pools[fingerprint] = pool  # newest last
        while len(_pools) > MAX_POOLS:
            _pools.pop(next(iter(_pools))).close()
        return pool


def inspect(settings: Settings, request: InspectRequest) -> dict[str, Any]:
    """Run ``request`` in the pool of ``settings`` (or answer it again, for the same bytes)."""
    if not request.info.etag:
        return pool_for(settings).run(request)
    features = tuple(sorted((request.features or {}).items()))
    key = (_fingerprint(settings), request.purpose, request.key, request.info.etag, request.info.size,
           request.target, features, request.task, request.passthrough)  # fmt: skip
    with _pools_lock:
        if key in _results:
            _results.move_to_end(key)
            return dict(_results[key])
    answer = pool_for(settings).run(request)
    with _pools_lock:
        _results[key] = answer
        while len(_results) > MAX_RESULTS:
            _results.popitem(last=False)
    return dict(answer)
