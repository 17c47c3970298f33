"""The object store behind the S3 API on GKE: a GCS bucket (SeaweedFS on kind: seaweedfs.py)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

GCS_S3_ENDPOINT = "https://storage.googleapis.com"


class GcsStorage(pulumi.ComponentResource):
    """A GCS bucket used through its S3-compatible (XML) API with an HMAC key.

    The HMAC key belongs to a dedicated service account that can only touch this bucket;
    no service-account (JSON) key is ever created.

    Attributes:
        bucket: the bucket name.
        access_key, secret_key: the HMAC key's access id and secret (secrets).
    """

    endpoint = GCS_S3_ENDPOINT
    public_endpoint = GCS_S3_ENDPOINT
    region = "auto"
    bucket: pulumi.Output[str]
    access_key: pulumi.Output[str]
    secret_key: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        region: str,
        account_id: str,
        retention_days: int,
        expiring_suffixes: list[str],
        force_destroy: bool,
        provider: gcp.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:GcsStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        # Objects live under tenants/<tenant>/<kind>/, and lifecycle conditions match a literal
        # prefix or suffix only (no globs): the kinds that expire are told apart by their suffix.
        rules = [
            {
                "action": {"type": "Delete"},
                "condition": {"age": retention_days, "matches_suffixes": [suffix]},
            }
            for suffix in expiring_suffixes
        ]
        # Uploads abandoned half-way still cost storage until aborted.
        rules.append({"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 1}})
        bucket = gcp.storage.Bucket(
            name,
            location=region.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=force_destroy,
            lifecycle_rules=rules,
            opts=child,
        )
        self.bucket = bucket.name
        account = gcp.serviceaccount.Account(
            f"{name}-hmac",
            account_id=account_id,
            display_name="tabjob S3 (HMAC) access to its bucket",
            opts=child,
        )
        gcp.storage.BucketIAMMember(
            f"{name}-hmac-object-admin",
            bucket=bucket.name,
            role="roles/storage.objectAdmin",
            member=account.member,
            opts=child,
        )
        key = gcp.storage.HmacKey(f"{name}-hmac", service_account_email=account.email, opts=child)
        self.access_key = pulumi.Output.secret(key.access_id)
        self.secret_key = pulumi.Output.secret(key.secret)
        self.register_outputs({"bucket": self.bucket})
