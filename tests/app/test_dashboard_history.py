"""Job history everywhere (issue 26): `/v1/history` lists recent jobs of every status, filtered
and paged (every tenant's for an admin), `/v1/history/{id}` shows one in full, and the dashboard
shows both in a real browser (headless Chromium) against a real API, broker, store and workers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from browser_testing import dump_dom, screenshot
from jobs_testing import put_file, upload, wait_for, wait_job

from app.core.auth import ApiKeys
from app.jobs.broker import redis_client
from app.local.spawn import ROOT
from app.state import State
from app.tenancy import quotas

# Early stopping holds rows out, so the finished fit has a validation score to show.
PARAMS = {"max_iter": 7, "early_stopping": True}


@pytest.fixture(scope="module")
def scene(live_api, settings, seed_files, module_workers) -> Iterator[dict[str, Any]]:
    """Tenant A has a finished fit, a failed one (its dataset replaced after submission), a canceled
    one and a queued one (gpu lane, no gpu worker); B has nothing; ops is an admin."""
    keys = ApiKeys(client=redis_client(settings, decode=True))
    tenants = {name: "t-" + secrets.token_hex(5) for name in ("a", "b", "ops")}
    tokens = {name: keys.create(tenant, "history test", admin=name == "ops")[0] for name, tenant in tenants.items()}
    # Tenant A parks GPU-family jobs on the gpu lane: it needs the grant (app/tenancy/quotas.py).
    quotas.set_policy(State(client=redis_client(settings, decode=True), retention_s=60), tenants["a"], gpu=True)
    a = httpx.Client(base_url=live_api, headers={"authorization": f"Bearer {tokens['a']}"}, timeout=30)
    module_workers.start("small")
    train = upload(a, seed_files["train"])
    finished = a.post("/v1/jobs", json={"kind": "fit", "dataset_id": train, "lane": "small", "params": PARAMS})
    jobs = {"finished": wait_job(a, finished.json()["id"])}
    # Failed: other bytes (no `y`) replace the dataset after submission; the worker refuses them.
    swapped = a.post("/v1/datasets", json={"name": "swap"}).json()
    put_file(swapped["upload_url"], seed_files["train"])
    failing = a.post("/v1/jobs", json={"kind": "fit", "dataset_id": swapped["id"], "lane": "large"})
    assert failing.status_code == 202, failing.text
    failing = failing.json()
    put_file(swapped["upload_url"], seed_files["train_without_y"])
    module_workers.start("large")
    jobs["failed"] = wait_job(a, failing["id"])
    # A GPU family (hgb never runs there): prepared on the small lane, then waiting on the gpu
    # lane, where no worker runs.
    gpu_fit = {"kind": "fit", "dataset_id": train, "model": "xgboost"}

    def on_gpu_lane() -> dict[str, Any]:
        submitted = a.post("/v1/jobs", json=gpu_fit)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        return wait_for(lambda: (job := a.get(f"/v1/jobs/{job_id}").json())["lane"] == "gpu" and job, 120, 0.2)

    canceled = on_gpu_lane()
    a.post(f"/v1/jobs/{canceled['id']}/cancel")
    jobs["canceled"] = wait_job(a, canceled["id"])
    jobs["queued"] = on_gpu_lane()
    try:
        yield {"url": live_api, "tenants": tenants, "tokens": tokens, "jobs": jobs}
    finally:
        a.post(f"/v1/jobs/{jobs['queued']['id']}/cancel")  # no later test's gpu worker inherits it
        a.close()


def history(scene: dict[str, Any], who: str, **params: Any) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {scene['tokens'][who]}"}
    response = httpx.get(f"{scene['url']}/v1/history", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def record(scene: dict[str, Any], who: str, job_id: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {scene['tokens'][who]}"}
    return httpx.get(f"{scene['url']}/v1/history/{job_id}", headers=headers)


def test_the_scene_has_a_job_of_every_status(scene):
    assert {status: job["status"] for status, job in scene["jobs"].items()} == {
        "finished": "finished", "failed": "failed", "canceled": "canceled", "queued": "queued",
    }  # fmt: skip
    assert scene["jobs"]["failed"]["error"]["code"] == "dataset.changed"


def test_history_lists_every_status_newest_first_and_filters(scene):
    jobs = scene["jobs"]
    listed = history(scene, "a")["items"]
    order = ["queued", "canceled", "failed", "finished"]  # submission order, newest first
    assert [j["id"] for j in listed] == [jobs[s]["id"] for s in order], [(j["id"], j["status"]) for j in listed]
    assert {j["tenant"] for j in listed} == {scene["tenants"]["a"]}
    assert [j["id"] for j in history(scene, "a", status="failed")["items"]] == [jobs["failed"]["id"]]
    assert [j["id"] for j in history(scene, "a", lane="gpu")["items"]] == [jobs["queued"]["id"], jobs["canceled"]["id"]]
    assert len(history(scene, "a", model="hgb", kind="fit")["items"]) == 2  # the gpu-lane ones are xgboost
    assert len(history(scene, "a", model="xgboost", kind="fit")["items"]) == 2
    assert history(scene, "a", kind="predict")["items"] == []


def test_history_pages_without_gaps_or_repeats(scene):
    first = history(scene, "a", limit=3)
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = history(scene, "a", limit=3, cursor=first["next_cursor"])
    assert [j["id"] for j in first["items"] + second["items"]] == [j["id"] for j in history(scene, "a")["items"]]
    assert second["next_cursor"] is None


def test_a_tenant_sees_only_its_jobs_and_an_admin_sees_everyones(scene):
    ids = {job["id"] for job in scene["jobs"].values()}
    assert history(scene, "b")["items"] == []
    assert history(scene, "b", tenant=scene["tenants"]["a"])["items"] == []  # the filter is for admins
    assert record(scene, "b", scene["jobs"]["failed"]["id"]).status_code == 404
    assert {j["id"] for j in history(scene, "ops", tenant=scene["tenants"]["a"])["items"]} == ids
    assert ids <= {j["id"] for j in history(scene, "ops", limit=200)["items"]}
    assert record(scene, "ops", scene["jobs"]["failed"]["id"]).json()["job"]["tenant"] == scene["tenants"]["a"]


def test_a_jobs_record_has_its_error_hint_events_timings_and_links(scene):
    failed = record(scene, "a", scene["jobs"]["failed"]["id"]).json()
    assert failed["job"]["error"]["code"] == "dataset.changed" and failed["job"]["error"]["hint"]
    assert failed["events"][0]["type"] == "queued" and failed["events"][-1]["type"] == "failed"
    assert failed["links"] == {"dataset": f"/v1/datasets/{failed['job']['dataset_id']}"}
    finished = record(scene, "a", scene["jobs"]["finished"]["id"]).json()
    assert finished["links"]["model"] == f"/v1/models/{finished['job']['id']}"
    assert finished["job"]["params"] == PARAMS and finished["job"]["result"]["validation"]
    assert finished["timings"]["ran_s"] > 0 and finished["timings"]["waited_s"] >= 0


def test_the_dashboard_lists_the_history_in_chromium(scene, tmp_path):
    dom = dump_dom(f"{scene['url']}/dashboard#key={scene['tokens']['a']}", tmp_path)
    for status, job in scene["jobs"].items():
        assert f'data-history-id="{job["id"]}" data-status="{status}"' in dom, dom[-4000:]
    assert f'href="/dashboard/job?id={scene["jobs"]["failed"]["id"]}"' in dom
    if os.environ.get("TABJOB_WRITE_SCREENSHOTS"):  # refresh the docs' picture: `TABJOB_WRITE_SCREENSHOTS=1 pytest ...`
        url = f"{scene['url']}/dashboard#key={scene['tokens']['a']}"
        screenshot(url, tmp_path / "shot", ROOT / "docs/images/dashboard-history.png", size="1400,1300")
    only_failed = dump_dom(f"{scene['url']}/dashboard?status=failed#key={scene['tokens']['a']}", tmp_path / "f")
    table = only_failed.split('id="history"', 1)[1].split("</table>", 1)[0]  # the Models table lists fits too
    assert scene["jobs"]["failed"]["id"] in table and scene["jobs"]["finished"]["id"] not in table


def test_the_job_page_shows_the_error_hint_events_parameters_and_links_in_chromium(scene, tmp_path):
    failed = scene["jobs"]["failed"]
    dom = dump_dom(f"{scene['url']}/dashboard/job?id={failed['id']}#key={scene['tokens']['a']}", tmp_path)
    assert "dataset.changed" in dom and "What to do: " + failed["error"]["hint"] in dom
    assert f'href="/v1/datasets/{failed["dataset_id"]}"' in dom and "no events" not in dom
    finished = scene["jobs"]["finished"]
    page = dump_dom(f"{scene['url']}/dashboard/job?id={finished['id']}#key={scene['tokens']['a']}", tmp_path / "f")
    assert f'href="/v1/models/{finished["id"]}"' in page and "<dt>max_iter</dt><dd>7</dd>" in page
    assert "<dt>ran</dt>" in page and "<dt>accuracy</dt>" in page


def test_a_queued_jobs_record_says_why_it_has_no_expected_start_and_an_admin_reads_any_jobs_log(scene):
    queued = record(scene, "a", scene["jobs"]["queued"]["id"]).json()["job"]
    expected = queued["expected_start"]
    assert (
        expected["at"] is None
        and expected["workers"] == 0
        and "No worker is running on the gpu lane" in (expected["reason"])
    )
    assert record(scene, "a", scene["jobs"]["finished"]["id"]).json()["job"]["expected_start"] is None
    finished = scene["jobs"]["finished"]["id"]
    for who in ("a", "ops"):  # its tenant, and an admin of another
        headers = {"authorization": f"Bearer {scene['tokens'][who]}"}
        page = httpx.get(f"{scene['url']}/v1/history/{finished}/logs", headers=headers).json()
        assert any("job started" in line["message"] for line in page["items"]) and page["complete"]
    stranger = {"authorization": f"Bearer {scene['tokens']['b']}"}
    assert httpx.get(f"{scene['url']}/v1/history/{finished}/logs", headers=stranger).status_code == 404


def test_the_job_page_shows_its_log_lines_and_a_queued_jobs_expected_start_in_chromium(scene, tmp_path):
    finished = scene["jobs"]["finished"]
    page = dump_dom(f"{scene['url']}/dashboard/job?id={finished['id']}#key={scene['tokens']['a']}", tmp_path)
    log = page.split('id="log"', 1)[1].split("</table>", 1)[0]
    assert "job started" in log and "<td>worker</td>" in log and "<td>job</td>" in log
    queued = scene["jobs"]["queued"]
    page = dump_dom(f"{scene['url']}/dashboard/job?id={queued['id']}#key={scene['tokens']['a']}", tmp_path / "q")
    assert "<dt>expected start</dt><dd>No worker is running on the gpu lane" in page
