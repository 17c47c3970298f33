"""The server's commands of ``tabjob``: the service's processes (``api``, ``worker``, ``stack``),
the demo and smoke checks, and API key administration. The user commands live in the client
package (``tabjob.cli``); this module adds its commands there through the ``tabjob.cli``
entry-point group (``register``), so one ``tabjob`` command serves both."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from app.core.logging_setup import setup_logging
from tabjob.cli import common
from tabjob.cli.output import console

admin = typer.Typer(
    help="Manage API keys (needs the broker's settings: TABJOB_REDIS_URL, ...).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _settings(env_file: Path | None = None):
    from pydantic import ValidationError

    from app.core.settings import Settings

    try:
        return Settings(_env_file=env_file) if env_file else Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = "; ".join(f"TABJOB_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        console.print(f"[bold red]Invalid configuration[/]: {problems}")
        raise SystemExit(2) from None


def api(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the HTTP API (uvicorn)."""
    import uvicorn

    from app.api.http_protocol import bounded_protocol
    from app.api.main import create_app
    from app.core.net import is_loopback

    settings = _settings().model_copy(update={"api_host": host})
    setup_logging(settings.log_level, fmt=settings.log_format, process="api")
    if not settings.auth_enabled and not is_loopback(host):
        console.print(
            f"[bold red]Refusing to start[/]: authentication is off but {host} is not a loopback address. "
            "Set TABJOB_AUTH_ENABLED=true."
        )
        raise SystemExit(2)
    if not settings.auth_enabled:
        console.print(
            f"[yellow]Authentication is OFF[/]: the API listens on {host} (loopback) only "
            "and every caller is tenant 'local'."
        )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # httptools' C parser, with the bound on each request head it lacks on its own: 1 MB of
        # headers is refused by the server (431) before the app sees it.
        http=bounded_protocol(settings.api_max_header_bytes),
    )


def worker(
    lane: Annotated[str, typer.Option(help="small, large or gpu.")] = "small",
    max_jobs: Annotated[int | None, typer.Option(help="Exit after this many jobs (KEDA ScaledJob pods use 1).")] = None,
) -> None:
    """Run a worker for one lane (one job at a time)."""
    from app.core.domain import LANES
    from app.jobs.worker import run_worker

    if lane not in LANES:
        raise typer.BadParameter(f"lane must be one of {', '.join(LANES)}")
    settings = _settings()
    setup_logging(settings.log_level, fmt=settings.log_format, process=f"worker-{lane}")
    raise SystemExit(run_worker(settings, lane=lane, max_jobs=max_jobs))


def stack(
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: Annotated[Path, typer.Option(help="Where data, logs and credentials live.")] = Path(".tabjob"),
    auth: Annotated[
        bool, typer.Option("--auth", help="Require API keys on loopback too (always on elsewhere).")
    ] = False,
    dask_workers: Annotated[
        int, typer.Option(min=0, help="Start a Dask scheduler and this many Dask workers (engine dask); 0: none.")
    ] = 0,
    dask_worker_memory: Annotated[
        str, typer.Option(help="Each Dask worker's memory limit, as Dask reads it (192MiB, 2GiB).")
    ] = "192MiB",
    lane_idle_stop_s: Annotated[
        float,
        typer.Option(
            min=0,
            help="The large and gpu lanes' workers start when a job waits for them and stop after "
            "this many seconds without work (as KEDA scales them in a cluster); 0 keeps them running.",
        ),
    ] = 30.0,
) -> None:
    """Run Valkey, SeaweedFS, the API and workers for every lane in the foreground (Ctrl-C stops all)."""
    from app.local.supervisor import command

    # This process becomes the stack's supervisor, which loads none of the CLI's libraries: it
    # idles as long as the stack runs (app/local/supervisor.py). Same pid, same terminal.
    args = command(
        host=host, port=port, data_dir=data_dir, auth=auth,
        dask_workers=dask_workers, dask_worker_memory=dask_worker_memory, lane_idle_stop_s=lane_idle_stop_s,
    )  # fmt: skip
    sys.stdout.flush()
    os.execv(args[0], args)


def demo(
    rows: Annotated[int, typer.Option(help="Rows of the generated dataset.")] = 100_000,
    features: int = 50,
    data_dir: Annotated[Path | None, typer.Option(help="Stack data dir (a temporary one by default).")] = None,
) -> None:
    """Start the stack, run upload → fit → predict → download through the CLI, show bad files refused, stop."""
    from app.local.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="tabjob-demo-") as tmp:
        raise SystemExit(run_demo(Path(tmp), data_dir=data_dir, rows=rows, features=features))


def smoke(
    url: common.URL = None,
    api_key: common.KEY = None,
    rows: int = 4000,
    min_accuracy: float = 0.8,
    wait_s: Annotated[
        float, typer.Option(help="Seconds to wait for DNS, the TLS certificate and the load balancer (0: none).")
    ] = 0,
) -> None:
    """Check a deployed service end to end (upload, fit, predict, download, a bad file refused)."""
    from app.local.demo import run_smoke

    raise SystemExit(run_smoke(url=url, api_key=api_key, rows=rows, min_accuracy=min_accuracy, wait_s=wait_s))


ENV_FILE = Annotated[
    Path | None, typer.Option("--env-file", help="Settings file, e.g. .tabjob/tabjob.env of a local stack.")
]
ADMIN = Annotated[bool, typer.Option("--admin", help="The key also sees every tenant's jobs (dashboard, top).")]


def _keys(env_file: Path | None):
    from app.core.auth import ApiKeys
    from app.jobs.broker import redis_client

    return ApiKeys(client=redis_client(_settings(env_file), decode=True))


@admin.command("create-key")
def create_key(
    tenant: Annotated[str, typer.Option(help="Tenant the key acts as.")],
    name: str = "",
    env_file: ENV_FILE = None,
    admin: ADMIN = False,
) -> None:
    """Create an API key for a tenant; the key is shown once."""
    token, record = _keys(env_file).create(tenant, name, admin=admin)
    console.print(f"API key for tenant [bold]{tenant}[/] (id {record['id']}); store it now, it is not shown again:")
    typer.echo(token)


@admin.command("list-keys")
def list_keys(tenant: str | None = None, env_file: ENV_FILE = None) -> None:
    """List API keys (ids, tenants, names; never the secrets)."""
    from rich.table import Table

    table = Table("id", "tenant", "name", "created")
    for record in _keys(env_file).list(tenant):
        table.add_row(record["id"], record["tenant"], record.get("name", ""), record.get("created_at", "")[:10])
    console.print(table)


@admin.command("revoke-key")
def revoke_key(key_id: str, env_file: ENV_FILE = None) -> None:
    """Revoke an API key by id; requests with it fail from now on."""
    if not _keys(env_file).revoke(key_id):
        console.print(f"No key with id {key_id}.")
        raise SystemExit(1)
    console.print(f"Revoked {key_id}.")


@admin.command("tenant-policy")
def tenant_policy(
    tenant: Annotated[str, typer.Option(help="The tenant whose quotas or gpu grant to change.")],
    datasets: Annotated[int | None, typer.Option(min=1, help="Datasets it may hold.")] = None,
    stored_bytes: Annotated[int | None, typer.Option(min=1, help="Bytes of datasets it may store.")] = None,
    jobs_per_minute: Annotated[int | None, typer.Option(min=1, help="Jobs it may submit per minute.")] = None,
    concurrent_uploads: Annotated[int | None, typer.Option(min=1, help="Uploads it may have waiting.")] = None,
    gpu: Annotated[bool | None, typer.Option("--gpu/--no-gpu", help="Grant or withdraw the gpu lane.")] = None,
    reset: Annotated[bool, typer.Option(help="Forget this tenant's own values first (back to the defaults).")] = False,
    env_file: ENV_FILE = None,
) -> None:
    """Set a tenant's quotas and gpu-lane grant (unset options keep their value); prints the result."""
    from app.jobs.broker import redis_client
    from app.state import State
    from app.tenancy import quotas

    settings = _settings(env_file)
    state = State(client=redis_client(settings, decode=True), retention_s=settings.job_retention_s)
    if reset:
        quotas.set_policy(state, tenant, **dict.fromkeys((*quotas.QUOTA_NAMES, quotas.GPU)))
    given = {"datasets": datasets, "stored_bytes": stored_bytes, "jobs_per_minute": jobs_per_minute,
             "concurrent_uploads": concurrent_uploads, "gpu": gpu}  # fmt: skip
    quotas.set_policy(state, tenant, **{name: value for name, value in given.items() if value is not None})
    for name, value in vars(quotas.policy(state, settings, tenant)).items():
        typer.echo(f"{name}: {value}")


def register(app: typer.Typer) -> None:
    """Add the server's commands to the ``tabjob`` app (the ``tabjob.cli`` entry point)."""
    for command in (api, worker, stack, demo, smoke):
        app.command()(command)
    app.add_typer(admin, name="admin")


def main() -> None:
    """``python -m app.cli``: the whole ``tabjob`` command, whether or not this package's entry
    points are installed (a source tree run without ``uv sync``)."""
    from tabjob.cli.main import add_commands
    from tabjob.cli.main import main as run

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    add_commands(register)
    run()
