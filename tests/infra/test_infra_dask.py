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
