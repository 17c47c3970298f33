"""The kind stack's object store: SeaweedFS (`weed server -s3`) in the cluster, and its bucket.

The component is split into named helpers (`_service`, `_statefulset`, `_bucket_job`), one per
Kubernetes object it declares.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.platform.incluster import data_volume_claim, service_host

S3_PORT = 8333
MASTER_PORT = 9333
FILER_PORT = 8888
# `weed shell` speaks gRPC, on each server's HTTP port + 10000.
GRPC_OFFSET = 10000
SEAWEEDFS_UID = 10001
LABELS = {"app.kubernetes.io/name": "seaweedfs", "app.kubernetes.io/part-of": "tabjob"}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": SEAWEEDFS_UID,
    "runAsGroup": SEAWEEDFS_UID,
    "fsGroup": SEAWEEDFS_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
PORTS = (
    ("s3", S3_PORT),
    ("master", MASTER_PORT),
    ("filer", FILER_PORT),
    ("master-grpc", MASTER_PORT + GRPC_OFFSET),
    ("filer-grpc", FILER_PORT + GRPC_OFFSET),
)


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
    """SeaweedFS as a one-replica StatefulSet, its bucket, and credentials.

    Attributes:
        endpoint: the in-cluster S3 endpoint (http://<service FQDN>:8333).
        public_endpoint: http://127.0.0.1:<s3 host port>, through kind's port mapping.
        bucket: the bucket name.
        bucket_job: the Job that creates the bucket; the release waits for it, so the API is
            never started (nor ready) before its bucket exists.
        access_key, secret_key: the generated S3 credentials (secrets).
    """

    endpoint: pulumi.Output[str]
    public_endpoint: str
    bucket: str
    bucket_job: k8s.batch.v1.Job
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
        self._name, self._namespace, self._image = name, namespace, image
        self._child = pulumi.ResourceOptions(parent=self, provider=provider)
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
            opts=self._child,
        )
        service = self._service(node_port)
        statefulset = self._statefulset(service, config, storage)
        host = service_host(service, namespace)
        self.endpoint = pulumi.Output.concat("http://", host, f":{S3_PORT}")
        self.bucket_job = self._bucket_job(host, statefulset)
        self.register_outputs({"endpoint": self.endpoint, "bucket": bucket})

    def _service(self, node_port: int) -> k8s.core.v1.Service:
        # NodePort so kind's extraPortMappings publish S3 on the host: presigned URLs are
        # signed for that address and must work from the developer's machine.
        ports = [{"name": port_name, "port": port, "targetPort": port_name} for port_name, port in PORTS]
        ports[0]["nodePort"] = node_port
        return k8s.core.v1.Service(
            self._name,
            metadata={"namespace": self._namespace, "labels": LABELS},
            spec={"type": "NodePort", "selector": LABELS, "ports": ports},
            opts=self._child,
        )

    def _statefulset(
        self, service: k8s.core.v1.Service, config: k8s.core.v1.Secret, storage: str
    ) -> k8s.apps.v1.StatefulSet:
        container = {
            "name": "seaweedfs",
            "image": self._image,
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
            "ports": [{"name": port_name, "containerPort": port} for port_name, port in PORTS],
            "readinessProbe": {"tcpSocket": {"port": "s3"}, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": "s3"}, "initialDelaySeconds": 30},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            "securityContext": CONTAINER_SECURITY,
            "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "s3-config", "mountPath": "/etc/seaweedfs", "readOnly": True},
            ],
        }
        volumes = [
            {"name": "tmp", "emptyDir": {}},
            {"name": "s3-config", "secret": {"secretName": config.metadata.name}},
        ]
        return k8s.apps.v1.StatefulSet(
            self._name,
            metadata={"namespace": self._namespace, "labels": LABELS},
            spec={
                "serviceName": service.metadata.name,
                "replicas": 1,
                "selector": {"matchLabels": LABELS},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {"securityContext": POD_SECURITY, "containers": [container], "volumes": volumes},
                },
                "volumeClaimTemplates": [data_volume_claim(storage)],
            },
            opts=self._child,
        )

    def _bucket_job(self, host: pulumi.Output[str], statefulset: k8s.apps.v1.StatefulSet) -> k8s.batch.v1.Job:
        """The bucket, created once the server answers; the Job retries until it does, and
        Pulumi waits for it to complete."""
        shell = pulumi.Output.concat(
            f"echo 's3.bucket.create -name {self.bucket}' | weed shell -master=",
            host,
            f":{MASTER_PORT} -filer=",
            host,
            f":{FILER_PORT}",
        )
        container = {
            "name": "create-bucket",
            "image": self._image,
            "command": ["sh", "-c", shell],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            "securityContext": CONTAINER_SECURITY,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }
        return k8s.batch.v1.Job(
            f"{self._name}-bucket",
            metadata={"namespace": self._namespace, "labels": LABELS},
            spec={
                "backoffLimit": 10,
                "template": {
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "securityContext": POD_SECURITY,
                        "containers": [container],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    }
                },
            },
            opts=self._child.merge(pulumi.ResourceOptions(depends_on=[statefulset])),
        )
