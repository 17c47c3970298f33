"""Every stack that installs operators installs the Dask Kubernetes operator (Helm chart
`dask-kubernetes-operator` from https://helm.dask.org, https://kubernetes.dask.org/en/latest/installing.html),
pinned to the release whose CRDs the chart's DaskCluster is validated against, before the app."""

from __future__ import annotations

import pytest
from infra_harness import StackRun

from infra.platform.dask_operator import DASK_OPERATOR_VERSION

STACKS = ("dev", "staging", "production")


def _release(run: StackRun, name: str) -> dict:
    found = [r.inputs for r in run.resources if r.typ == "kubernetes:helm.sh/v3:Release" and r.name == name]
    assert len(found) == 1, f"expected one Helm release {name}"
    return found[0]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_installs_the_dask_operator_from_its_chart(deployed_stacks, stack):
    operator = _release(deployed_stacks[stack], "dask-operator")
    assert operator["chart"] == "dask-kubernetes-operator"
    assert operator["version"] == DASK_OPERATOR_VERSION
    assert operator["repositoryOpts"]["repo"] == "https://helm.dask.org"
    assert operator["namespace"] == "dask-operator" and operator["atomic"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_the_app_waits_for_the_operator_and_its_crds(deployed_stacks, stack):
    run = deployed_stacks[stack]
    assert run.waits_for("kubernetes:helm.sh/v3:Release", "tabjob", "kubernetes:helm.sh/v3:Release", "dask-operator")


def test_the_vendored_crds_are_those_of_the_pinned_operator():
    from pathlib import Path

    crds = Path(__file__).resolve().parents[1] / "charts" / "crds" / f"dask-kubernetes-{DASK_OPERATOR_VERSION}"
    assert sorted(p.name for p in crds.glob("*.yaml")) == ["daskautoscaler.yaml", "daskcluster.yaml",
                                                          "daskworkergroup.yaml"]  # fmt: skip


RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.mark.parametrize(("stack", "enabled"), [("dev", True), ("staging", True), ("production", False)])
def test_the_stack_config_turns_the_charts_dask_engine_on(deployed_stacks, stack, enabled):
    # environments/Pulumi.<stack>.yaml: tabjob:daskEngine (dev and staging on, production off)
    values = deployed_stacks[stack].one(RELEASE, "tabjob").inputs["values"]
    assert values["dask"] == {"enabled": enabled}


def test_production_can_turn_it_on_and_the_chart_then_declares_the_cluster():
    import helm_python as helm
    import safe_yaml
    from infra_harness import DIGEST, GPU_DIGEST, run_program, stack_config

    from infra.app import CHART_PATH, RELEASE_NAME

    config = stack_config("production") | {"imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST, "daskEngine": True}
    values = run_program("production", config).one(RELEASE, "tabjob").inputs["values"]
    assert values["dask"] == {"enabled": True}
    # The values Pulumi hands the chart render its DaskCluster and autoscaler (real Helm engine)
    with helm.Chart.load(CHART_PATH) as chart:
        files = chart.render(values, name=RELEASE_NAME, namespace="tabjob")
    kinds = {doc["kind"] for path, text in files.items() if path.endswith(".yaml") for doc in safe_yaml.load_all(text)
             if doc}  # fmt: skip
    assert {"DaskCluster", "DaskAutoscaler"} <= kinds


def test_dask_engine_must_be_a_boolean():
    import pulumi
    from infra_harness import configure, stack_config

    from infra.config import load_config

    configure("production", stack_config("production") | {"daskEngine": "yes"}, cli=False)  # the CLI refuses it first
    with pytest.raises(ValueError, match="tabjob:daskEngine must be true or false"):
        load_config(pulumi.Config("tabjob"))
