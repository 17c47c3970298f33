"""``Client.logs()`` and ``tabjob logs JOB [-f]`` read a job's log from the service (a real API
server process, the real broker, store and a real worker), not from a local stack's files."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import tabjob
from tabjob.cli.main import app


def test_logs_pages_and_follows_a_jobs_lines_and_the_cli_prints_them(live_api, small_worker, seed_files, new_tenant):
    _, key = new_tenant()
    with tabjob.Client(live_api, key) as client:
        # Given a fit that ran on a real worker
        job = client.wait(client.fit(client.upload(seed_files["train"]).id, params={"max_iter": 5}).id)

        # When its log is followed: the stream ends by itself, the job having ended
        followed = list(client.logs(job.id, follow=True))
        # Then it holds the worker's and the job process's lines, as the pages do
        assert followed and all(isinstance(line, tabjob.LogLine) for line in followed)
        assert {line.source for line in followed} == {"worker", "job"}
        assert any("job started" in line.message for line in followed)
        assert [line.cursor for line in client.logs(job.id)] == [line.cursor for line in followed]
        page = client.log_page(job.id, limit=3)
        assert len(page) == 3 and page.complete is False and page.next_since == followed[2].cursor
        rest = list(client.logs(job.id, since=page.next_since))
        assert [line.message for line in rest] == [line.message for line in followed[3:]]
        assert client.log_page(job.id, since=followed[-1].cursor).complete is True

    # And the CLI prints them, followed or as JSON lines
    runner = CliRunner()
    shown = runner.invoke(app, ["logs", job.id, "-f", "--url", live_api, "--api-key", key])
    assert shown.exit_code == 0, shown.output
    assert "job started" in shown.output and "fit#1" in shown.output
    as_json = runner.invoke(app, ["logs", job.id, "--json", "--url", live_api, "--api-key", key])
    assert [json.loads(line)["cursor"] for line in as_json.output.splitlines()] == [line.cursor for line in followed]
    other = runner.invoke(app, ["logs", "ds_" + "0" * 20, "--url", live_api, "--api-key", key])
    assert other.exit_code != 0 and "job id" in other.output


def test_another_tenants_job_log_is_not_found(live_api, small_worker, seed_files, new_tenant):
    _, key = new_tenant()
    _, other_key = new_tenant()
    with tabjob.Client(live_api, key) as client:
        job = client.wait(client.fit(client.upload(seed_files["train"]).id, params={"max_iter": 5}).id)
    with tabjob.Client(live_api, other_key) as stranger:
        for follow in (False, True):
            try:
                list(stranger.logs(job.id, follow=follow))
            except tabjob.ApiError as exc:
                assert exc.status == 404 and exc.code == "job.not_found"
            else:
                raise AssertionError("another tenant read the log")
