"""Job webhooks get out; the cluster's private ranges and the metadata server stay out of reach.

The NetworkPolicies are evaluated here with Kubernetes' own egress semantics
(https://kubernetes.io/docs/concepts/services-networking/network-policies/): a connection is
allowed when any egress rule matches it; a rule without `to` matches every destination, one
without `ports` every port; an ipBlock matches addresses in `cidr` but not in any `except`.
Before, egress allowed DNS, the broker and the store only, so every webhook was dropped (on
kind, whose store port is 8333, and on existing clusters).
"""

from __future__ import annotations

import ipaddress

import pytest
from chart_render import by_kind, objects_of, render_objects, scenario_files

PUBLIC = "203.0.113.7"
PRIVATE = ("10.1.2.3", "172.16.0.9", "192.168.1.1", "100.64.0.1")
METADATA = "169.254.169.254"


def _allowed(policy: dict, address: str, port: int, protocol: str = "TCP") -> bool:
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"].get("egress", []):
        ports = rule.get("ports")
        if ports is not None and not any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports):
            continue
        peers = rule.get("to")
        if peers is None:
            return True
        for peer in peers:
            block = peer.get("ipBlock")
            if (
                block
                and ip in ipaddress.ip_network(block["cidr"])
                and not any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
            ):
                return True
    return False


@pytest.mark.parametrize("scenario", ["kind", "gke", "existing"])
def test_webhooks_reach_public_http_and_https_from_the_api_and_workers(scenario):
    policies = by_kind(objects_of(scenario_files(scenario)), "NetworkPolicy")
    app_policies = [p for p in policies if p["metadata"]["name"] in ("tabjob-api", "tabjob-worker")]
    assert len(app_policies) == 2
    for policy in app_policies:
        assert _allowed(policy, PUBLIC, 443) and _allowed(policy, PUBLIC, 80), policy["metadata"]["name"]


@pytest.mark.parametrize("scenario", ["kind", "gke", "existing"])
def test_private_ranges_and_the_metadata_server_stay_closed_to_webhook_ports(scenario):
    objects = objects_of(scenario_files(scenario))
    for policy in by_kind(objects, "NetworkPolicy"):
        if policy["metadata"]["name"] not in ("tabjob-api", "tabjob-worker"):
            continue
        assert not _allowed(policy, METADATA, 80), "the metadata server hands out the node's credentials"
        for address in PRIVATE:
            assert not _allowed(policy, address, 80), address


def test_webhook_egress_can_be_turned_off():
    objects = render_objects({"networkPolicy": {"webhookEgress": False}, "config": {"s3Endpoint": "http://s3:8333"}})
    for policy in by_kind(objects, "NetworkPolicy"):
        if policy["metadata"]["name"] in ("tabjob-api", "tabjob-worker"):
            assert not _allowed(policy, PUBLIC, 80)
