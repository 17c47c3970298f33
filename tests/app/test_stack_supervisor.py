"""The process ``tabjob stack`` becomes (``app.local.supervisor``) idles as long as the stack
runs, so it loads no client library: it asks Valkey with hiredis alone (``app.local.valkey_probe``)
and the API with urllib. The stack's behaviour as a user meets it is tested in
``test_local_stack.py``, ``test_stack_faults.py`` and ``test_graceful_stop.py``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis

from app.core.keys import lane_workers_key
from app.local import supervisor, valkey_probe
from app.local.servers import free_port
from app.local.supervisor import command

# What the CLI process held (about 30 MiB of the stack's idle PSS, `python -m bench.stack_start`).
CLIENT_LIBRARIES = ("redis", "httpx", "pydantic", "prometheus_client", "typer", "rich", "minio", "pandas", "numpy")


def test_the_supervisor_loads_no_client_library():
    probe = "import sys, app.local.supervisor; print(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert [name for name in CLIENT_LIBRARIES if name in loaded] == []


def test_tabjob_stack_execs_the_supervisor_with_every_option(tmp_path, monkeypatch):
    args = command(
        host="127.0.0.1", port=8123, data_dir=tmp_path, auth=True, dask_workers=2, dask_worker_memory="1GiB",
        lane_idle_stop_s=7.5,
    )  # fmt: skip
    assert args[:3] == [sys.executable, "-m", "app.local.supervisor"]
    parsed = {}
    monkeypatch.setattr(supervisor, "run", lambda **options: parsed.update(options) or 0)
    assert supervisor.main(args[3:]) == 0  # what the exec'd process reads back
    assert parsed == {
        "host": "127.0.0.1", "port": 8123, "data_dir": tmp_path, "auth": True,
        "dask_workers": 2, "dask_worker_memory": "1GiB", "lane_idle_stop_s": 7.5,
    }  # fmt: skip


def test_the_probe_asks_the_real_valkey(servers):
    valkey, _ = servers
    client = redis.Redis.from_url(valkey.url, password=valkey.password, decode_responses=True)
    key = lane_workers_key("probe-test")
    client.delete(key)
    client.zadd(key, {"host-a1-11": 1.0, "host-b2-12": 2.0})
    assert valkey_probe.ping(valkey.host, valkey.port, valkey.password)
    assert valkey_probe.members(valkey.host, valkey.port, valkey.password, [key, key + "-none"]) == [
        ["host-a1-11", "host-b2-12"],
        [],
    ]
    client.delete(key)


def test_a_refusal_or_silence_is_a_probe_error(servers):
    valkey, _ = servers
    with pytest.raises(valkey_probe.ValkeyProbeError, match="refused a command"):
        valkey_probe.ping(valkey.host, valkey.port, "not-the-password")
    with pytest.raises(valkey_probe.ValkeyProbeError, match="did not answer"):
        valkey_probe.ping("127.0.0.1", free_port(), valkey.password, timeout_s=0.5)
