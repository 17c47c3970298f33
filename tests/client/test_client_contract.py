"""The client's types say everything the API sends: every property of the OpenAPI document's
public schemas has a field on the matching ``tabjob`` type. A field the server adds fails here
until the client types it (issue 26: ``Job.model``, ``Job.steps``, ``JobEvent.step`` and
``Model.family`` were missing)."""

from __future__ import annotations

import dataclasses

import pytest

import tabjob
from app.api.main import create_app
from app.core.settings import Settings

# The API's answer schemas and the client type that reads each one.
TYPED = {
    "ColumnPublic": tabjob.Column,
    "DatasetPublic": tabjob.Dataset,
    "ErrorBody": tabjob.ErrorInfo,
    "EventPublic": tabjob.JobEvent,
    "EventsPublic": tabjob.EventPage,
    "JobPublic": tabjob.Job,
    "QueueInfo": tabjob.QueueInfo,
    "StepPublic": tabjob.Step,
    "WebhookPublic": tabjob.Webhook,
    "EstimatePublic": tabjob.Estimate,
    "ExpectedStartPublic": tabjob.ExpectedStart,
    "LogLinePublic": tabjob.LogLine,
    "LogsPublic": tabjob.LogPage,
    "ModelPublic": tabjob.Model,
    "ValidationPublic": tabjob.Validation,
    "EvaluationPublic": tabjob.Evaluation,
    "ModelExportPublic": tabjob.ModelExport,
    "DatasetsPublic": tabjob.Page,
    "JobsPublic": tabjob.Page,
    "ModelsPublic": tabjob.Page,
}
# Schemas the client reads without a type of its own, and why.
UNTYPED = {
    "DatasetCreated": "a DatasetPublic plus the upload form, which upload() consumes (kept in Dataset.raw)",
    "DownloadPublic": "result_url() returns (url, expires_at)",
    "UploadForm": "consumed by upload(); kept in Dataset.raw['upload_form']",
    "FeaturePublic": "Model.features keeps each feature as the API's dict (name, kind, categories)",
    "ModelSchemaPublic": "part of ModelExport.schema, kept as the API's dict",
    "ErrorEnvelope": "read into ApiError (code, message, hint, retryable), the fields of ErrorBody",
    "HealthStatus": "ready() answers a bool",
    "HistoryItem": "the dashboard's answer (/v1/history); the client reads jobs with job(), jobs(), events()",
    "HistoryPage": "the dashboard's answer (/v1/history)",
    "JobRecord": "the dashboard's page per job (/v1/history/{id})",
}
# The registry's, schedules' and usage answers: the client's methods return them as the API's JSON
# (docs/registry.md, docs/api.md show each shape).
UNTYPED |= {
    name: "returned as the API's dict by tabjob.Client's registry, schedule and usage methods"
    for name in (
        "AliasHistoryPublic", "AliasMove", "AliasMovePublic", "NoticePublic", "NoticesPublic", "PromoteRule",
        "RegistryModelPublic", "RegistryNamePublic", "RegistryNamesPublic", "RegistryVersionPublic",
        "SchedulePublic", "ScheduleRunPublic", "SchedulesPublic", "QuotaUse", "UsagePublic",
    )
}  # fmt: skip


def is_answer(name: str) -> bool:
    """Public answers of /v1 (requests, parameters and the deprecated legacy routes are not read)."""
    return not name.startswith("Legacy") and not name.endswith(("Create", "Params")) and name != "JobStatus"


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict]:
    # The document needs no running service: the settings only have to be valid.
    settings = Settings(
        redis_url="redis://127.0.0.1:1/0", s3_endpoint="http://127.0.0.1:1", s3_access_key="k", s3_secret_key="s"
    )  # type: ignore[call-arg]
    return create_app(settings).openapi()["components"]["schemas"]


def test_every_public_answer_schema_has_a_client_type_or_a_reason(schemas):
    answers = {name for name in schemas if is_answer(name)}
    assert sorted(answers - set(TYPED) - set(UNTYPED)) == []


@pytest.mark.parametrize("name", sorted(TYPED))
def test_every_property_has_a_field_on_the_client_type(schemas, name):
    fields = {f.name for f in dataclasses.fields(TYPED[name])}
    properties = set(schemas[name].get("properties", {}))
    assert sorted(properties - fields) == [], f"{TYPED[name].__name__} lacks fields the API sends in {name}"


def test_the_event_page_is_iterable_as_the_docs_say():
    when = "2026-01-01T00:00:00+00:00"
    page = tabjob.EventPage([tabjob.JobEvent.from_api({"seq": 1, "at": when, "type": "queued", "step": "model"})], 1)
    assert [event.step for event in page] == ["model"] and len(page) == 1
