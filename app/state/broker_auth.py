"""How a process proves who it is to the broker, and how it checks who the broker is.

Two ways to log in:

- ``password``: a static password (the in-cluster Valkey on kind, the embedded stack), or none.
- ``gcp-iam``: Memorystore for Valkey's IAM authentication. The client sends a short-lived
  OAuth access token of its Google service account as the AUTH password, and the instance checks
  it against IAM (the account needs ``roles/memorystore.dbConnectionUser``).
  https://cloud.google.com/memorystore/docs/valkey/about-iam-auth
  The token is read from the metadata server, which on GKE with Workload Identity answers for the
  Google service account the pod's Kubernetes service account is bound to. A token lives about an
  hour; an authenticated connection stays authenticated, so only *new* connections need a fresh
  one: the provider caches it and fetches again shortly before it expires.

And one way to check the server: a ``rediss://`` broker with a private CA (Memorystore's
per-instance CA) is verified against that CA alone. Memorystore "provisions each instance with its
own, unique CA infrastructure"
(https://cloud.google.com/memorystore/docs/valkey/manage-in-transit-encryption), so a chain that
ends in the instance's CA already names the instance; the certificate's names are not what the
client dialled (a PSC address chosen at creation), and a name check could only stop the first
start. With the system roots (no private CA), the host name is checked as usual.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import redis

from app.core.errors import InfraError

# Where Google's client libraries find the metadata server; GCE_METADATA_HOST overrides it (the
# variable google-auth honours too), which is how tests point it at a local stand-in.
METADATA_HOST = "metadata.google.internal"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
METADATA_TIMEOUT_S = 5.0
# Fetch a new token when the cached one has less than this left: a connection opened with it
# must still finish its AUTH, and clocks differ by a little.
TOKEN_REFRESH_MARGIN_S = 300.0


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # time.monotonic() seconds


class GcpIamCredentialProvider(redis.CredentialProvider):
    """The service account's access token as the AUTH password, for every new connection.

    redis-py calls ``get_credentials`` (``get_credentials_async`` on asyncio clients) each time it
    opens a connection; both return the cached token while it has more than
    ``TOKEN_REFRESH_MARGIN_S`` left. Thread-safe: Dramatiq's worker threads open connections too.
    """

    def __init__(self, *, metadata_host: str | None = None, timeout_s: float = METADATA_TIMEOUT_S) -> None:
        self.metadata_host = metadata_host or os.environ.get("GCE_METADATA_HOST") or METADATA_HOST
        self.timeout_s = timeout_s
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def get_credentials(self) -> tuple[str]:
        return (self.token(),)

    async def get_credentials_async(self) -> tuple[str]:
        # The metadata server answers on the node in milliseconds, and a fresh token is needed
        # about once an hour: a blocking read here costs less than a thread hop on every connect.
        return (self.token(),)

    def token(self) -> str:
        with self._lock:
            now = time.monotonic()
            if self._token is None or self._token.expires_at - now < TOKEN_REFRESH_MARGIN_S:
                self._token = self._fetch(now)
            return self._token.value

    def _fetch(self, now: float) -> _Token:
        request = urllib.request.Request(
            f"http://{self.metadata_host}{TOKEN_PATH}", headers={"Metadata-Flavor": "Google"}
        )
        try:
            # The URL is fixed above (http to the node's metadata server), never user input.
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = json.loads(response.read(64 * 1024))
        except (OSError, ValueError) as exc:
            raise InfraError(
                f"Could not get an access token for the broker from the metadata server at {self.metadata_host} "
                f"({type(exc).__name__}). On GKE, the pod's service account must be bound to a Google service "
                "account (Workload Identity) that has roles/memorystore.dbConnectionUser."
            ) from exc
        token, lifetime_s = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(lifetime_s, int | float):
            raise InfraError("The metadata server's token answer has no access_token/expires_in.")
        return _Token(token, now + float(lifetime_s))


@functools.cache
def shared_gcp_iam_provider(metadata_host: str) -> GcpIamCredentialProvider:
    """One token cache per process (and metadata server): the blocking and asyncio clients, the
    broker's and the state's, all log in with the same token until it is due for renewal."""
    return GcpIamCredentialProvider(metadata_host=metadata_host)


def connection_options(
    url: str,
    *,
    auth: str,
    password: str | None,
    ca_file: str | None,
    check_hostname: bool | None,
) -> dict[str, Any]:
    """Keyword arguments for ``redis.Redis.from_url`` (blocking or asyncio): login and TLS checks.

    Parameters:
      url: the broker's URL; TLS options are given only for ``rediss://`` (a plain connection
        refuses them).
      auth: ``password`` or ``gcp-iam`` (see the module's docstring).
      password: the static password for ``password``; None or empty means no AUTH.
      ca_file: PEM bundle of a private CA that signs the broker's certificate, or None (system roots).
      check_hostname: match the certificate's names to the address dialled; None means "not with a
        private CA, yes with the system roots".
    """
    options: dict[str, Any] = {}
    if auth == "gcp-iam":
        options["credential_provider"] = shared_gcp_iam_provider(os.environ.get("GCE_METADATA_HOST") or METADATA_HOST)
    elif password:
        options["password"] = password
    if url.startswith("rediss://"):
        options["ssl_cert_reqs"] = "required"
        options["ssl_ca_certs"] = ca_file
        options["ssl_check_hostname"] = (ca_file is None) if check_hostname is None else check_hostname
    return options
