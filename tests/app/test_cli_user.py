"""The user commands end with a clear message and exit code on every mistake, never a traceback.

The CLI runs in process (typer's runner) against the real API served by uvicorn on loopback,
on the real broker and store; jobs run on real workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.progress_bar import ProgressBar
from typer.testing import CliRunner

import tabjob
from app.api.main import create_app
from app.core.waiting import wait_until
from tabjob.cli.live import FractionBar, PhaseColumn
from tabjob.cli.main import app
from tabjob.cli.show import jobs_table

ROOT = Path(__file__).resolve().parents[2]
ENDLESS = {"max_iter": 10_000, "early_stopping": False, "max_leaf_nodes": 255}


@pytest.fixture(scope="module")
def api_url(settings, tmp_path_factory) -> Iterator[str]:
    """The real app on a loopback port, for the duration of this module."""
    from app.local.servers import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the test API to start", timeout_s=60, interval_s=0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture
def user(api_url, new_tenant):
    """Runs `tabjob ARGS` as a fresh tenant; returns the result (exit_code, stdout, stderr)."""
    _, key = new_tenant()
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, [*args, "--url", api_url, "--api-key", key], catch_exceptions=True)
        # Whatever happened, it ended as an exit code with words, never as an exception.
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.stdout + result.stderr
        return result

    run.key, run.url = key, api_url  # type: ignore[attr-defined]
    return run


def test_upload_of_a_missing_file_or_a_folder_says_so(user, tmp_path):
    missing = user("upload", str(tmp_path / "nope.parquet"))
    assert missing.exit_code == 2 and "No such file" in missing.stderr and missing.stdout == ""
    folder = user("upload", str(tmp_path))
    assert folder.exit_code == 2 and "is a folder" in folder.stderr
    assert json.loads(user("datasets", "--json").stdout)["items"] == []  # nothing was created


def test_upload_waits_for_the_check_and_prints_rows_by_columns_or_the_problem(user, seed_files, tmp_path):
    good = user("upload", str(seed_files["train"]))
    assert good.exit_code == 0 and "3,000 rows x 21 columns" in good.stdout
    quiet = user("upload", str(seed_files["train"]), "-q")
    assert quiet.exit_code == 0 and quiet.stdout.strip().startswith("ds_") and len(quiet.stdout.split()) == 1

    bogus = tmp_path / "data.txt"  # not Parquet (and not named .csv, which is converted first)
    bogus.write_text("a,b,y\n1,2,0\n")
    refused = user("upload", str(bogus))
    assert refused.exit_code == 2
    assert "cannot be used" in refused.stderr and "dataset.not_parquet" in refused.stderr and "Hint" in refused.stderr
    as_json = json.loads(user("upload", str(bogus), "--json").stdout)
    assert as_json["error"]["code"] == "dataset.not_parquet" and as_json["dataset"]["state"] == "invalid"
    listed = user("datasets")
    assert quiet.stdout.strip() in listed.stdout and "invalid" in listed.stdout
    assert user("datasets", "-q").stdout.split()[2] == quiet.stdout.strip()  # newest first, ids alone


def test_a_job_id_where_a_dataset_id_belongs_and_the_reverse_are_named(user):
    fit = user("fit", "job_0123456789abcdef0123")
    assert fit.exit_code == 2 and "is a job id, but DATASET_ID takes a dataset id" in fit.stderr
    assert "tabjob upload" in fit.stderr
    status = user("status", "ds_0123456789abcdef0123")
    assert status.exit_code == 2 and "is a dataset id, but JOB_ID takes a job id" in status.stderr
    predict = user("predict", "ds_a", "ds_b")
    assert predict.exit_code == 2 and "MODEL_ID takes a model id" in predict.stderr
    shown = user("dataset", "job_x", "--json")
    assert shown.exit_code == 2 and json.loads(shown.stdout)["error"]["code"] == "cli.wrong_kind_of_id"


def test_refusals_point_at_the_commands_help_not_at_the_api_docs(user, seed_files):
    dataset = user("upload", str(seed_files["train"]), "-q").stdout.strip()
    refused = user("fit", dataset, "-p", "max_iter=-1")
    assert refused.exit_code == 2 and "request.invalid" in refused.stderr
    assert "tabjob fit --help" in refused.stderr and "/docs" not in refused.stderr
    assert user("fit", dataset, "-p", "max_iter").exit_code == 2
    unknown = user("status", "job_none", "--json")
    assert unknown.exit_code == 2 and json.loads(unknown.stdout)["error"]["code"] == "job.not_found"
    bad_lane = user("fit", dataset, "--lane", "huge")
    assert bad_lane.exit_code == 2 and "huge" in bad_lane.stderr
    no_label = user("fit", dataset, "--model", "xgboost", "--target", "label")
    assert no_label.exit_code == 2 and "dataset.missing_target" in no_label.stderr


def test_an_unreachable_service_is_said_without_a_traceback(free_tcp_port):
    result = CliRunner().invoke(app, ["jobs", "--url", f"http://127.0.0.1:{free_tcp_port}"])
    assert result.exit_code == 1 and "Cannot reach the tabjob API" in result.stderr
    assert "TABJOB_URL" in result.stderr and "Traceback" not in result.stderr


def test_json_is_a_flag_and_version_is_there():
    runner = CliRunner()
    help_text = runner.invoke(app, ["upload", "--help"]).stdout
    assert "--json " in help_text and "<bool>" not in help_text and "-q, --quiet" in help_text
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("tabjob 0.1.0") and tabjob.__version__ in version.stdout


def test_fit_predict_download_into_a_folder_with_quiet_ids(user, small_worker, seed_files, tmp_path):
    train = user("upload", str(seed_files["train"]), "-q").stdout.strip()
    fit = user("fit", train, "-p", "max_iter=20", "--wait", "-q")
    assert fit.exit_code == 0 and fit.stdout.strip().startswith("job_") and len(fit.stdout.split()) == 1
    model = fit.stdout.strip()
    shown = user("status", model)
    assert "finished" in shown.stdout and f"model {model}: 2 classes" in shown.stdout

    test = user("upload", str(seed_files["test"]), "-q").stdout.strip()
    pred = user("predict", test, model, "--wait", "--json")
    assert pred.exit_code == 0 and json.loads(pred.stdout)["status"] == "finished"
    pred_id = json.loads(pred.stdout)["id"]
    saved = user("download", pred_id, str(tmp_path), "-q")
    assert saved.exit_code == 0 and saved.stdout.strip() == str(tmp_path / f"{pred_id}.parquet")
    assert pq.read_table(saved.stdout.strip()).num_rows == 1000
    nowhere = user("download", pred_id, str(tmp_path / "missing" / "p.parquet"))
    assert nowhere.exit_code == 2 and "does not exist" in nowhere.stderr
    not_a_prediction = user("download", model)
    assert not_a_prediction.exit_code == 2 and "job.no_result" in not_a_prediction.stderr

    listed = user("jobs")
    assert pred_id in listed.stdout and model in listed.stdout  # whole ids
    assert user("jobs", "-q", "--kind", "fit").stdout.split() == [model]


def test_tables_keep_whole_ids_in_80_columns():
    job = tabjob.Job.from_api({
        "id": "job_" + "a" * 20, "kind": "predict", "status": "failed", "lane": "large", "phase": "predicting",
        "dataset_id": "ds_" + "b" * 20, "created_at": "2026-12-01T08:00:00Z",
        "error": {"code": "dataset.incompatible_types", "message": "x"},
    })  # fmt: skip
    console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(jobs_table([job]))
    assert "job_" + "a" * 20 in console.export_text()


def test_cancel_shows_the_state_after_the_cancel(user, workers, tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(100_000, 10)), columns=[f"f{i}" for i in range(10)])
    frame["y"] = (frame.f0 > 0).astype(int)
    frame.to_parquet(tmp_path / "big.parquet")
    dataset = user("upload", str(tmp_path / "big.parquet"), "-q").stdout.strip()

    queued = user("fit", dataset, "--lane", "large", "-q").stdout.strip()
    canceled = user("cancel", queued)
    assert canceled.exit_code == 0 and "canceled" in canceled.stdout

    workers.start("large")
    params = [arg for k, v in ENDLESS.items() for arg in ("-p", f"{k}={json.dumps(v)}")]
    running = user("fit", dataset, "--lane", "large", *params, "-q").stdout.strip()
    client = tabjob.Client(user.url, user.key)
    wait_until(lambda: client.job(running).phase == "training", what="training", timeout_s=120, interval_s=0.1)
    stopped = user("cancel", running, "--json")
    assert stopped.exit_code == 0 and json.loads(stopped.stdout)["status"] == "canceled"
    again = user("cancel", running)
    assert again.exit_code == 2 and "job.already_ended" in again.stderr


def test_ctrl_c_on_wait_says_the_job_goes_on_and_how_to_cancel_it(api_url, user, seed_files, tmp_path):
    dataset = user("upload", str(seed_files["train"]), "-q").stdout.strip()
    job = user("fit", dataset, "--lane", "large", "-q").stdout.strip()  # no large worker: it stays queued
    env = {**os.environ, "TABJOB_URL": api_url, "TABJOB_API_KEY": user.key}
    err = tmp_path / "stderr.txt"
    with err.open("w") as stderr:
        waiting = subprocess.Popen([sys.executable, "-m", "app.cli", "wait", job], env=env, cwd=ROOT, stderr=stderr)
        wait_until(lambda: "Queued on the large lane" in err.read_text(), what="wait to show the job", timeout_s=60)
        waiting.send_signal(signal.SIGINT)
        assert waiting.wait(30) == 130
    said = err.read_text()
    assert f"Job {job} goes on running" in said and f"tabjob cancel {job}" in said and "Traceback" not in said
    assert json.loads(user("status", job, "--json").stdout)["status"] == "queued"
    user("cancel", job)


def test_progress_shows_a_bar_only_while_the_phase_has_a_fraction():
    progress = Progress(disable=True)
    task_id = progress.add_task("job", total=1.0, phase="training", since=time.monotonic() - 125, fraction=None)
    task = progress.tasks[0]
    assert FractionBar().render(task).plain == ""  # no fraction: the spinner and the time in the phase
    assert "training for 2 min" in PhaseColumn().render(task).plain
    progress.update(task_id, completed=0.4, fraction=0.4, phase="downloading")
    assert isinstance(FractionBar().render(task), ProgressBar)


def test_models_export_and_deletes_from_the_cli(user, small_worker, seed_files, tmp_path):
    train = user("upload", str(seed_files["train"]), "-q").stdout.strip()
    model = user("fit", train, "-p", "max_iter=20", "-p", "early_stopping=true", "--wait", "-q").stdout.strip()
    shown = user("status", model)
    assert "validation accuracy" in shown.stdout and "early_stopping split, 300 rows" in shown.stdout
    assert "fit took" in shown.stdout and "model file" in shown.stdout
    listed = user("models")
    assert model in listed.stdout and user("models", "-q").stdout.split() == [model]
    assert "model of 'y' (2 classes)" in user("model", model).stdout

    exported = user("export", model, str(tmp_path), "-q")
    assert exported.exit_code == 0 and exported.stdout.strip() == str(tmp_path / f"{model}.pkl")
    assert (tmp_path / f"{model}.pkl.schema.json").exists()

    unconfirmed = user("delete-model", model)  # the runner's stdin is not a terminal
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.stderr
    assert user("delete-model", model, "--yes").exit_code == 0
    gone = user("model", model)
    assert gone.exit_code == 2 and "model.deleted" in gone.stderr
    assert user("delete-dataset", "job_x", "--yes").exit_code == 2  # the wrong kind of id, said
    deleted = user("delete-dataset", train, "--yes")
    assert deleted.exit_code == 0 and "dataset.deleted" in deleted.stderr
    assert train not in user("datasets").stdout


def test_a_url_that_is_not_the_api_is_said():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # any web server that is not tabjob: 200 with a page
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = CliRunner().invoke(app, ["jobs", "--url", f"http://127.0.0.1:{server.server_port}"])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1 and "not the tabjob API" in result.stderr and "Traceback" not in result.stderr
