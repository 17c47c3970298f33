"""The small pieces behind the metrics and logs, without services: label bounding, the JSON log
line and its context, and how ``tabjob logs`` picks and orders one job's lines."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from app.core.domain import Job, JobStatus
from app.core.logging_setup import JsonFormatter, log_context
from app.observability import exposition
from app.observability.metrics import DEFAULT_MODEL, bounded, model_of
from tabjob.cli.logs import job_lines


def test_label_values_are_bounded():
    assert bounded("small") == "small" and bounded("job.timeout") == "job.timeout"
    assert bounded(None) == "unknown" and bounded("", "x") == "x"
    assert bounded("a tenant's free text") == "other"
    assert bounded("x" * 49) == "other"


def test_model_family_defaults_to_the_seed_model():
    def job(**fields: object) -> Job:
        return Job(id="job_1", tenant="t", kind="fit", lane="small", status=JobStatus.FINISHED, **fields)

    assert model_of(job()) == DEFAULT_MODEL == "hgb"
    assert model_of(job(model="xgboost")) == "xgboost"
    assert model_of(job(model="Robert'); DROP")) == "other"


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("tabjob.worker", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_context_and_per_call_fields():
    formatter = JsonFormatter("worker-small")
    with log_context(job_id="job_1", tenant="acme", lane="small", step="fit", ignored=None):
        line = json.loads(formatter.format(_record("started")))
        override = json.loads(formatter.format(_record("other job", job_id="job_2")))
    outside = json.loads(formatter.format(_record("idle")))
    assert line["job_id"] == "job_1" and line["tenant"] == "acme" and line["step"] == "fit"
    assert line["process"] == "worker-small" and line["level"] == "info" and line["ts"].endswith("Z")
    assert "ignored" not in line
    assert override["job_id"] == "job_2" and override["tenant"] == "acme"
    assert "job_id" not in outside


def test_json_lines_keep_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exc"]


def test_job_lines_merge_files_in_time_order_and_keep_plain_lines_naming_the_job(tmp_path: Path):
    def line(ts: str, job: str, msg: str) -> str:
        return json.dumps({"ts": ts, "level": "info", "msg": msg, "job_id": job})

    (tmp_path / "api.log").write_text(
        "\n".join([line("2026-12-01T08:00:01.000Z", "job_a", "queued"), line("2026-12-01T08:00:02.000Z", "job_b", "x")])
    )
    (tmp_path / "worker-small.log").write_text(
        "\n".join(
            [
                line("2026-12-01T08:00:03.000Z", "job_a", "started"),
                "Traceback naming job_a, printed by a library",
                "{not json but names job_a",
                line("2026-12-01T08:00:00.500Z", "job_b", "y"),
            ]
        )
    )
    (tmp_path / "notes.txt").write_text("job_a")  # not a log file
    found = job_lines(tmp_path, "job_a")
    assert [e["msg"] for e in found] == [
        "queued",
        "started",
        "Traceback naming job_a, printed by a library",
        "{not json but names job_a",
    ]
    assert [e["process"] for e in found] == ["api", "worker-small", "worker-small", "worker-small"]


class _Lanes:
    def collect(self):
        family = GaugeMetricFamily("tabjob_test_lanes", "test", labels=["lane"])
        family.add_metric(["small"], 3)
        yield family


def test_exposition_appends_collectors_to_the_process_metrics():
    body, content_type = exposition.render(_Lanes())
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert content_type.startswith("text/plain")
    assert families["tabjob_test_lanes"].samples[0].value == 3
    assert "tabjob_jobs" in families and "tabjob_http_request_duration_seconds" in families
