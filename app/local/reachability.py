"""Wait, boundedly and visibly, for a freshly deployed API to be reachable from outside.

Right after a first release on GKE the name may not resolve yet, the Google-managed certificate
is provisioning (Google documents up to 60 minutes once DNS points at the load balancer:
https://cloud.google.com/kubernetes-engine/docs/how-to/managed-certs), and the load balancer
answers 404/502 until its backends pass their health check. The smoke test waits for
`GET /healthz` to answer 200, says on every attempt what it is still waiting for, and gives up
at the deadline with that reason.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable

import httpx

HEALTH_PATH = "/healthz"


def waiting_for(error: Exception | None, status: int | None) -> str:
    """What an unanswered attempt means on a fresh GKE deploy, in words."""
    if status is not None:
        if status in (404, 502, 503):
            return f"the load balancer's backends (HTTP {status}: no healthy API pod behind it yet)"
        return f"a healthy API (HTTP {status})"
    text = str(error)
    dns_failures = ("Name or service not known", "nodename", "name resolution", "getaddrinfo")
    if isinstance(error, httpx.ConnectError) and any(marker in text for marker in dns_failures):
        return "DNS: the API's name does not resolve yet (point its A record at the apiAddress output)"
    if isinstance(error, httpx.ConnectError) and ("SSL" in text or "certificate" in text.lower()):
        return "the managed TLS certificate (provisioning takes up to 60 minutes after DNS resolves)"
    if isinstance(error, (ssl.SSLError, httpx.ConnectError)):
        return f"a connection to the load balancer ({text[:120]})"
    return f"an answer ({type(error).__name__}: {text[:120]})"


def wait_until_reachable(
    url: str,
    *,
    timeout_s: float,
    interval_s: float = 20.0,
    report: Callable[[str], None],
    client: httpx.Client | None = None,
) -> None:
    """Poll ``url``/healthz until it answers 200 or ``timeout_s`` (seconds) pass.

    Every failed attempt is reported with what it waits for. Raises TimeoutError naming the
    last reason when the deadline passes.
    """
    own = client is None
    http = client or httpx.Client(timeout=10.0, follow_redirects=False)
    deadline = time.monotonic() + timeout_s
    attempt = 0
    try:
        while True:
            attempt += 1
            error: Exception | None = None
            status: int | None = None
            try:
                response = http.get(url.rstrip("/") + HEALTH_PATH)
                if response.status_code == 200:
                    report(f"{url} answers (attempt {attempt})")
                    return
                status = response.status_code
            except httpx.HTTPError as exc:
                error = exc
            reason = waiting_for(error, status)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{url} did not answer {HEALTH_PATH} within {timeout_s:g} s; still waiting for {reason}"
                )
            report(f"attempt {attempt}: waiting for {reason}; retrying for up to {left:.0f} s more")
            time.sleep(min(interval_s, left))
    finally:
        if own:
            http.close()
