"""Workload Identity: the app's Kubernetes service account acts as a Google service account."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

ANNOTATION = "iam.gke.io/gcp-service-account"


class WorkloadIdentity(pulumi.ComponentResource):
    """A Google service account the app's KSA may impersonate, with access to the bucket.

    Pods get short-lived tokens from the GKE metadata server; no key is ever created.

    Attributes:
        email: the Google service account's email, for the KSA annotation.
    """

    email: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        account_id: str,
        workload_pool: pulumi.Input[str],
        namespace: str,
        service_account: str,
        bucket: pulumi.Input[str],
        provider: gcp.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:WorkloadIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        account = gcp.serviceaccount.Account(
            name, account_id=account_id, display_name="tabjob app (Workload Identity)", opts=child
        )
        gcp.serviceaccount.IAMMember(
            f"{name}-ksa",
            service_account_id=account.name,
            role="roles/iam.workloadIdentityUser",
            # An output of the cluster: the pool exists only once the cluster does, so this
            # binding waits for it instead of racing it on a fresh project.
            member=pulumi.Output.concat("serviceAccount:", workload_pool, f"[{namespace}/{service_account}]"),
            opts=child,
        )
        # Native GCS clients in the pods (not the S3 path, which uses the HMAC key) reach
        # the bucket as this identity.
        gcp.storage.BucketIAMMember(
            f"{name}-bucket",
            bucket=bucket,
            role="roles/storage.objectAdmin",
            member=account.member,
            opts=child,
        )
        self.email = account.email
        self.register_outputs({"email": self.email})
