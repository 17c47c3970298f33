"""The chart's CPU budget: a worker pod runs one job at a time (one `tabjob worker` process, one
Dramatiq thread), and that job's threads (TABJOB_WORKER_THREADS, OMP_NUM_THREADS) are the pod's
CPU limit, a whole number of CPUs equal to its request. Every scenario renders in agreement, and
values that would break it fail the render with a message."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
from chart_render import containers_of, env_of, merged_values, objects_of, pod_templates, render_files, scenario_files
from chart_render import scenario_values as all_scenarios

THREAD_VARIABLES = ("TABJOB_WORKER_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def millicpu(quantity: Any) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)


def workers_of(objects: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, lane, worker container) of every worker pod template."""
    found = []
    for where, template in pod_templates(objects):
        labels = template["metadata"]["labels"]
        if labels["app.kubernetes.io/component"] == "worker":
            [container] = containers_of(template["spec"])
            found.append((where, labels["tabjob.io/lane"], container))
    return found


@pytest.mark.parametrize("scenario", sorted(all_scenarios()))
def test_worker_threads_requests_and_limits_agree(scenario: str) -> None:
    values = merged_values(all_scenarios()[scenario])
    workers = workers_of(objects_of(scenario_files(scenario)))
    assert workers

    for where, lane, container in workers:
        resources = container["resources"]
        limit, request = millicpu(resources["limits"]["cpu"]), millicpu(resources["requests"]["cpu"])
        configured = values["gpu"] if lane == "gpu" else values["workers"][lane]
        # The values given are what is rendered.
        assert limit == millicpu(configured["resources"]["limits"]["cpu"]), where
        # A whole number of CPUs, requested in full: the scheduler reserves what the threads use.
        assert limit % 1000 == 0 and limit >= 1000, where
        assert request == limit, where
        # The job's thread count is that number of CPUs (the limit in whole CPUs).
        env = env_of(container)
        for variable in THREAD_VARIABLES:
            ref = env[variable]["valueFrom"]["resourceFieldRef"]
            assert ref == {"containerName": container["name"], "resource": "limits.cpu", "divisor": "1"}, where
        # One worker process with one consumer thread per pod: one job at a time owns the CPUs.
        assert container["command"] == ["tabjob"], where
        assert container["args"][:3] == ["worker", "--lane", lane], where
        assert "--threads" not in container["args"], where


@pytest.mark.parametrize(
    "resources, message",
    [
        ({"requests": {"cpu": "1500m"}, "limits": {"cpu": "1500m"}}, "whole number of CPUs"),
        ({"requests": {"cpu": "500m"}, "limits": {"cpu": "500m"}}, "whole number of CPUs"),
        ({"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}, "must equal limits.cpu"),
    ],
    ids=["fraction", "under-one-cpu", "request-below-limit"],
)
def test_a_worker_cpu_that_breaks_the_budget_fails_the_render(resources: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render_files({"workers": {"small": {"resources": resources}}})


def test_equal_quantities_in_other_units_agree() -> None:
    objects = objects_of(
        render_files({"workers": {"large": {"resources": {"requests": {"cpu": "4000m"}, "limits": {"cpu": 4}}}}})
    )
    [large] = [c for _, lane, c in workers_of(objects) if lane == "large"]
    assert millicpu(large["resources"]["limits"]["cpu"]) == 4000
