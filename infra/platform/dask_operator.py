"""The Dask Kubernetes operator, from its Helm chart, which runs the chart's DaskCluster (the
distributed engine, docs/distributed.md) and its DaskAutoscaler."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

# https://helm.dask.org hosts `dask-kubernetes-operator`; 2025.4.3 is the release whose CRDs are
# vendored in tests/charts/crds/dask-kubernetes-2025.4.3 (the chart's objects are checked there).
DASK_OPERATOR_REPOSITORY = "https://helm.dask.org"
DASK_OPERATOR_CHART = "dask-kubernetes-operator"
DASK_OPERATOR_VERSION = "2025.4.3"
DASK_OPERATOR_NAMESPACE = "dask-operator"


class DaskOperator(pulumi.ComponentResource):
    """The operator and its CRDs (DaskCluster, DaskWorkerGroup, DaskJob, DaskAutoscaler), in
    namespace `dask-operator`; it watches every namespace.

    Attributes:
        release: the Helm release; the app's chart depends on it for the CRDs.
    """

    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        *,
        provider: k8s.Provider,
        version: str = DASK_OPERATOR_VERSION,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:DaskOperator", name, None, opts)
        self.release = k8s.helm.v3.Release(
            name,
            name="dask-kubernetes-operator",
            chart=DASK_OPERATOR_CHART,
            version=version,
            repository_opts={"repo": DASK_OPERATOR_REPOSITORY},
            namespace=DASK_OPERATOR_NAMESPACE,
            create_namespace=True,
            atomic=True,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.register_outputs({"version": version})
