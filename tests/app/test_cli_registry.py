"""The weekly-retraining walk of docs/registry.md from the CLI: named uploads, registered fits
with promotion, the registry, rollback and history, predict by alias, and schedules."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from registry_testing import quality_sets
from typer.testing import CliRunner

from app.api.main import create_app
from app.core.waiting import wait_until
from tabjob.cli.main import app


@pytest.fixture(scope="module")
def api_url(settings) -> Iterator[str]:
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
def tabjob(api_url, new_tenant):
    """Runs `tabjob ARGS --json` as a fresh tenant; returns the parsed output (exit 0 required)."""
    _, key = new_tenant()
    runner = CliRunner()

    def run(*args: str, expect: int = 0):
        result = runner.invoke(app, [*args, "--url", api_url, "--api-key", key, "--json"], catch_exceptions=True)
        assert result.exit_code == expect, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        return json.loads(result.stdout) if result.stdout.strip() and expect == 0 else result

    return run


def test_weekly_retraining_from_the_cli(tabjob, small_worker, tmp_path):
    sets = quality_sets(tmp_path, rows=400)
    assert tabjob("upload", str(sets["holdout"]), "--name", "holdout")["version"] == 1
    assert tabjob("upload", str(sets["fair"]), "--name", "sales")["version"] == 1
    fit = ["registry", "fit", "sales@latest", "churn", "--evaluate-on", "holdout@latest", "--promote", "champion",
           "-p", "max_iter=20", "--wait"]  # fmt: skip
    first = tabjob(*fit)
    assert first["result"]["registry"]["version"] == 1 and first["result"]["registry"]["promoted"]
    assert tabjob("upload", str(sets["good"]), "--name", "sales")["version"] == 2
    second = tabjob(*fit)
    assert second["dataset_ref"] == "sales@latest" and second["result"]["registry"]["promoted"], second["result"]

    assert tabjob("registry")["items"][0] == {"name": "churn", "latest_version": 2, "aliases": {"champion": 2}}
    shown = tabjob("registry", "show", "churn")
    assert [v["model_id"] for v in shown["versions"]] == [first["id"], second["id"]]

    scoring = tabjob("upload", str(sets["unlabelled"]), "--name", "scoring")["id"]
    predict = tabjob("predict", scoring, "churn@champion", "--wait")
    assert predict["model_id"] == second["id"] and predict["status"] == "finished"

    moved = tabjob("registry", "promote", "churn", "1", "--alias", "champion", "--reason", "rollback drill")
    assert (moved["version"], moved["from"], moved["reason"]) == (1, 2, "rollback drill")
    history = tabjob("registry", "history", "churn")["items"]
    assert [(m["from"], m["version"]) for m in history] == [(None, 1), (1, 2), (2, 1)]

    created = tabjob("schedules", "create", "0 6 * * 1", "--timezone", "Europe/Paris", "--fit", "sales@latest",
                     "--register-as", "churn", "--evaluate-on", "holdout@latest", "--promote", "champion")  # fmt: skip
    assert created["job"]["promote"] == {"alias": "champion", "metric": "accuracy", "min_delta": 0.0}
    assert [s["id"] for s in tabjob("schedules")["items"]] == [created["id"]]
    assert tabjob("schedules", "pause", created["id"])["paused"] is True
    assert tabjob("schedules", "resume", created["id"])["next_run_at"] == created["next_run_at"]
    assert tabjob("schedules", "show", created["id"])["runs"] == []
    assert tabjob("schedules", "delete", created["id"])["deleted"] is True
    missing = tabjob("registry", "show", "nothing", expect=2)
    assert "registry.not_found" in missing.stdout + missing.stderr
