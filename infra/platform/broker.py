"""The Dramatiq broker: Valkey in the cluster (kind) or Memorystore for Valkey (GKE).

Dramatiq's Redis broker runs Lua scripts over several keys, which Redis/Valkey *cluster* mode
rejects across slots, so both variants are a single non-cluster primary.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.platform.incluster import data_volume_claim, service_host

VALKEY_PORT = 6379
VALKEY_UID = 999  # the `valkey` user of the official image


VALKEY_LABELS = {"app.kubernetes.io/name": "valkey", "app.kubernetes.io/part-of": "tabjob"}


def valkey_conf(password: str) -> str:
    """valkey.conf of the in-cluster broker: password, and persistence to the volume at /data.

    The append-only file (fsync every second) is what lets a restarted pod come back with its
    queues and job records: at most about a second of writes is lost. RDB snapshots stay on
    as Valkey's default, for a faster restart.
    """
    return f"requirepass {password}\nappendonly yes\nappendfsync everysec\ndir /data\nport {VALKEY_PORT}\n"


class InClusterValkey(pulumi.ComponentResource):
    """Valkey as a one-replica StatefulSet with a persistent volume and a generated password.

    Attributes:
        redis_url: redis://<service FQDN>:6379/0 (no password; the app reads it from a Secret).
        redis_address: host:port for KEDA's redis trigger.
        password: the generated password (secret).
        ca_certificate: None; plain TCP inside the cluster.
    """

    redis_url: pulumi.Output[str]
    redis_address: pulumi.Output[str]
    password: pulumi.Output[str]
    tls = False
    ca_certificate = None
    auth = "password"

    def __init__(
        self,
        name: str,
        *,
        namespace: pulumi.Input[str],
        image: str,
        storage: str,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:InClusterValkey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        password = random.RandomPassword(
            f"{name}-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.password = password.result
        # The password lives in a config file from a Secret, not on the command line,
        # where `ps` in any pod sharing the node's PID view would show it.
        conf = k8s.core.v1.Secret(
            f"{name}-conf",
            metadata={"namespace": namespace},
            string_data={"valkey.conf": password.result.apply(valkey_conf)},
            opts=child,
        )
        service = k8s.core.v1.Service(
            name,
            metadata={"namespace": namespace, "labels": VALKEY_LABELS},
            spec={
                "selector": VALKEY_LABELS,
                "ports": [{"name": "redis", "port": VALKEY_PORT, "targetPort": "redis"}],
            },
            opts=child,
        )
        k8s.apps.v1.StatefulSet(
            name,
            metadata={"namespace": namespace, "labels": VALKEY_LABELS},
            spec=_statefulset_spec(service, conf, image, storage),
            opts=child,
        )
        host = service_host(service, namespace)
        self.redis_address = pulumi.Output.concat(host, f":{VALKEY_PORT}")
        self.redis_url = pulumi.Output.concat("redis://", self.redis_address, "/0")
        self.register_outputs({"redis_url": self.redis_url})


def _statefulset_spec(service: k8s.core.v1.Service, conf: k8s.core.v1.Secret, image: str, storage: str) -> dict:
    """One Valkey pod reading valkey.conf from the Secret and writing its AOF to the volume."""
    container = {
        "name": "valkey",
        "image": image,
        "command": ["valkey-server"],
        "args": ["/etc/valkey/valkey.conf"],
        "ports": [{"name": "redis", "containerPort": VALKEY_PORT}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "initialDelaySeconds": 10},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "conf", "mountPath": "/etc/valkey", "readOnly": True},
        ],
    }
    pod_security = {
        "runAsNonRoot": True,
        "runAsUser": VALKEY_UID,
        "runAsGroup": VALKEY_UID,
        "fsGroup": VALKEY_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "serviceName": service.metadata.name,
        "replicas": 1,
        "selector": {"matchLabels": VALKEY_LABELS},
        "template": {
            "metadata": {"labels": VALKEY_LABELS},
            "spec": {
                "securityContext": pod_security,
                "containers": [container],
                "volumes": [{"name": "conf", "secret": {"secretName": conf.metadata.name}}],
            },
        },
        "volumeClaimTemplates": [data_volume_claim(storage)],
    }


class ManagedValkey(pulumi.ComponentResource):
    """Memorystore for Valkey, non-cluster mode, TLS in transit, IAM authentication, reached over
    PSC from the VPC.

    With AUTH_DISABLED any pod or VM in the VPC could write the app's keys (API keys included),
    so the instance requires IAM authentication: a client sends its Google service account's
    access token as the AUTH password, and only accounts granted ``allow_connect`` (the role
    roles/memorystore.dbConnectionUser) get in
    (https://cloud.google.com/memorystore/docs/valkey/about-iam-auth). The app fetches and renews
    the token itself (app/state/broker_auth.py); KEDA cannot, so it scales from the API's count
    (chart: keda.scaleFrom api).

    Attributes:
        redis_url: rediss://<PSC address>:6379/0.
        redis_address: host:port of the primary endpoint.
        password: empty (IAM tokens replace it), kept so both brokers offer the same attributes.
        ca_certificate: PEM of the instance's managed server CA, to verify its TLS certificate.
        auth: "gcp-iam", how the app logs in (TABJOB_REDIS_AUTH).
    """

    redis_url: pulumi.Output[str]
    redis_address: pulumi.Output[str]
    password: pulumi.Output[str]
    ca_certificate: pulumi.Output[str]
    tls = True
    auth = "gcp-iam"

    def __init__(
        self,
        name: str,
        *,
        instance_id: str,
        region: str,
        project: str,
        network_id: pulumi.Input[str],
        subnet_id: pulumi.Input[str],
        node_type: str,
        replicas: int,
        engine_version: str,
        deletion_protection: bool,
        provider: gcp.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:ManagedValkey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        # Memorystore creates its PSC endpoint in our VPC only where a policy allows it.
        policy = gcp.networkconnectivity.ServiceConnectionPolicy(
            f"{name}-psc",
            location=region,
            service_class="gcp-memorystore",
            network=network_id,
            psc_config={"subnetworks": [subnet_id]},
            opts=child,
        )
        instance = gcp.memorystore.Instance(
            name,
            instance_id=instance_id,
            location=region,
            mode="CLUSTER_DISABLED",
            shard_count=1,
            replica_count=replicas,
            node_type=node_type,
            engine_version=engine_version,
            authorization_mode="IAM_AUTH",
            transit_encryption_mode="SERVER_AUTHENTICATION",
            desired_auto_created_endpoints=[{"network": network_id, "project_id": project}],
            # Dramatiq's queues and job records should survive a node restart.
            persistence_config={"mode": "AOF", "aof_config": {"append_fsync": "EVERY_SEC"}},
            deletion_protection_enabled=deletion_protection,
            opts=child.merge(pulumi.ResourceOptions(depends_on=[policy])),
        )
        self.instance = instance
        self._name, self._project, self._child = name, project, child
        host = instance.endpoints.apply(_primary_address)
        self.redis_address = pulumi.Output.concat(host, f":{VALKEY_PORT}")
        self.redis_url = pulumi.Output.concat("rediss://", self.redis_address, "/0")
        self.password = pulumi.Output.secret("")
        self.ca_certificate = instance.managed_server_cas.apply(_ca_bundle)
        self.register_outputs({"redis_url": self.redis_url})

    def allow_connect(self, member: pulumi.Input[str]) -> gcp.projects.IAMMember:
        """Let ``member`` (e.g. "serviceAccount:app@...") log in to the instance with IAM tokens.

        Granted on the project, which holds only this stack's instance; Google's documentation
        offers per-instance bindings through IAM conditions, left out while one instance exists.
        """
        return gcp.projects.IAMMember(
            f"{self._name}-connect",
            project=self._project,
            role="roles/memorystore.dbConnectionUser",
            member=member,
            opts=self._child,
        )


def _primary_address(endpoints: list | None) -> str:
    """The primary endpoint's PSC address (unknown during preview, so "" then)."""
    for endpoint in endpoints or []:
        for connection in endpoint.get("connections") or []:
            psc = connection.get("psc_auto_connection") or connection.get("pscAutoConnection")
            kind = (psc or {}).get("connection_type") or (psc or {}).get("connectionType")
            if psc and kind == "CONNECTION_TYPE_PRIMARY":
                return psc.get("ip_address") or psc.get("ipAddress") or ""
    return ""


def _ca_bundle(server_cas: list | None) -> str:
    """All PEM certificates of the instance's managed server CAs, concatenated."""
    pems = [
        pem
        for server_ca in server_cas or []
        for ca_cert in server_ca.get("ca_certs") or server_ca.get("caCerts") or []
        for pem in ca_cert.get("certificates") or []
    ]
    return "\n".join(pem.strip() for pem in pems) + ("\n" if pems else "")
