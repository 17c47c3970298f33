"""`tabjob:alerting` and its secrets: validation, Pulumi.yaml's declarations under the CLI's rules,
and what the program declares (kube-prometheus-stack's values, the receivers' Secret)."""

from __future__ import annotations

import json
import re

import pytest
import safe_yaml
from infra_harness import DIGEST, GPU_DIGEST, ROOT, configure, kind_image_environ, run_program, stack_config

from infra.config import load_config
from infra.platform.alerting import RECEIVERS_SECRET, SECRETS_DIR
from infra.platform.monitoring import MONITORING_NAMESPACE

RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
EMAIL = {
    "to": "oncall@example.com, backup@example.com",
    "from": "alertmanager@example.com",
    "smarthost": "smtp.example.com:587",
    "username": "alertmanager@example.com",
}
SMTP_PASSWORD = "correct-horse-battery"
SLACK_URL = "https://hooks.slack.com/services/T0/B0/secret-part"
FULL = {
    "monitoring": True,
    "alerting": {"email": EMAIL, "slack": {"channel": "#tabjob"}, "heartbeat": {"url": "https://hc-ping.com/0f1e"}},
    "alertSmtpPassword": SMTP_PASSWORD + "\n",
    "alertSlackWebhookUrl": SLACK_URL,
}
ALERT_KEYS = ("alerting", "alertSmtpPassword", "alertSlackWebhookUrl")


def _run(**extra: object):
    return run_program(
        "staging", stack_config("staging") | {"imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST} | extra
    )


def _load(config: dict, *, plain: tuple[str, ...] | None = None):
    """load_config() for the dev stack with `config`.

    `plain`: hand the program exactly `config`, past the CLI's checks, with these keys stored
    unencrypted (as `pulumi config set KEY VALUE` without --secret leaves them)."""
    import pulumi

    configure("dev", config if plain is None else {})
    if plain is not None:
        secrets = ("alertSmtpPassword", "alertSlackWebhookUrl")
        secret_keys = [f"tabjob:{k}" for k in secrets if k in config and k not in plain]
        values = {f"tabjob:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
        pulumi.runtime.set_all_config(values, secret_keys=secret_keys)
    return load_config(environ=kind_image_environ())


@pytest.fixture(scope="module")
def full_run():
    return _run(**FULL)


# ---- Pulumi.yaml under the CLI's rules


def test_pulumi_yaml_keeps_stacks_without_alerting_valid():
    """pulumi/pulumi pkg/workspace/config.go (formerly sdk/go/common/workspace/config.go),
    mergeConfig: a project key with neither `default` nor `value` that a stack leaves unset stops
    every preview/up/destroy ("Stack ... is missing configuration value"); then
    validateStackConfigValue demands an encrypted value for every typed `secret: true` key, the
    merged default included. So each optional key has a default, and the secrets are not
    `secret: true` (the program refuses a plain value instead: see below)."""
    schema = safe_yaml.load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key in ALERT_KEYS:
        declaration = schema[key]
        assert "default" in declaration, f"{key}: the CLI would require it on every stack"
        assert not declaration.get("secret"), f"{key}: the CLI would require an encrypted value on every stack"
    # project.go ValidateConfigValue: an `object` default must be a map.
    assert schema["alerting"] == schema["alerting"] | {"type": "object", "default": {}}
    for stack in ("dev", "staging", "production"):
        assert not set(ALERT_KEYS) & set(stack_config(stack)), "no stack needs alerting to deploy"


def test_the_merged_defaults_mean_no_alerting():
    # What the CLI hands the program for a stack that sets none of them.
    assert _load({"alerting": {}, "alertSmtpPassword": "", "alertSlackWebhookUrl": ""}).alerting is None
    assert _load({}).alerting is None


# ---- validation


@pytest.mark.parametrize(
    ("alerting", "secrets", "message"),
    [
        ({"pager": {}}, {}, "takes email, slack, webhook, heartbeat; unknown: .'pager'."),
        ({"email": EMAIL | {"cc": "x@example.com"}}, {"alertSmtpPassword": "p"}, "unknown: .'cc'."),
        ({"email": {"to": "a@example.com", "from": "b@example.com"}}, {}, "missing: .'smarthost'."),
        ({"email": EMAIL | {"to": "oncall"}}, {"alertSmtpPassword": "p"}, "'oncall' is not an e-mail address"),
        ({"email": EMAIL | {"smarthost": "smtp.example.com"}}, {"alertSmtpPassword": "p"}, "host:port"),
        ({"email": EMAIL}, {}, "username and tabjob:alertSmtpPassword .secret. go together"),
        ({"webhook": {"url": "https://h.example"}}, {"alertSmtpPassword": "p"}, "has no email receiver"),
        ({"slack": {"channel": "#a"}}, {}, "alerting.slack and tabjob:alertSlackWebhookUrl"),
        ({"webhook": {"url": "https://h.example"}}, {"alertSlackWebhookUrl": SLACK_URL}, "alertSlackWebhookUrl"),
        ({"webhook": {"url": "hooks.example.com"}}, {}, "http.s.:// URL"),
        ({"webhook": {"url": ""}}, {}, "non-empty strings"),
        ({"heartbeat": {"url": "https://hc-ping.com/x"}}, {}, "needs a receiver for the alerts"),
        ({}, {"alertSmtpPassword": "p"}, "tabjob:alerting is not"),
    ],
)
def test_invalid_alerting_raises_value_error_naming_what_is_allowed(alerting, secrets, message):
    with pytest.raises(ValueError, match=message):
        _load({"monitoring": True, "alerting": alerting, **secrets})


def test_alerting_must_be_an_object():
    # The CLI refuses it first where Pulumi.yaml types it (project.go ValidateConfigValue, `object`).
    with pytest.raises(ValueError, match="tabjob:alerting must be an object"):
        _load({"monitoring": "true", "alerting": "email"}, plain=())


def test_alerting_without_monitoring_is_refused():
    with pytest.raises(ValueError, match="set tabjob:monitoring true"):
        _load({"alerting": {"webhook": {"url": "https://h.example"}}})


@pytest.mark.parametrize("key", ["alertSmtpPassword", "alertSlackWebhookUrl"])
def test_a_secret_stored_in_plain_text_is_refused(key):
    config = {"monitoring": True, "alerting": {"email": EMAIL, "slack": {"channel": "#a"}}}
    config |= {"alertSmtpPassword": "p", "alertSlackWebhookUrl": SLACK_URL}
    with pytest.raises(ValueError, match=f"tabjob:{key}.*(secret|plain)"):
        _load(config, plain=(key,))


def test_email_to_may_be_a_list():
    config = FULL | {"alerting": {"email": EMAIL | {"to": ["oncall@example.com", "backup@example.com"]}}}
    assert _load(config | {"alertSlackWebhookUrl": ""}).alerting.email.to == [
        "oncall@example.com",
        "backup@example.com",
    ]


def test_valid_alerting_reads_every_receiver():
    cfg = _load(FULL)
    assert cfg.alerting is not None and cfg.alerting.email is not None
    assert cfg.alerting.email.to == ["oncall@example.com", "backup@example.com"]
    assert cfg.alerting.email.smarthost == "smtp.example.com:587"
    assert cfg.alerting.slack is not None and cfg.alerting.slack.channel == "#tabjob"
    assert cfg.alerting.heartbeat_url == "https://hc-ping.com/0f1e" and cfg.alerting.webhook_url is None


# ---- what the program declares


def test_stacks_without_alerting_keep_the_charts_alertmanager(deployed_stacks):
    for run in deployed_stacks.values():
        assert [s for s in run.of_type(SECRET) if s.inputs["metadata"].get("name") == RECEIVERS_SECRET] == []
    values = _run(monitoring=True).one(RELEASE, "monitoring").inputs["values"]
    assert "alertmanager" not in values, "no receivers: kube-prometheus-stack's default configuration"


def test_secrets_are_mounted_from_a_secret_never_inlined(full_run):
    values = full_run.one(RELEASE, "monitoring").inputs["values"]
    text = json.dumps(values)
    assert SMTP_PASSWORD not in text and "secret-part" not in text
    alertmanager = values["alertmanager"]
    assert alertmanager["alertmanagerSpec"]["secrets"] == [RECEIVERS_SECRET]
    secret = full_run.one(SECRET, "monitoring-alertmanager-receivers")
    assert secret.secret_inputs, "Pulumi keeps the values encrypted in its state"
    assert secret.inputs["metadata"] == {"name": RECEIVERS_SECRET, "namespace": MONITORING_NAMESPACE}
    files = {f"{SECRETS_DIR}/{name}": value for name, value in secret.inputs["stringData"].items()}
    # Alertmanager sends the file's bytes as the password: the newline `pulumi config set` kept is gone.
    global_ = alertmanager["config"]["global"]
    assert files[global_["smtp_auth_password_file"]] == SMTP_PASSWORD
    assert files[global_["slack_api_url_file"]] == SLACK_URL
    assert global_["smtp_auth_username"] == EMAIL["username"] and "smtp_auth_password" not in global_
    # Every `_file` field the configuration holds names a file the Secret provides.
    referenced = set(re.findall(r'"\w+_file": "([^"]+)"', json.dumps(alertmanager["config"])))
    assert referenced == set(files)
    # Helm creates the namespace; the Secret follows the release into it.
    assert full_run.waits_for(SECRET, "monitoring-alertmanager-receivers", RELEASE, "monitoring")


def test_receivers_without_secrets_need_no_secret():
    run = _run(monitoring=True, alerting={"webhook": {"url": "https://hooks.example.com/am"}})
    alertmanager = run.one(RELEASE, "monitoring").inputs["values"]["alertmanager"]
    assert "alertmanagerSpec" not in alertmanager
    assert [s for s in run.of_type(SECRET) if s.inputs["metadata"].get("name") == RECEIVERS_SECRET] == []
