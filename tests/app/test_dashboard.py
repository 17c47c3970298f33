"""The dashboard page in a real browser (headless Chromium) against a real API on the real
broker and store, and the overview behind it: a tenant sees its own jobs, an admin key all."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_testing import dump_dom
from jobs_testing import upload

from app.core.auth import ApiKeys
from app.jobs.broker import redis_client

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Virtual time the page gets before its DOM is dumped: several 2 s polls (virtual time stops
# while a fetch is in flight, so a slow machine does not cut the page short).
VIRTUAL_TIME_BUDGET_MS = 6000


@pytest.fixture(scope="module")
def scene(live_api, settings, seed_files) -> Iterator[dict[str, Any]]:
    """Tenant A has a fit waiting on the gpu lane (no gpu worker runs here); B has nothing; an
    admin key exists."""
    keys = ApiKeys(client=redis_client(settings, decode=True))
    tenants = {name: "t-" + secrets.token_hex(5) for name in ("a", "b", "ops")}
    tokens = {name: keys.create(tenant, "dashboard test", admin=name == "ops")[0] for name, tenant in tenants.items()}
    client = httpx.Client(base_url=live_api, headers={"authorization": f"Bearer {tokens['a']}"})
    dataset = upload(client, seed_files["train"])
    submitted = client.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large"})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    try:
        yield {"url": live_api, "tenants": tenants, "tokens": tokens, "job_id": job_id}
    finally:
        client.post(f"/v1/jobs/{job_id}/cancel")  # no later test's gpu worker inherits it
        client.close()


def overview(scene: dict[str, Any], who: str) -> dict[str, Any]:
    response = httpx.get(f"{scene['url']}/v1/overview", headers={"authorization": f"Bearer {scene['tokens'][who]}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_tenant_sees_its_waiting_job_and_why_it_waits(scene):
    view = overview(scene, "a")
    assert view["viewer"] == {"tenant": scene["tenants"]["a"], "admin": False}
    assert [lane["lane"] for lane in view["lanes"]] == ["small", "large", "gpu"]
    waiting = {job["id"]: job for job in view["waiting"]}
    job = waiting[scene["job_id"]]
    assert job["lane"] == "large" and job["status"] == "queued" and "tenant" not in job
    assert job["queue"]["position"] >= 1
    assert "No worker is running on the large lane" in job["queue"]["reason"]


def test_another_tenant_does_not_see_it_and_an_admin_sees_everyones(scene):
    assert scene["job_id"] not in {job["id"] for job in overview(scene, "b")["waiting"]}
    admin = overview(scene, "ops")
    assert admin["viewer"]["admin"] is True
    mine = [job for job in admin["waiting"] if job["id"] == scene["job_id"]]
    assert mine and mine[0]["tenant"] == scene["tenants"]["a"]


def test_the_overview_needs_a_key_and_the_page_does_not(scene):
    assert httpx.get(f"{scene['url']}/v1/overview").status_code == 401
    page = httpx.get(f"{scene['url']}/dashboard")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    # Everything the page loads comes from the API itself: no CDN, no other origin.
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    for asset in ("dashboard.js", "dashboard.css"):
        assert httpx.get(f"{scene['url']}/dashboard/{asset}").status_code == 200
    assert httpx.get(f"{scene['url']}/dashboard/secrets.txt").status_code == 404


def test_the_page_renders_lanes_and_the_tenants_job_in_chromium(scene, tmp_path):
    dom = dump_dom(f"{scene['url']}/dashboard#key={scene['tokens']['a']}", tmp_path)
    for lane in ("small", "large", "gpu"):
        assert f'data-lane="{lane}"' in dom, dom[:3000]
    assert f'data-job-id="{scene["job_id"]}"' in dom
    assert "No worker is running on the large lane" in dom
    assert f"tenant {scene['tenants']['a']}" in dom
    assert scene["tokens"]["a"] not in dom  # the key left the address bar and the page


def test_the_page_shows_everyones_jobs_to_an_admin_and_none_to_another_tenant(scene, tmp_path):
    admin = dump_dom(f"{scene['url']}/dashboard#key={scene['tokens']['ops']}", tmp_path / "ops")
    assert f'data-job-id="{scene["job_id"]}"' in admin and "all tenants (admin)" in admin
    assert scene["tenants"]["a"] in admin  # the tenant column
    other = dump_dom(f"{scene['url']}/dashboard#key={scene['tokens']['b']}", tmp_path / "b")
    assert 'data-lane="large"' in other and scene["job_id"] not in other


def test_the_page_asks_for_a_key_when_it_has_none(scene, tmp_path):
    dom = dump_dom(f"{scene['url']}/dashboard", tmp_path)
    assert "Enter an API key above." in dom and "needs an API key" in dom


def test_tabjob_top_shows_the_same_picture_in_the_terminal(scene):
    from typer.testing import CliRunner

    from tabjob.cli.main import app

    args = ["top", "--once", "--url", scene["url"], "--api-key", scene["tokens"]["a"]]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert scene["job_id"] in result.stdout and f"tenant {scene['tenants']['a']}" in result.stdout
    assert all(lane in result.stdout for lane in ("small", "large", "gpu"))
    assert "No worker is running on the large lane" in result.stdout
    refused = CliRunner().invoke(app, ["top", "--once", "--url", scene["url"], "--api-key", "tj_bad"])
    assert refused.exit_code == 2


def test_admin_keys_come_from_the_cli_flag(scene, base_env):
    def create(*flags: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "admin", "create-key", "--tenant", "ops-cli", *flags],
            env={**os.environ, **base_env}, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    for flags, admin in (((), False), (("--admin",), True)):
        token = create(*flags)
        view = httpx.get(f"{scene['url']}/v1/overview", headers={"authorization": f"Bearer {token}"}).json()
        assert view["viewer"] == {"tenant": "ops-cli", "admin": admin}
        assert (scene["job_id"] in {job["id"] for job in view["waiting"]}) is admin
