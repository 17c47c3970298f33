"""Schedules fire from the workers' own loop (app/jobs/scheduling.py; docs/registry.md), and only
long-lived workers run it (a KEDA ScaledJob pod is one-shot): the chart's defaults must keep one
long-lived worker, or no schedule would ever fire while the queues are empty (KEDA scales a
Deployment with minReplicaCount 0 to zero when its trigger is idle:
https://keda.sh/docs/2.20/reference/scaledobject-spec/#minreplicacount)."""

from __future__ import annotations

from pathlib import Path

import safe_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_values_keep_a_long_lived_worker_for_the_schedules():
    values = safe_yaml.load((ROOT / "charts" / "tabjob" / "values.yaml").read_text())
    lanes = [w for w in values["workers"].values() if isinstance(w, dict) and w.get("enabled")]
    assert any(int(w.get("minReplicas", 0)) >= 1 for w in lanes)
