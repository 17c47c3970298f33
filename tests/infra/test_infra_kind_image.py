"""Issue 9, item 6: a rebuilt tabjob:dev reaches the kind node and the pods.

`task dev` builds every image under the one tag tabjob:dev and hands `pulumi up` the image's ID
and a `docker save` archive (TABJOB_KIND_IMAGE_ID, TABJOB_KIND_IMAGE_ARCHIVE). Loading keyed on
the tag never reloaded a rebuilt image, and `kind load docker-image` fails on Docker's containerd
image store; the pods, on IfNotPresent with an unchanged template, never restarted either.
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
import safe_yaml
from infra_harness import DIGEST, GPU_DIGEST, StackRun, kind_image_environ, run_program, stack_config

from infra.app import CHART_PATH, RELEASE_NAME

COMMAND = "command:local:Command"
RELEASE = "kubernetes:helm.sh/v3:Release"
FIRST_BUILD = "sha256:" + "1" * 64
REBUILD = "sha256:" + "2" * 64
ANNOTATION = "tabjob.io/image-id"


def _dev(image_id: str) -> StackRun:
    return run_program("dev", stack_config("dev"), environ=kind_image_environ(image_id))


def _pod_annotations(run: StackRun) -> dict[str, dict[str, Any]]:
    """Each rendered Deployment's pod-template annotations, with the values the program passes."""
    values = run.one(RELEASE, "tabjob").inputs["values"]
    with helm.Chart.load(CHART_PATH) as chart:
        files = chart.render(values, name=RELEASE_NAME, namespace="tabjob")
    docs = [doc for path, text in files.items() if path.endswith(".yaml") for doc in safe_yaml.load_all(text) if doc]
    return {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"].get("annotations", {})
        for d in docs
        if d["kind"] == "Deployment"
    }


@pytest.fixture(scope="module")
def builds() -> dict[str, StackRun]:
    return {image_id: _dev(image_id) for image_id in (FIRST_BUILD, REBUILD)}


def test_a_rebuilt_image_changes_the_load_commands_triggers(builds):
    first = builds[FIRST_BUILD].one(COMMAND, "kind-load-image").inputs
    rebuilt = builds[REBUILD].one(COMMAND, "kind-load-image").inputs
    # Same tag, same command: only the triggers (cluster, image ID) tell the builds apart, and
    # a changed trigger replaces the command, which loads the archive again.
    assert first["create"] == rebuilt["create"]
    assert first["triggers"] == ["kind-create-id", FIRST_BUILD]
    assert rebuilt["triggers"] == ["kind-create-id", REBUILD]
    assert not [t for t in first["triggers"] if "tabjob:dev" in str(t)], "keyed on the ID, not the tag"


def test_the_same_build_plans_no_reload(builds):
    again = _dev(FIRST_BUILD).one(COMMAND, "kind-load-image").inputs
    assert again == builds[FIRST_BUILD].one(COMMAND, "kind-load-image").inputs


def test_the_load_runs_after_the_cluster_and_before_the_release(builds):
    run = builds[FIRST_BUILD]
    assert run.waits_for(COMMAND, "kind-load-image", COMMAND, "kind-create")
    assert run.waits_for(RELEASE, "tabjob", COMMAND, "kind-load-image")


def test_api_and_cpu_worker_pods_carry_the_image_id_so_a_rebuild_rolls_them(builds):
    first = _pod_annotations(builds[FIRST_BUILD])
    rebuilt = _pod_annotations(builds[REBUILD])
    assert set(first) == {"tabjob-api", "tabjob-worker-small", "tabjob-worker-large"}
    for name, pod_annotations in first.items():
        assert pod_annotations[ANNOTATION] == FIRST_BUILD, name
        assert rebuilt[name][ANNOTATION] == REBUILD, name
    values = builds[FIRST_BUILD].one(RELEASE, "tabjob").inputs["values"]
    assert values["image"]["tag"] == "dev" and values["image"]["pullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("stack", ("staging", "production"))
def test_gke_stacks_need_no_kind_image_and_carry_no_image_id(stack):
    config = {**stack_config(stack), "imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST}
    run = run_program(stack, config, environ={})
    assert run.one(RELEASE, "tabjob").inputs["values"]["image"]["id"] == ""
    assert not [a for a in _pod_annotations(run).values() if ANNOTATION in a]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TABJOB_KIND_IMAGE_ID": ""}, "TABJOB_KIND_IMAGE_ID and TABJOB_KIND_IMAGE_ARCHIVE must both be set"),
        ({"TABJOB_KIND_IMAGE_ARCHIVE": ""}, "TABJOB_KIND_IMAGE_ID and TABJOB_KIND_IMAGE_ARCHIVE must both be set"),
        ({"TABJOB_KIND_IMAGE_ID": "tabjob:dev"}, "sha256:<64 hex digits>"),
        ({"TABJOB_KIND_IMAGE_ARCHIVE": ".tabjob/kind/image.tar"}, "absolute path of an image archive"),
        ({"TABJOB_KIND_IMAGE_ARCHIVE": "/nonexistent/image.tar"}, "absolute path of an image archive"),
    ],
    ids=["no-id", "no-archive", "id-not-sha256", "relative-archive", "missing-archive"],
)
def test_a_dev_run_without_task_devs_image_stops_and_says_to_run_it(change, message):
    environ = {**kind_image_environ(), **change}
    environ = {key: value for key, value in environ.items() if value}
    with pytest.raises(ValueError, match=message) as raised:
        run_program("dev", stack_config("dev"), environ=environ)
    assert "run `uv run task dev`" in str(raised.value)


def test_a_dev_run_with_no_environment_at_all_stops_too():
    with pytest.raises(ValueError, match="run `uv run task dev`"):
        run_program("dev", stack_config("dev"), environ={})
