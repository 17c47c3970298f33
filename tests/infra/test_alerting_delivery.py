"""Notifications leave the real Alertmanager: the configuration the program passes, its secrets
read from files laid out as the Prometheus Operator mounts the program's Secret; Slack, webhook
and heartbeat pointed at a local HTTP server, e-mail at a local SMTP server. This renders the
Slack and e-mail templates (which `amtool check-config` does not) and proves the `_file` fields
read what the Secret holds (the SMTP password arrives in AUTH PLAIN, newline stripped).

Only the waits are shortened (`group_wait`), so a test takes seconds, not half a minute; the test
smarthost speaks no STARTTLS (`smtp_require_tls: false` there only).
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from alert_firing import ALERTMANAGER, WATCHDOG
from alertmanager_server import post_alerts, running_alertmanager, write_config
from infra_harness import DIGEST, GPU_DIGEST, run_program, stack_config

from infra.platform.alerting import SECRETS_DIR

pytestmark = [
    pytest.mark.slow,  # starts its own server processes
    pytest.mark.skipif(
        ALERTMANAGER is None, reason="Alertmanager is not installed (apt-get install -y prometheus-alertmanager)"
    ),
]
EMAIL = {
    "to": "oncall@example.com, backup@example.com",
    "from": "alertmanager@example.com",
    "username": "alertmanager@example.com",
}
SMTP_PASSWORD = "correct-horse-battery"
RUNBOOK = "https://github.com/example/tabjob/blob/main/docs/observability.md#tabjobplatformfailures"


class _Inbox(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def inbox() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A local HTTP server recording every POST: its base URL and the (path, JSON body) list."""
    received: list[tuple[str, dict[str, Any]]] = []
    handler = type("Inbox", (_Inbox,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def _fast(route: dict[str, Any]) -> None:
    for key in ("group_wait", "group_interval"):
        if key in route:
            route[key] = {"group_wait": "0s", "group_interval": "1s"}[key]
    for child in route.get("routes", []):
        _fast(child)


@pytest.fixture
def delivering(inbox, tmp_path) -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A real Alertmanager running the stack's configuration; its URL and the inbox."""
    base, received = inbox
    config = stack_config("staging") | {"imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST, "monitoring": True}
    config |= {
        "alerting": {
            # Nobody listens on port 1: the e-mail fails, the other channels of the receiver still send.
            "email": {"to": "oncall@example.com", "from": "am@example.com", "smarthost": "127.0.0.1:1"},
            "slack": {"channel": "#tabjob-alerts"},
            "webhook": {"url": f"{base}/webhook"},
            "heartbeat": {"url": f"{base}/heartbeat"},
        },
        # What `pulumi config set --secret` stores, with the newline a pipe adds.
        "alertSlackWebhookUrl": f"{base}/slack\n",
    }
    with _alertmanager_for(run_program("staging", config), tmp_path) as url:
        yield url, received


@contextmanager
def _alertmanager_for(run, tmp_path: Path, *, plain_smtp: bool = False) -> Iterator[str]:
    """Alertmanager running the configuration `run` passes, its secrets mounted from the Secret
    the program declares. `plain_smtp`: a test smarthost without STARTTLS (Go's net/smtp still
    sends PLAIN credentials to 127.0.0.1)."""
    values = run.one("kubernetes:helm.sh/v3:Release", "monitoring").inputs["values"]["alertmanager"]
    secret = run.one("kubernetes:core/v1:Secret", "monitoring-alertmanager-receivers")
    # The operator's mount: one file per Secret key under /etc/alertmanager/secrets/<name>/.
    mount = tmp_path / "secrets"
    mount.mkdir()
    for key, value in secret.inputs["stringData"].items():
        (mount / key).write_text(value)
    config = json.loads(json.dumps(values["config"]).replace(SECRETS_DIR, str(mount)))
    _fast(config["route"])
    if plain_smtp:
        config["global"]["smtp_require_tls"] = False
    with running_alertmanager(write_config(config, tmp_path), tmp_path) as url:
        yield url


def _wait_for(received: list, paths: set[str]) -> dict[str, list[dict[str, Any]]]:
    deadline = time.monotonic() + 20
    while {p for p, _ in received} < paths and time.monotonic() < deadline:
        time.sleep(0.2)
    assert {p for p, _ in received} >= paths, f"expected POSTs to {sorted(paths)}, got {received}"
    by_path: dict[str, list[dict[str, Any]]] = {}
    for path, body in received:
        by_path.setdefault(path, []).append(body)
    return by_path


def _alert(labels: dict[str, str]) -> dict[str, str]:
    return labels | {"namespace": "tabjob", "prometheus": "monitoring/kube-prometheus-stack-prometheus"}


def test_a_critical_alert_reaches_slack_and_the_webhook(delivering):
    url, received = delivering
    labels = _alert({"alertname": "TabjobPlatformFailures", "severity": "critical", "lane": "large"})
    post_alerts(url, [labels], annotations={"summary": "Jobs on the large lane failed.", "runbook_url": RUNBOOK})
    by_path = _wait_for(received, {"/slack", "/webhook"})
    [slack] = by_path["/slack"]
    assert slack["channel"] == "#tabjob-alerts"
    [attachment] = slack["attachments"]
    assert attachment["title"] == "[FIRING] TabjobPlatformFailures (large lane)"
    assert attachment["text"].strip() == f"Jobs on the large lane failed. <{RUNBOOK}|runbook>"
    [webhook] = by_path["/webhook"]
    assert webhook["receiver"] == "tabjob-critical" and webhook["status"] == "firing"
    assert webhook["alerts"][0]["labels"] == labels


def test_a_warning_reaches_only_the_quiet_channel(delivering):
    url, received = delivering
    post_alerts(url, [_alert({"alertname": "TabjobWorkerRestarting", "severity": "warning", "lane": "small"})])
    by_path = _wait_for(received, {"/slack"})
    time.sleep(2)  # would a webhook call follow? (group_wait is 0 s here)
    assert [p for p, _ in received] == ["/slack"]
    assert by_path["/slack"][0]["attachments"][0]["title"].startswith("[FIRING] TabjobWorkerRestarting")


def test_watchdog_pings_the_heartbeat(delivering):
    url, received = delivering
    post_alerts(url, [WATCHDOG | {"prometheus": "monitoring/kube-prometheus-stack-prometheus"}])
    by_path = _wait_for(received, {"/heartbeat"})
    [ping] = by_path["/heartbeat"]
    assert ping["receiver"] == "heartbeat" and ping["alerts"][0]["labels"]["alertname"] == "Watchdog"
    assert {p for p, _ in received} == {"/heartbeat"}


# ---- e-mail, through a local SMTP server


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321, AUTH PLAIN of RFC 4954) for Go's net/smtp client: records the
    credentials, the envelope and the message of each mail."""

    mails: list[dict[str, Any]]

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        mail: dict[str, Any] = {"rcpt": []}
        self._reply("220 localhost ESMTP test")
        while line := self.rfile.readline().decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250-localhost")
                self._reply("250 AUTH PLAIN")
            elif verb == "AUTH":
                mail["auth"] = base64.b64decode(line.split()[2]).decode()
                self._reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                mail["from"] = line.split(":", 1)[1].strip()
                self._reply("250 OK")
            elif verb == "RCPT":
                mail["rcpt"].append(line.split(":", 1)[1].strip())
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk)
                mail["message"] = b"".join(data).decode()
                self.mails.append(mail)
                mail = {"rcpt": []}
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:  # RSET, NOOP
                self._reply("250 OK")


@pytest.fixture
def mailing(tmp_path) -> Iterator[tuple[str, list[dict[str, Any]], str]]:
    """A real Alertmanager with an e-mail-only stack's configuration, its smarthost a local SMTP
    server; its URL, the mails received, and the SMTP password set in the stack."""
    mails: list[dict[str, Any]] = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), type("Smtp", (_Smtp,), {"mails": mails}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = stack_config("staging") | {"imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST, "monitoring": True}
    config |= {
        "alerting": {"email": EMAIL | {"smarthost": f"127.0.0.1:{server.server_address[1]}"}},
        "alertSmtpPassword": SMTP_PASSWORD + "\n",  # as `pulumi config set --secret` reads it from a pipe
    }
    try:
        with _alertmanager_for(run_program("staging", config), tmp_path, plain_smtp=True) as url:
            yield url, mails
    finally:
        server.shutdown()
        server.server_close()


def test_a_critical_alert_is_mailed_with_the_password_from_the_secret(mailing):
    url, mails = mailing
    labels = _alert({"alertname": "TabjobBrokerUnreachable", "severity": "critical"})
    post_alerts(url, [labels], annotations={"summary": "The API cannot read the queues from Valkey."})
    deadline = time.monotonic() + 20
    while not mails and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mails, "no mail reached the smarthost"
    [mail] = mails
    # AUTH PLAIN: authorization identity, user, password, NUL-separated; no newline in it.
    assert mail["auth"] == f"\0{EMAIL['username']}\0{SMTP_PASSWORD}"
    assert mail["from"] == f"<{EMAIL['from']}>"
    assert sorted(mail["rcpt"]) == ["<backup@example.com>", "<oncall@example.com>"]
    message = email.message_from_string(mail["message"], policy=email.policy.default)
    assert "[FIRING:1] TabjobBrokerUnreachable" in message["Subject"]
    assert "The API cannot read the queues from Valkey." in message.get_body(("html", "plain")).get_content()
