"""The registry and named datasets on the real broker and store, without workers: versions under
concurrency, references, promotion decisions, and the alias lock."""

from __future__ import annotations

import itertools
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from jobs_testing import put_file, upload
from registry_testing import quality_sets, upload_named

from app.core.domain import Job, JobStatus
from app.core.errors import Conflict, NotFound, UserError
from app.core.storage import dataset_key
from app.jobs import registration
from app.jobs.registration import decide, register_fit
from app.usecases.datasets import create_dataset
from app.usecases.registry import resolve_dataset, resolve_model
from app.usecases.services import Services


@pytest.fixture(scope="module")
def svc(settings):
    return Services.from_settings(settings)


@pytest.fixture
def tenant():
    return "t-" + secrets.token_hex(5)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    return quality_sets(tmp_path_factory.mktemp("quality"), rows=300)


def test_concurrent_registrations_lose_no_version_and_double_none(svc, tenant):
    # Given: 200 fits finishing on 8 threads, and each of them redelivered once
    jobs = [f"job_{i:04d}" for i in range(200)]

    def register(job_id: str) -> tuple[str, int]:
        version, _ = svc.state.registry.register(tenant, "churn", job_id, {"model_id": job_id})
        again, new = svc.state.registry.register(tenant, "churn", job_id, {"model_id": job_id, "attempt": 2})
        assert again == version and new is False  # a redelivered fit gets its version back
        return job_id, version

    with ThreadPoolExecutor(8) as pool:
        taken = dict(pool.map(register, jobs))
    # Then: versions 1..200, one per fit, each recorded with its own model
    assert sorted(taken.values()) == list(range(1, 201))
    versions = svc.state.registry.versions(tenant, "churn")
    assert [v["version"] for v in versions] == list(range(1, 201))
    by_version = {n: j for j, n in taken.items()}
    assert all(v["model_id"] == by_version[v["version"]] and v["attempt"] == 2 for v in versions)


def fake_fit(svc, tenant: str, job_id: str, score: float) -> tuple[SimpleNamespace, Job]:
    """A worker context and a finished registered fit whose evaluation scores ``score``."""
    register = {"name": "churn", "evaluate_on": "ds_eval", "promote": {"alias": "champion", "metric": "accuracy"},
                "by": "key:test"}  # fmt: skip
    job = Job(id=job_id, tenant=tenant, kind="fit", lane="small", status=JobStatus.STARTED, register=register)
    ctx = SimpleNamespace(state=svc.state, settings=svc.settings, store=svc.store)
    return ctx, job


def test_concurrent_promotions_leave_the_best_as_champion_with_a_true_history(svc, tenant, monkeypatch):
    # Given: ten fits finishing at once, each scoring differently on the same evaluation data
    scores = {f"job_{i}": s for i, s in enumerate([0.71, 0.93, 0.65, 0.88, 0.97, 0.80, 0.91, 0.60, 0.95, 0.77])}
    scored: dict[str, float] = {}

    def score(ctx, job, model_job_id, sha256, time_limit_s):
        scored[model_job_id] = scores[model_job_id]
        return {"accuracy": scores[model_job_id]}

    monkeypatch.setattr(registration, "_score", score)
    start = threading.Barrier(10)

    def finish(job_id: str) -> dict:
        ctx, job = fake_fit(svc, tenant, job_id, scores[job_id])
        start.wait()
        return register_fit(ctx, job, {"model_sha256": "0" * 64}, 60)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(finish, scores))
    # Then: the best fit holds the alias, and every move beat the version it replaced
    champion = svc.state.registry.alias(tenant, "churn", "champion")
    best = max(results, key=lambda r: r["metrics"]["accuracy"])
    assert champion == best["version"] and best["promoted"] is True
    history = svc.state.registry.history(tenant, "churn", "champion")
    assert history[0]["from"] is None
    for before, move in itertools.pairwise(history):
        assert move["from"] == before["version"]  # no move was decided against a stale champion
        assert move["compared"]["new"] > move["compared"]["old"]
    assert sum(r["promoted"] for r in results) == len(history)


@pytest.mark.parametrize(
    ("metric", "new", "old", "min_delta", "promoted", "word"),
    [
        ("accuracy", 0.90, 0.80, 0.0, True, "better"),
        ("accuracy", 0.80, 0.90, 0.0, False, "worse"),
        ("accuracy", 0.85, 0.85, 0.0, False, "equal"),
        ("accuracy", 0.86, 0.85, 0.05, False, "less than min_delta"),
        ("accuracy", 0.90, 0.85, 0.05, True, "better"),
        ("log_loss", 0.20, 0.30, 0.0, True, "better"),  # lower is better
        ("log_loss", 0.30, 0.20, 0.0, False, "worse"),
        ("rmse", 1.0, 1.0, 0.0, False, "equal"),
        ("roc_auc", None, 0.9, 0.0, False, "could not be measured"),
    ],
)
def test_a_promotion_needs_a_gain_in_the_metrics_direction_of_at_least_min_delta(
    metric, new, old, min_delta, promoted, word
):
    decided, reason = decide(metric, new, old, min_delta, version=3, current=2)
    assert decided is promoted and word in reason


def test_name_at_latest_racing_an_upload_only_ever_resolves_to_a_ready_version(svc, tenant, sets):
    # Given: version 1 uploaded, then versions 2..6 created and uploaded one by one meanwhile
    first, url, *_ = create_dataset(svc, tenant, "sales")
    put_file(url, sets["good"])
    pending = [create_dataset(svc, tenant, "sales") for _ in range(5)]
    assert [d.version for d, *_ in pending] == [2, 3, 4, 5, 6]
    done = threading.Event()
    seen: list[str] = []
    uploaded = {first.id}

    def uploads() -> None:
        for dataset, put_url, *_ in pending:
            uploaded.add(dataset.id)  # before its bytes land: a resolver may see them at once
            put_file(put_url, sets["fair"])
        done.set()

    # When: sales@latest is resolved again and again while the uploads land
    writer = threading.Thread(target=uploads)
    writer.start()
    while not done.is_set():
        resolved, ref = resolve_dataset(svc, tenant, "sales@latest")
        seen.append(resolved)
        # Then: never a version still awaiting its bytes
        assert resolved in uploaded and ref == "sales@latest"
        assert svc.store.stat(dataset_key(tenant, resolved)) is not None
    writer.join()
    assert seen
    assert resolve_dataset(svc, tenant, "sales@latest")[0] == pending[-1][0].id
    assert resolve_dataset(svc, tenant, "sales@3") == (pending[1][0].id, "sales@3")


def test_name_at_latest_passes_over_an_invalid_upload(svc, tenant, sets, tmp_path):
    good, url, *_ = create_dataset(svc, tenant, "sales")
    put_file(url, sets["good"])
    broken, url, *_ = create_dataset(svc, tenant, "sales")
    (tmp_path / "x.parquet").write_text("not parquet")
    put_file(url, tmp_path / "x.parquet")
    assert resolve_dataset(svc, tenant, "sales@latest")[0] == good.id
    assert resolve_dataset(svc, tenant, "sales@2")[0] == broken.id  # a number names it, ready or not


@pytest.mark.parametrize(
    ("text", "error", "code"),
    [
        ("sales@0", UserError, "reference.invalid"),
        ("sales@", UserError, "reference.invalid"),
        ("sales@champion", UserError, "reference.invalid"),  # datasets have no aliases
        ("@latest", UserError, "name.invalid"),
        ("nothing@latest", NotFound, "dataset.name_not_found"),
        ("pending@latest", Conflict, "dataset.no_ready_version"),
        ("pending@9", NotFound, "dataset.version_not_found"),
    ],
)
def test_dataset_references_that_name_nothing_are_refused_naming_why(svc, tenant, text, error, code):
    create_dataset(svc, tenant, "pending")
    with pytest.raises(error) as raised:
        resolve_dataset(svc, tenant, text)
    assert raised.value.code == code


def test_model_references_resolve_versions_latest_and_aliases(svc, tenant):
    for job_id in ("job_a", "job_b"):
        svc.state.registry.register(tenant, "churn", job_id, {"model_id": job_id})
    svc.state.registry.move_alias(tenant, "churn", "champion", 1, {"by": "test"})
    assert resolve_model(svc, tenant, "churn@champion") == ("job_a", "churn@champion")
    assert resolve_model(svc, tenant, "churn@latest") == ("job_b", "churn@latest")
    assert resolve_model(svc, tenant, "churn@2") == ("job_b", "churn@2")
    assert resolve_model(svc, tenant, "job_plain") == ("job_plain", None)
    for text, code in (("churn@staging", "registry.alias_not_found"), ("churn@7", "registry.version_not_found"),
                       ("other@champion", "registry.not_found")):  # fmt: skip
        with pytest.raises(NotFound) as raised:
            resolve_model(svc, tenant, text)
        assert raised.value.code == code


def test_the_api_refuses_registrations_that_cannot_be_decided(api, sets):
    upload_named(api, sets["good"], "sales")
    upload_named(api, sets["holdout"], "holdout")
    base = {"kind": "fit", "dataset_id": "sales@latest", "register_as": "churn"}
    cases = [
        ({"promote": {"alias": "champion", "metric": "accuracy"}}, "registry.evaluate_on_required"),
        ({"evaluate_on": "holdout@1", "promote": {"alias": "champion", "metric": "auc"}}, "registry.unknown_metric"),
        ({"evaluate_on": "holdout@1", "promote": {"alias": "latest", "metric": "f1"}}, "registry.invalid_alias"),
        ({"register_as": "bad name!"}, "name.invalid"),
        ({"promote": {"alias": "champion", "metric": "f1"}, "register_as": None}, "registry.register_as_required"),
    ]  # fmt: skip
    for extra, code in cases:
        refused = api.post("/v1/jobs", json={**base, **extra})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == code, (extra, refused.text)
    no_columns = upload(api, sets["unlabelled"])
    refused = api.post("/v1/jobs", json={**base, "evaluate_on": no_columns})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "job.evaluate_on_missing_target"
