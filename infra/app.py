"""The app layer: tabjob's Secret and the local chart `charts/tabjob`, as one Helm release."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.release_values import (
    BOOTSTRAP_KEYS_KEY,
    CHART_PATH,
    METRICS_TOKEN_KEY,
    REDIS_CA_KEY,
    RELEASE_NAME,
    SCALER_TOKEN_KEY,
    SMOKE_TENANT,
    Backends,
    Images,
    Placement,
    chart_values,
    scales_from_api,
    secret_checksum,
)

# Names the stacks and tests take from here, defined with the values they belong to.
__all__ = ["CHART_PATH", "RELEASE_NAME", "Backends", "Images", "Placement", "TabjobRelease"]


class TabjobRelease(pulumi.ComponentResource):
    """The app's Secret (broker and store credentials, the smoke test's API key) and the tabjob
    chart release.

    Attributes:
        secret_name: the Secret the chart reads (`secrets.existingSecret`).
        smoke_api_key: a generated API key of tenant `smoke` (secret), seeded by the API at
            start-up, for the deploy's smoke test (stack output `smokeApiKey`).
        release: the Helm release of charts/tabjob.
    """

    secret_name: pulumi.Output[str]
    smoke_api_key: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        *,
        namespace: pulumi.Input[str],
        environment: str,
        images: Images,
        backends: Backends,
        placement: Placement,
        provider: k8s.Provider,
        monitoring: dict[str, Any] | None = None,
        dask_engine: bool = False,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:app:TabjobRelease", name, None, opts)
        # On the children themselves: a component's depends_on does not reach them, and the
        # release must wait for KEDA's CRDs, the broker and (kind) the bucket.
        child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on or [])
        self.smoke_api_key = self._smoke_api_key(name)
        secret, contents = self._credentials(name, namespace, backends, child)
        self.secret_name = secret.metadata.name
        # Not secret itself (a hash of high-entropy keys), so the plan shows it change.
        checksum = pulumi.Output.unsecret(pulumi.Output.all(**contents).apply(secret_checksum))
        self.release = k8s.helm.v3.Release(
            name,
            # Fixed, not auto-named: the API pods' instance label (API_POD_LABELS) uses it.
            name=RELEASE_NAME,
            chart=str(CHART_PATH),
            namespace=namespace,
            values=chart_values(
                environment=environment,
                images=images,
                backends=backends,
                placement=placement,
                secret_name=secret.metadata.name,
                secret_checksum=checksum,
                monitoring=monitoring,
                dask_engine=dask_engine,
            ),
            atomic=True,
            cleanup_on_fail=True,
            opts=child,
        )
        self.register_outputs({"secret_name": self.secret_name})

    def _smoke_api_key(self, name: str) -> pulumi.Output[str]:
        """tj_<12 hex>_<40 alphanumerics>: the app's key format, generated once per stack.

        No key can be made with `tabjob admin` before the first smoke test (the broker is
        reachable only inside the VPC), so the deploy brings its own.
        """
        plain = pulumi.ResourceOptions(parent=self)
        key_id = random.RandomId(f"{name}-smoke-key-id", byte_length=6, opts=plain)
        secret = random.RandomPassword(f"{name}-smoke-key-secret", length=40, special=False, opts=plain)
        return pulumi.Output.secret(pulumi.Output.concat("tj_", key_id.hex, "_", secret.result))

    def _credentials(
        self, name: str, namespace: pulumi.Input[str], backends: Backends, child: pulumi.ResourceOptions
    ) -> tuple[k8s.core.v1.Secret, dict[str, pulumi.Input[str]]]:
        credentials: dict[str, pulumi.Input[str]] = {
            "redis-password": backends.redis_password,
            "s3-access-key": backends.s3_access_key,
            "s3-secret-key": backends.s3_secret_key,
            BOOTSTRAP_KEYS_KEY: pulumi.Output.concat(f"{SMOKE_TENANT}=", self.smoke_api_key),
        }
        if backends.redis_ca is not None:
            credentials[REDIS_CA_KEY] = backends.redis_ca
        # The scrape token of /metrics and /readyz (generated once per stack, like the smoke key).
        metrics = random.RandomPassword(
            f"{name}-metrics-token", length=40, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        credentials[METRICS_TOKEN_KEY] = metrics.result
        if scales_from_api(backends):
            # KEDA's metrics-api trigger sends it to the API's scaling route (keda.scaleFrom api).
            token = random.RandomPassword(
                f"{name}-scaler-token", length=40, special=False, opts=pulumi.ResourceOptions(parent=self)
            )
            credentials[SCALER_TOKEN_KEY] = token.result
        secret = k8s.core.v1.Secret(
            f"{name}-credentials", metadata={"namespace": namespace}, string_data=credentials, opts=child
        )
        return secret, credentials
