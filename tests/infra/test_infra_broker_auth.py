"""Who may log in to the broker on each stack, and how KEDA counts work there.

Memorystore for Valkey offers AUTH_DISABLED or IAM_AUTH (pulumi-gcp `memorystore.Instance`
`authorization_mode`); with AUTH_DISABLED, any pod or VM in the VPC could write `tabjob:apikey:*`
and mint admin keys. IAM_AUTH admits principals with `memorystore.instances.connect`, granted by
roles/memorystore.dbConnectionUser (https://cloud.google.com/memorystore/docs/valkey/about-iam-auth).
KEDA's redis trigger cannot send such a token (kedacore/keda pkg/scalers/redis_scaler.go), so the
GKE stacks have KEDA read the lanes' counts from the API (charts/tabjob `keda.scaleFrom: api`).
"""

from __future__ import annotations

import pytest
from test_infra_chart_values import _release_values

GKE_STACKS = ("staging", "production")


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_memorystore_requires_iam_and_only_the_app_account_may_connect(deployed_stacks, stack):
    run = deployed_stacks[stack]
    instance = run.one("gcp:memorystore/instance:Instance").inputs
    assert instance["authorizationMode"] == "IAM_AUTH"
    assert instance["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
    grants = [
        r.inputs
        for r in run.of_type("gcp:projects/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/memorystore.dbConnectionUser"
    ]
    app_account = run.one("gcp:serviceaccount/account:Account", "app-identity").inputs["accountId"]
    assert len(grants) == 1
    assert grants[0]["member"].startswith(f"serviceAccount:{app_account}@")


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gke_pods_use_iam_and_keda_scales_from_the_api(deployed_stacks, stack):
    run = deployed_stacks[stack]
    values = _release_values(run)
    assert values["config"]["redisAuth"] == "gcp-iam"
    assert values["keda"]["scaleFrom"] == "api"
    token_key = values["secrets"]["scalerTokenKey"]
    secret = run.one("kubernetes:core/v1:Secret", "tabjob-credentials").inputs["stringData"]
    assert secret[token_key], "the Secret holds the scaler token KEDA sends"


def test_kind_keeps_a_password_and_the_redis_trigger(deployed_stacks):
    values = _release_values(deployed_stacks["dev"])
    assert values["config"]["redisAuth"] == "password"
    assert values["keda"]["scaleFrom"] == "redis"
    assert values["secrets"]["scalerTokenKey"] == ""
