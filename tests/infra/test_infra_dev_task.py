"""`task dev` on a developer's machine: the kind cluster is replaced delete-first, and the build's
BuildKit-only flag is checked before anything starts.

- Pulumi replaces a resource by creating the new one first unless `deleteBeforeReplace` is set
  (https://www.pulumi.com/docs/iac/concepts/options/deletebeforereplace/). A kind cluster of the
  same name and host ports cannot exist twice: `kind create cluster` fails when the old one is
  still there.
- `--provenance` is a `docker buildx build` flag (https://docs.docker.com/reference/cli/docker/buildx/build/#provenance);
  the legacy builder refuses it.
"""

from __future__ import annotations

import safe_yaml
from infra_harness import ROOT


def test_the_kind_cluster_is_deleted_before_it_is_replaced(deployed_stacks):
    run = deployed_stacks["dev"]
    urn = run.urn("command:local:Command", "kind-create")
    assert urn in run.delete_before_replace
    # The image load and kubeconfig follow the cluster (its id is in their triggers).
    assert run.urn("command:local:Command", "kind-load-image") not in run.delete_before_replace


def test_dev_checks_for_buildx_before_building_with_provenance_false():
    task = safe_yaml.load((ROOT / "Taskfile.yml").read_text())["tasks"]["dev"]
    builds = [c for c in task["cmds"] if isinstance(c, str) and "--provenance" in c]
    assert builds, "the dev build uses --provenance=false"
    checks = [p["sh"] for p in task["preconditions"]]
    assert "docker buildx version" in checks
    assert checks.index("docker buildx version") > checks.index("docker info")
