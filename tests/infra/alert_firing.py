"""The alerts a stack raises, with the labels Prometheus gives them.

The chart's PrometheusRule is rendered with the values the program passes to the tabjob release
(the real Helm engine), and Prometheus's own rule engine (`promtool test rules`) fires every rule
on synthetic series shaped like the real ones (the app's metrics, kube-state-metrics'), so each
alert's labels are what its rule gives it: its static labels plus what its expression keeps.
`promtool` prints the alerts a test did not expect with their labels; a test that expects none
therefore reports every alert that fired.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import safe_yaml
import yaml

from infra.app import CHART_PATH, RELEASE_NAME

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
# The Prometheus Operator adds these external labels to every alert its Prometheus sends
# (PrometheusSpec prometheusExternalLabelName / replicaExternalLabelName defaults).
EXTERNAL_LABELS = {
    "prometheus": "monitoring/kube-prometheus-stack-prometheus",
    "prometheus_replica": "prometheus-kube-prometheus-stack-prometheus-0",
}
# kube-prometheus-stack's own alerts that routing must treat specially
# (templates/prometheus/rules-1.14/general.rules.yaml): both `severity: none`.
WATCHDOG = {"alertname": "Watchdog", "severity": "none"}
INFO_INHIBITOR = {"alertname": "InfoInhibitor", "severity": "none", "namespace": "tabjob"}
EVAL_TIME = "40m"  # past every rule's `for` (20 m at most) and its range windows (30 m at most)
_SCRAPE = 'job="{job}", instance="10.0.0.7:8000"'


def chart_rules(release_values: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The PrometheusRule's spec as the program's values render it."""
    with helm.Chart.load(CHART_PATH) as chart:
        files = chart.render(release_values, name=RELEASE_NAME, namespace=namespace)
    docs = [doc for path, text in files.items() if path.endswith(".yaml") for doc in safe_yaml.load_all(text)]
    [rule] = [doc for doc in docs if doc and doc["kind"] == "PrometheusRule"]
    return rule["spec"]


def alert_rules(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in spec["groups"] for rule in group["rules"] if "alert" in rule]


def _series(spec: dict[str, Any], namespace: str) -> dict[str, list[dict[str, str]]]:
    """Input series that make each alert fire, by alert name."""
    exprs = " ".join(rule["expr"] for rule in alert_rules(spec))
    api = re.search(r'deployment="([^"]+)"', exprs)
    worker = re.search(r'pod=~"([^"]+)-worker-\.\*"', exprs)
    assert api and worker, "the API and worker alerts no longer name their objects as expected"
    app, ksm = _SCRAPE.format(job="tabjob-api"), _SCRAPE.format(job="kube-state-metrics")
    ns = f'namespace="{namespace}"'
    return {
        "TabjobJobFailureRateHigh": [
            {"series": f'tabjob_jobs_total{{{ns}, {app}, lane="small", kind="fit"}}', "values": "0+10x60"},
            {
                "series": f'tabjob_job_failures_total{{{ns}, {app}, lane="small", code="dataset.no_target"}}',
                "values": "0+10x60",
            },
        ],
        "TabjobPlatformFailures": [
            {
                "series": f'tabjob_job_failures_total{{{ns}, {app}, lane="large", code="platform.store_unavailable"}}',
                "values": "0+1x60",
            }
        ],
        "TabjobJobsWaitingTooLong": [
            {"series": f'tabjob_oldest_queued_job_age_seconds{{{ns}, {app}, lane="{lane}"}}', "values": "100000x60"}
            for lane in ("small", "large", "gpu")
        ],
        "TabjobLaneHasWorkButNoWorker": [
            {"series": f'tabjob_queue_messages{{{ns}, {app}, lane="small"}}', "values": "5x60"}
        ],
        "TabjobWorkerRestarting": [
            {
                "series": f"kube_pod_container_status_restarts_total{{{ns}, {ksm}, "
                f'pod="{worker.group(1)}-worker-small-5d8f7-x2x9q", container="worker"}}',
                "values": "0+1x60",
            }
        ],
        "TabjobGpuJobsPendingNoGpuNode": [
            {"series": f'tabjob_jobs_queued{{{ns}, {app}, lane="gpu"}}', "values": "2x60"}
        ],
        "TabjobApiNotReady": [
            {
                "series": f'kube_deployment_status_replicas_available{{{ns}, {ksm}, deployment="{api.group(1)}"}}',
                "values": "0x60",
            }
        ],
        "TabjobBrokerUnreachable": [{"series": f"tabjob_broker_up{{{ns}, {app}}}", "values": "0x60"}],
    }


def _labels(text: str) -> dict[str, str]:
    return {k: v.encode().decode("unicode_escape") for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text)}


def fired_alerts(spec: dict[str, Any], namespace: str, tmp_path: Path) -> dict[str, list[dict[str, str]]]:
    """Every alert of `spec` fired by Prometheus's rule engine: alert name to the label sets of
    its firing alerts (one per lane, pod...), Prometheus's external labels added.

    Raises:
        AssertionError: when an alert has no firing series here, or none fired.
    """
    assert PROMTOOL is not None
    names = sorted({rule["alert"] for rule in alert_rules(spec)})
    series = _series(spec, namespace)
    missing = set(names) - set(series)
    assert not missing, f"no firing series for {sorted(missing)}: add them to tests/infra/alert_firing.py"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [s for name in names for s in series[name]],
                "alert_rule_test": [{"eval_time": EVAL_TIME, "alertname": name, "exp_alerts": []} for name in names],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    fired: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n\s*alertname: ", output)[1:]:
        name = block.split(",", 1)[0].strip()
        got = block.split("got:", 1)[1] if "got:" in block else ""
        fired[name] = [_labels(m) | EXTERNAL_LABELS for m in re.findall(r"Labels:\{(.*)\}", got)]
    silent = [name for name in names if not fired.get(name)]
    assert not silent, f"{silent} did not fire on their series:\n{output}"
    return fired
