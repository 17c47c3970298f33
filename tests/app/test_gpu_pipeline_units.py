"""What the service repeats of ``ml`` stays in step with it (the API cannot import ``ml.families``),
and the steps of a two-step job move as documented."""

from __future__ import annotations

import pytest

from app.core.domain import Job, JobStatus
from app.core.storage import ObjectInfo
from app.usecases.families import FAMILIES, check_params, choose_family
from app.usecases.prepared import PREPARED_FORMAT_VERSION, cache_key, content_digest
from app.usecases.steps import advanced, closed, current, plan, shown, spent_s, started


def test_the_services_family_table_matches_ml():
    from ml.families import DEFAULT_FAMILY
    from ml.families import FAMILIES as ML_FAMILIES

    assert set(FAMILIES) == set(ML_FAMILIES)
    assert choose_family("fit", None).name == DEFAULT_FAMILY
    for name, family in FAMILIES.items():
        assert family.params == set(ML_FAMILIES[name].tunable_params), name
        # a family whose model can use a GPU runs its model as a step on the gpu lane
        assert family.two_steps == ML_FAMILIES[name].uses_gpu, name


def test_the_api_schemas_take_each_familys_parameters():
    from app.api.schemas import PARAMS_BY_MODEL, JobCreate, ModelName
    from ml.families import FAMILIES as ML_FAMILIES

    assert set(PARAMS_BY_MODEL) == set(ML_FAMILIES) == set(ModelName.__args__)
    for name, schema in PARAMS_BY_MODEL.items():
        assert set(schema.model_fields) == set(ML_FAMILIES[name].tunable_params), name
    body = JobCreate.model_validate({"kind": "fit", "dataset_id": "ds_1", "model": "xgboost",
                                     "params": {"n_estimators": 7}})  # fmt: skip
    assert body.params.chosen() == {"n_estimators": 7}
    with pytest.raises(ValueError, match="n_estimators"):
        JobCreate.model_validate({"kind": "fit", "dataset_id": "ds_1", "params": {"n_estimators": 7}})


def test_a_predict_uses_its_models_family_and_parameters_are_checked():
    assert choose_family("predict", None, "xgboost").name == "xgboost"
    with pytest.raises(Exception, match="a predict uses its model's family"):
        choose_family("predict", "hgb", "xgboost")
    with pytest.raises(Exception, match="max_iter"):
        check_params(FAMILIES["xgboost"], {"max_iter": 3})


@pytest.mark.parametrize("features", [None, {"columns": {"b": "number", "a": "category"}, "categories": {"a": ["x"]}}])
def test_the_cache_key_is_mls_recipe(features):
    from ml.prepared import PREPARED_FORMAT_VERSION as ML_VERSION
    from ml.prepared import prepared_cache_key

    assert PREPARED_FORMAT_VERSION == ML_VERSION
    digest = content_digest(ObjectInfo(size=10, etag='"abc"'))
    kind = "fit" if features is None else "predict"
    assert cache_key(digest, kind=kind, feature_schema=features) == prepared_cache_key(
        digest, kind=kind, feature_schema=features
    )
    # another size or ETag is another content
    assert content_digest(ObjectInfo(size=11, etag='"abc"')) != digest != content_digest(ObjectInfo(10, "abd"))


def test_steps_move_from_prepare_to_model_and_close_with_the_job():
    steps = plan("small", prepared=False)
    assert [(s["name"], s["lane"], s["status"]) for s in steps] == [("prepare", "small", "queued"),
                                                                   ("model", "gpu", "pending")]  # fmt: skip
    steps = started(steps, "prepare")
    assert current(steps)["status"] == "started" and steps[0]["attempts"] == 1
    steps = advanced(steps, "prepare", "cpu")
    assert [s["status"] for s in steps] == ["finished", "queued"] and current(steps)["name"] == "model"
    steps = started(steps, "model")
    assert [s["status"] for s in closed(steps, JobStatus.FINISHED, "cuda")] == ["finished", "finished"]
    assert closed(steps, JobStatus.FINISHED, "cuda")[1]["device"] == "cuda"
    assert [s["status"] for s in closed(plan("small", prepared=False), JobStatus.CANCELED)] == ["canceled"] * 2

    job = Job(id="job_1", tenant="t", kind="fit", lane="gpu", status=JobStatus.QUEUED, steps=steps)
    assert [s["status"] for s in shown(job)] == ["finished", "queued"]  # its worker was lost: it waits again
    assert spent_s(job) >= 0
    cached = plan("large", prepared=True)
    assert [s["status"] for s in cached] == ["skipped", "queued"] and current(cached)["name"] == "model"


def test_the_time_limit_counts_every_step(settings):
    from types import SimpleNamespace

    from app.core.errors import JobTimeout
    from app.jobs.stepping import _time_left

    steps = advanced(started(plan("small", prepared=False), "prepare"), "prepare", "cpu")
    steps[0]["started_at"], steps[0]["ended_at"] = 1000.0, 1040.0  # prepare ran 40 s
    job = Job(id="job_1", tenant="t", kind="fit", lane="gpu", status=JobStatus.STARTED, steps=steps, time_limit_s=100)
    ctx = SimpleNamespace(settings=settings)
    assert spent_s(job) == 40
    assert _time_left(ctx, job) == min(60, settings.time_limit_s("gpu"))
    job.time_limit_s = 40
    with pytest.raises(JobTimeout):
        _time_left(ctx, job)
