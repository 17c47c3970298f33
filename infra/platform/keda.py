"""KEDA, from the kedacore Helm chart, which scales tabjob's worker lanes on queue length."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

KEDA_REPOSITORY = "https://kedacore.github.io/charts"
KEDA_NAMESPACE = "keda"


class Keda(pulumi.ComponentResource):
    """The KEDA operator and its CRDs, in namespace `keda`.

    Attributes:
        release: the Helm release; the app's chart depends on it for the CRDs.
    """

    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        *,
        version: str,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:Keda", name, None, opts)
        self.release = k8s.helm.v3.Release(
            name,
            # A fixed release name: operators look for `keda` in `keda`, and only one KEDA
            # may run per cluster anyway.
            name="keda",
            chart="keda",
            version=version,
            repository_opts={"repo": KEDA_REPOSITORY},
            namespace=KEDA_NAMESPACE,
            create_namespace=True,
            atomic=True,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.register_outputs({"version": version})
