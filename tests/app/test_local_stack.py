"""``tabjob stack`` and the CLI, as a user runs them: start, work, a dying worker, stop, restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from app.core.settings import LANES, Settings
from app.core.storage import Store
from app.core.waiting import wait_until
from app.jobs.broker import redis_client
from app.local.servers import free_port
from app.local.stack import EmbeddedStack
from app.state import lane_workers_key

ROOT = Path(__file__).resolve().parents[2]


# The large and gpu lanes' workers stop this long after their lane's last work (30 s by default).
LANE_IDLE_STOP_S = 3


def start_stack(data_dir: Path, port: int) -> subprocess.Popen:
    """Start ``tabjob stack`` and return once it is ready (its /readyz answers 200)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "stack", "--data-dir", str(data_dir), "--port", str(port),
         "--lane-idle-stop-s", str(LANE_IDLE_STOP_S)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200,
        what="the stack to answer /readyz",
        timeout_s=240,
        interval_s=0.2,
        ignore=(httpx.HTTPError,),
        give_up=lambda: (process.stdout.read() if process.stdout else "exited") if process.poll() is not None else None,
    )
    return process


def cli(url: str, *args: str) -> tuple[int, dict]:
    env = {**os.environ, "TABJOB_URL": url}
    env.pop("TABJOB_API_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}


def children_running(process: subprocess.Popen, text: str) -> list[psutil.Process]:
    """Live (not zombie) children of the stack whose command line contains ``text``."""
    found = []
    for child in psutil.Process(process.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and text in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("stack")
    port = free_port()
    process = start_stack(data_dir, port)
    yield process, data_dir, port
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(120)


def stack_settings(data_dir: Path) -> Settings:
    """The settings the stack hands its children, from its ``tabjob.env``."""
    values = {}
    for line in (data_dir / "tabjob.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("TABJOB_"):
            values[key.removeprefix("TABJOB_").lower()] = value
    return Settings(**values)


def worker_pids_registered(settings: Settings) -> list[int]:
    """The pid of each worker that registered with the broker (a worker id ends in its pid; the
    small lane's workers share one process)."""
    client = redis_client(settings, decode=True)
    try:
        return [
            int(member.rsplit("-", 1)[-1]) for lane in LANES for member in client.zrange(lane_workers_key(lane), 0, -1)
        ]
    finally:
        client.close()


def wait_for_workers(process: subprocess.Popen, data_dir: Path) -> list[psutil.Process]:
    """The workers the stack starts with (the small lane's process; the stack starts it after it
    is ready) once each has registered with the broker."""
    settings = stack_settings(data_dir)
    expected = EmbeddedStack(data_dir=data_dir).concurrent_workers()  # the reserved one included

    def registered() -> list[psutil.Process] | None:
        workers = children_running(process, "worker --lane small")  # its workers share a process
        pids = worker_pids_registered(settings)
        live = {w.pid for w in workers}
        every = len(workers) == 1 and live <= set(pids) and sum(p in live for p in pids) == expected
        return workers if every else None

    return wait_until(registered, what="every worker to register", timeout_s=60, interval_s=0.2)


def test_ready_once_the_servers_and_the_bucket_answer_then_every_worker_registers(stack):
    process, data_dir, port = stack
    settings = stack_settings(data_dir)
    # Ready means the API reaches the broker and the bucket (the stack created it); each server
    # answers its own protocol with the credentials the stack generated.
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").json() == {"status": "ready"}
    assert redis_client(settings, decode=True).ping() is True
    Store.from_settings(settings).ping()  # raises unless the bucket exists and the keys may read it
    # The small lane's workers register with the broker (their first heartbeat); the large and
    # gpu lanes' start with their lane's first job (app.local.on_demand).
    workers = wait_for_workers(process, data_dir)
    assert [w.cmdline()[-1] for w in workers] == ["small"]
    assert children_running(process, "worker --lane large") == children_running(process, "worker --lane gpu") == []


def test_a_job_on_an_idle_lane_starts_its_worker_which_stops_once_idle(stack, seed_files):
    process, _, port = stack
    url = f"http://127.0.0.1:{port}"
    _, train = cli(url, "upload", str(seed_files["train"]))
    for round_ in range(2):  # the second job starts the worker the first one's idle time stopped
        code, fit = cli(url, "fit", train["id"], "--lane", "large", "--param", f"max_iter={5 + round_}", "--wait")
        assert code == 0 and fit["status"] == "finished" and fit["lane"] == "large"
        wait_until(
            lambda: children_running(process, "worker --lane large") == [],
            what="the idle large lane's worker to stop",
            timeout_s=LANE_IDLE_STOP_S + 30,
            interval_s=0.2,
        )
    # Stopped on purpose, not restarted; the gpu lane had no work at all.
    assert children_running(process, "worker --lane gpu") == []


def test_cli_runs_the_whole_workflow(stack, seed_files, tmp_path):
    _, _, port = stack
    url = f"http://127.0.0.1:{port}"
    code, train = cli(url, "upload", str(seed_files["train"]))
    assert code == 0 and train["id"].startswith("ds_")
    code, fit = cli(url, "fit", train["id"], "--param", "max_iter=40", "--wait")
    assert code == 0 and fit["status"] == "finished" and fit["params"] == {"max_iter": 40}
    code, again = cli(url, "fit", train["id"], "--param", "max_iter=40")
    assert code == 0 and again["deduplicated"] and again["id"] == fit["id"]
    _, test = cli(url, "upload", str(seed_files["test"]))
    code, pred = cli(url, "predict", test["id"], fit["id"], "--wait")
    assert code == 0 and pred["status"] == "finished"
    code, _saved = cli(url, "download", pred["id"], str(tmp_path / "out.parquet"))
    assert code == 0 and (tmp_path / "out.parquet").stat().st_size > 0
    code, status = cli(url, "status", pred["id"])
    assert code == 0 and status["status"] == "finished"
    code, listed = cli(url, "jobs", "--kind", "fit")
    assert code == 0 and fit["id"] in [j["id"] for j in listed["items"]]
    code, waited = cli(url, "wait", fit["id"])
    assert code == 0 and waited["status"] == "finished"
    _, bad = cli(url, "upload", str(seed_files["train_without_y"]))
    code, refused = cli(url, "fit", bad["id"])
    assert code == 2 and refused["error"]["code"] == "dataset.missing_target"
    code, queued = cli(url, "fit", train["id"], "--lane", "large", "--param", "max_iter=3")
    code, canceled = cli(url, "cancel", queued["id"])
    # A toy fit may already have ended on the stack's large-lane worker: then the refusal says so;
    # or it may finish while its worker is being told to stop (cancel shows the state after).
    assert (code == 0 and canceled["status"] in ("canceled", "started", "finished")) or (
        code == 2 and canceled["error"]["code"] == "job.already_ended"
    )
    code, missing = cli(url, "status", "job_nope")
    assert code == 2 and missing["error"]["code"] == "job.not_found"


def test_a_dead_worker_is_restarted(stack):
    process, data_dir, _ = stack
    wait_for_workers(process, data_dir)
    before = children_running(process, "worker --lane small")
    victim = before[0]
    victim.send_signal(signal.SIGKILL)

    def replaced() -> bool:
        workers = children_running(process, "worker --lane small")
        return len(workers) == len(before) and victim.pid not in [w.pid for w in workers]

    wait_until(replaced, what="the worker to be restarted", timeout_s=60, interval_s=0.2)


@pytest.mark.slow  # starts its own stack (no `stack` fixture to mark it)
def test_sigterm_stops_everything_and_a_restart_keeps_history(seed_files, tmp_path):
    # Its own stack: stopping the module's would break whichever test ran after this one.
    data_dir, port = tmp_path / "stack", free_port()
    process = start_stack(data_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _, dataset = cli(url, "upload", str(seed_files["train"]))
        _, fit = cli(url, "fit", dataset["id"], "--param", "max_iter=11", "--wait")
        wait_for_workers(process, data_dir)
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
    finally:
        if process.poll() is None:
            process.kill()
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]

    again = start_stack(data_dir, port)
    try:
        code, status = cli(url, "status", fit["id"])
        assert code == 0 and status["status"] == "finished"
        test_id = cli(url, "upload", str(seed_files["test"]))[1]["id"]
        code, pred = cli(url, "predict", test_id, fit["id"], "--wait")
        assert code == 0 and pred["status"] == "finished"
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(120) == 0
