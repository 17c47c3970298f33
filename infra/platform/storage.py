"""The object store behind the S3 API: SeaweedFS in the cluster (kind) or GCS (GKE)."""

from __future__ import annotations

import json

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.platform.incluster import data_volume_claim, service_host

S3_PORT = 8333
MASTER_PORT = 9333
FILER_PORT = 8888
# `weed shell` speaks gRPC, on each server's HTTP port + 10000.
GRPC_OFFSET = 10000
SEAWEEDFS_UID = 10001
GCS_S3_ENDPOINT = "https://storage.googleapis.com"


def s3_identities(access_key: str, secret_key: str) -> str:
    """SeaweedFS's `-s3.config` file: one identity, the app's, allowed everything.

    With any identity configured SeaweedFS refuses anonymous requests, so auth is on.
    """
    identity = {
        "name": "tabjob",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    return json.dumps({"identities": [identity]})


class SeaweedFs(pulumi.ComponentResource):
    """SeaweedFS (`weed server -s3`) as a one-replica StatefulSet, its bucket, and credentials.

    Attributes:
        endpoint: the in-cluster S3 endpoint (http://<service FQDN>:8333).
        public_endpoint: http://127.0.0.1:<s3 host port>, through kind's port mapping.
        bucket: the bucket name.
        access_key, secret_key: the generated S3 credentials (secrets).
    """

    endpoint: pulumi.Output[str]
    public_endpoint: str
    bucket: str
    access_key: pulumi.Output[str]
    secret_key: pulumi.Output[str]
    region = "us-east-1"

    def __init__(
        self,
        name: str,
        *,
        namespace: pulumi.Input[str],
        image: str,
        storage: str,
        bucket: str,
        node_port: int,
        host_port: int,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:SeaweedFs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        plain = pulumi.ResourceOptions(parent=self)
        access = random.RandomPassword(f"{name}-access-key", length=20, special=False, opts=plain)
        secret = random.RandomPassword(f"{name}-secret-key", length=40, special=False, opts=plain)
        self.access_key, self.secret_key = access.result, secret.result
        self.bucket = bucket
        self.public_endpoint = f"http://127.0.0.1:{host_port}"
        config = k8s.core.v1.Secret(
            f"{name}-s3-config",
            metadata={"namespace": namespace},
            string_data={
                "s3.json": pulumi.Output.all(access.result, secret.result).apply(
                    lambda keys: s3_identities(keys[0], keys[1])
                )
            },
            opts=child,
        )
        labels = {"app.kubernetes.io/name": "seaweedfs", "app.kubernetes.io/part-of": "tabjob"}
        # NodePort so kind's extraPortMappings publish S3 on the host: presigned URLs are
        # signed for that address and must work from the developer's machine.
        service = k8s.core.v1.Service(
            name,
            metadata={"namespace": namespace, "labels": labels},
            spec={
                "type": "NodePort",
                "selector": labels,
                "ports": [
                    {"name": "s3", "port": S3_PORT, "targetPort": "s3", "nodePort": node_port},
                    {"name": "master", "port": MASTER_PORT, "targetPort": "master"},
                    {"name": "filer", "port": FILER_PORT, "targetPort": "filer"},
                    {
                        "name": "master-grpc",
                        "port": MASTER_PORT + GRPC_OFFSET,
                        "targetPort": "master-grpc",
                    },
                    {
                        "name": "filer-grpc",
                        "port": FILER_PORT + GRPC_OFFSET,
                        "targetPort": "filer-grpc",
                    },
                ],
            },
            opts=child,
        )
        container = {
            "name": "seaweedfs",
            "image": image,
            "command": ["weed"],
            "args": [
                "server",
                "-dir=/data",
                # Volume and filer talk inside the pod; clients only use the Service.
                "-ip=127.0.0.1",
                "-ip.bind=0.0.0.0",
                "-master.volumeSizeLimitMB=1024",
                "-s3",
                f"-s3.port={S3_PORT}",
                "-s3.config=/etc/seaweedfs/s3.json",
            ],
            "ports": [
                {"name": "s3", "containerPort": S3_PORT},
                {"name": "master", "containerPort": MASTER_PORT},
                {"name": "filer", "containerPort": FILER_PORT},
                {"name": "master-grpc", "containerPort": MASTER_PORT + GRPC_OFFSET},
                {"name": "filer-grpc", "containerPort": FILER_PORT + GRPC_OFFSET},
            ],
            "readinessProbe": {"tcpSocket": {"port": "s3"}, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": "s3"}, "initialDelaySeconds": 30},
            "resources": {
                "requests": {"cpu": "100m", "memory": "256Mi"},
                "limits": {"memory": "1Gi"},
            },
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "s3-config", "mountPath": "/etc/seaweedfs", "readOnly": True},
            ],
        }
        pod_security = {
            "runAsNonRoot": True,
            "runAsUser": SEAWEEDFS_UID,
            "runAsGroup": SEAWEEDFS_UID,
            "fsGroup": SEAWEEDFS_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        statefulset = k8s.apps.v1.StatefulSet(
            name,
            metadata={"namespace": namespace, "labels": labels},
            spec={
                "serviceName": service.metadata.name,
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": pod_security,
                        "containers": [container],
                        "volumes": [
                            {"name": "tmp", "emptyDir": {}},
                            {"name": "s3-config", "secret": {"secretName": config.metadata.name}},
                        ],
                    },
                },
                "volumeClaimTemplates": [data_volume_claim(storage)],
            },
            opts=child,
        )
        host = service_host(service, namespace)
        self.endpoint = pulumi.Output.concat("http://", host, f":{S3_PORT}")
        # The bucket is created once the server answers; the Job retries until it does.
        shell = pulumi.Output.concat(
            f"echo 's3.bucket.create -name {bucket}' | weed shell -master=",
            host,
            f":{MASTER_PORT} -filer=",
            host,
            f":{FILER_PORT}",
        )
        k8s.batch.v1.Job(
            f"{name}-bucket",
            metadata={"namespace": namespace, "labels": labels},
            spec={
                "backoffLimit": 10,
                "template": {
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "securityContext": pod_security,
                        "containers": [
                            {
                                "name": "create-bucket",
                                "image": image,
                                "command": ["sh", "-c", shell],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": container["securityContext"],
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    }
                },
            },
            opts=child.merge(pulumi.ResourceOptions(depends_on=[statefulset])),
        )
        self.register_outputs({"endpoint": self.endpoint, "bucket": bucket})


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
        expiring_prefixes: list[str],
        force_destroy: bool,
        provider: gcp.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:GcsStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        rules = [
            {
                "action": {"type": "Delete"},
                "condition": {"age": retention_days, "matches_prefixes": [prefix]},
            }
            for prefix in expiring_prefixes
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
