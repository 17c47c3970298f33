"""Every `tabjob:` configuration key with its default, and the values some keys allow.

The one place each default lives. None: no default, or one derived from other keys
(documented next to the getter that derives it). Pulumi.yaml's schema is checked against
`DEFAULTS` in tests/infra.
"""

from __future__ import annotations

import re
from typing import Any, Literal

ClusterKind = Literal["kind", "gke", "existing"]

CLUSTER_KINDS = ("kind", "gke", "existing")
ENVIRONMENTS = ("dev", "staging", "production")
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE")
GPU_DRIVER_VERSIONS = ("LATEST", "DEFAULT")
GPU_SCALINGS = ("scaledjob", "deployment")
VALKEY_NODE_TYPES = ("SHARED_CORE_NANO", "STANDARD_SMALL", "HIGHMEM_MEDIUM", "HIGHMEM_XLARGE")
DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
CHART_VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+$")
# KEDA's CRDs in ../shared/crds and the chart's ScaledObjects are written against 2.20.
KEDA_VERSION_PATTERN = re.compile(r"^2\.20\.\d+$")

# The one place each default lives. None: no default, or one derived from other keys
# (documented next to the getter that derives it). Pulumi.yaml declares each None as
# `default: ""` (`[]` for a list): the CLI merges every project default into the config the
# program reads (pulumi/pulumi pkg/workspace/config.go, mergeConfig), and refuses a stack that
# leaves a key without a default unset, so "unset" has to be a value the Reader treats as unset.
DEFAULTS: dict[str, Any] = {
    # common
    "cluster": "kind",
    "environment": None,  # the stack name
    "namespace": "tabjob",
    "image": None,  # kind: "tabjob"; gke: <Artifact Registry>/tabjob; existing: required
    "gpuImage": None,  # <image>-gpu
    "imageTag": None,  # kind: KIND_IMAGE_TAG; elsewhere a release needs a digest, or a tag set on purpose
    "imageDigest": None,
    "gpuImageDigest": None,
    "kedaVersion": "2.20.2",
    "installKeda": True,
    # The Dask engine (docs/distributed.md): the chart's dask.enabled; kind and GKE stacks install its operator.
    "daskEngine": False,
    # observability (infra/platform/monitoring.py)
    "monitoring": False,
    "kubePrometheusStackVersion": "91.5.0",
    # Alertmanager's receivers (infra/config_alerting.py); {} sends nowhere, as the chart does.
    "alerting": {},
    # Optional secrets: "" (unset), since the CLI cannot declare an optional key secret (Pulumi.yaml).
    "alertSmtpPassword": "",
    "alertSlackWebhookUrl": "",
    "apiHost": None,  # required for gke
    "bootstrap": False,  # gke: a first `pulumi up` with no image yet (infrastructure only)
    # kind
    "kindClusterName": "tabjob",
    "kindNodeImage": None,  # kind's own default node image
    "apiHostPort": 8000,
    "s3HostPort": 8333,
    "valkeyImage": "valkey/valkey:9.1",
    "seaweedfsImage": "chrislusf/seaweedfs:4.48",
    "valkeyStorage": "1Gi",
    "seaweedfsStorage": "10Gi",
    # gke
    "gcpProject": None,  # required for gke
    "region": "us-central1",
    "releaseChannel": "REGULAR",
    "deletionProtection": True,  # a stack that may be destroyed says so (staging sets false)
    "nodeCidr": "10.10.0.0/20",
    "podsCidr": "10.16.0.0/14",
    "servicesCidr": "10.20.0.0/20",
    "cpuMachineType": "e2-standard-4",
    "cpuMinNodes": 1,
    "cpuMaxNodes": 6,
    "gpuMachineType": "g2-standard-4",
    "gpuType": "nvidia-l4",
    "gpuCount": 1,
    "gpuMaxNodes": 2,
    "gpuSpot": False,
    "gpuDriverVersion": "LATEST",
    "gpuScaling": "scaledjob",  # the chart's gpu.scaling on GKE
    "gpuZones": [],  # empty: the known zones of gpuType in region (infra/cluster/gpu_sizing.py)
    "masterCidr": "172.16.0.0/28",
    "valkeyNodeType": "SHARED_CORE_NANO",
    "valkeyReplicas": 0,
    "valkeyEngineVersion": "VALKEY_8_0",
    "objectRetentionDays": 30,
    "expiringSuffixes": [".parquet", ".arrow"],
    # existing cluster
    "kubeconfig": None,  # secret; required for existing
    "redisUrl": None,
    "redisPassword": None,  # secret
    "s3Endpoint": None,
    "s3PublicEndpoint": None,  # s3Endpoint
    "s3Bucket": None,
    "s3Region": "us-east-1",
    "s3AccessKey": None,  # secret
    "s3SecretKey": None,  # secret
    "ingressClass": "nginx",
}

# The tag `task dev` builds and loads into kind (Taskfile.yml); the kind stack's tag when unset.
KIND_IMAGE_TAG = "dev"

# Set with `pulumi config set --secret`; the program refuses a plain value. Pulumi.yaml cannot
# mark them `secret: true`: such a key must then be set, encrypted, on every stack, kind included
# (the CLI checks the merged default too; pkg/workspace/config.go, validateStackConfigValue).
SECRET_KEYS = frozenset({"kubeconfig", "redisPassword", "s3AccessKey", "s3SecretKey"})
# tabjob:alerting's (infra/config_alerting.py): optional, so declared with a default, not `secret: true`.
SECRET_KEYS |= {"alertSmtpPassword", "alertSlackWebhookUrl"}
