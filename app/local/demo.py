"""The seed workflow, shown end to end: ``tabjob demo`` (local stack, through the CLI) and
``tabjob smoke`` (a deployed service, through the Python client)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import tabjob
from tabjob import ApiError

console = Console()


def make_seed_data(workdir: Path, *, rows: int, features: int, seed: int = 0) -> dict[str, Path]:
    """The seed's shape: ``make_classification`` rows, a 75/25 split, and the two bad files
    (training set without ``y``, test set without ``col_0``). Returns the file paths."""
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(
        n_samples=rows, n_features=features, n_informative=max(2, features // 5), random_state=seed
    )
    frame = pd.DataFrame(X, columns=[f"col_{i}" for i in range(features)])
    frame["y"] = y
    train, test = train_test_split(frame, test_size=0.25, random_state=seed)
    paths = {
        name: workdir / f"{name}.parquet"
        for name in ("train", "test", "truth", "train_without_y", "test_without_col_0")
    }
    train.to_parquet(paths["train"], index=False)
    test.drop(columns="y").to_parquet(paths["test"], index=False)
    test[["y"]].to_parquet(paths["truth"], index=False)
    train.drop(columns="y").to_parquet(paths["train_without_y"], index=False)
    test.drop(columns=["y", "col_0"]).to_parquet(paths["test_without_col_0"], index=False)
    return paths


def accuracy(predictions: Path, truth: Path) -> float:
    import pandas as pd

    return float((pd.read_parquet(predictions)["y"].to_numpy() == pd.read_parquet(truth)["y"].to_numpy()).mean())


def _cli(*args: str, url: str) -> tuple[int, Any, float]:
    """Run ``tabjob ARGS --json`` as a user would; return exit code, parsed output and seconds."""
    console.print(f"[dim]$ tabjob {' '.join(args)}[/]")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--json", "--url", url], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    try:
        output = json.loads(done.stdout) if done.stdout.strip() else None
    except json.JSONDecodeError:
        output = done.stdout
    if done.returncode not in (0, 2):
        console.print(done.stderr[-2000:])
    return done.returncode, output, seconds


def run_demo(workdir: Path, *, data_dir: Path | None, rows: int, features: int) -> int:
    from app.local.servers import free_port
    from app.local.stack import EmbeddedStack

    console.rule("tabjob demo")
    console.print(f"Making a seed-shaped dataset: {rows:,} rows x {features} features, 75/25 split ...")
    paths = make_seed_data(workdir, rows=rows, features=features)
    stack = EmbeddedStack(data_dir=(data_dir or workdir / "stack").resolve(), port=free_port())
    console.print("Starting the embedded stack (Valkey, SeaweedFS, API, workers for every lane) ...")
    t0 = time.perf_counter()
    try:
        stack.start()
        console.print(f"Stack ready at {stack.url} in {time.perf_counter() - t0:.1f} s")
        return _workflow(paths, stack.url)
    finally:
        console.print("Stopping the stack ...")
        stack.stop()


def _workflow(paths: dict[str, Path], url: str) -> int:
    timings: dict[str, float] = {}
    code, train, timings["upload train"] = _cli("upload", str(paths["train"]), url=url)
    _, test, timings["upload test"] = _cli("upload", str(paths["test"]), url=url)
    if code or not isinstance(train, dict) or not isinstance(test, dict):
        console.print(f"[red]upload failed[/]: {train}")
        return 1
    code, fit, timings["fit (submit + wait)"] = _cli("fit", train["id"], "--wait", url=url)
    if code or fit["status"] != "finished":
        console.print(f"[red]fit failed[/]: {fit}")
        return 1
    code, pred, timings["predict (submit + wait)"] = _cli("predict", test["id"], fit["id"], "--wait", url=url)
    if code or pred["status"] != "finished":
        console.print(f"[red]predict failed[/]: {pred}")
        return 1
    out = paths["test"].with_name("predictions.parquet")
    code, _, timings["download"] = _cli("download", pred["id"], str(out), url=url)
    if code:
        return 1
    score = accuracy(out, paths["truth"])

    table = Table("step", "seconds (wall, incl. CLI start-up)")
    for step, seconds in timings.items():
        table.add_row(step, f"{seconds:.2f}")
    worker_s = sum((fit.get("result") or {}).get("timings", {}).values())
    table.add_row("fit inside the worker", f"{worker_s:.2f}")
    console.print(table)
    console.print(f"[bold]Accuracy on the held-out 25 %: {score:.4f}[/]")

    console.rule("bad files are refused at submission")
    refused = 0
    _, bad_train, _ = _cli("upload", str(paths["train_without_y"]), url=url)
    code, answer, _ = _cli("fit", bad_train["id"], url=url)
    refused += _show_refusal("training set without y", code, answer)
    _, bad_test, _ = _cli("upload", str(paths["test_without_col_0"]), url=url)
    code, answer, _ = _cli("predict", bad_test["id"], fit["id"], url=url)
    refused += _show_refusal("test set without col_0", code, answer)
    ok = score > 0.8 and refused == 2
    console.print("[bold green]Demo passed.[/]" if ok else "[bold red]Demo failed.[/]")
    return 0 if ok else 1


def _show_refusal(what: str, code: int, answer: Any) -> int:
    error = answer.get("error") if isinstance(answer, dict) else None
    if code == 2 and error:
        console.print(f"{what}: refused with [red]{error['code']}[/]: {error['message']}\n  hint: {error['hint']}")
        return 1
    console.print(f"[red]{what} was not refused[/]: {answer}")
    return 0


def run_smoke(*, url: str | None, api_key: str | None, rows: int, min_accuracy: float, wait_s: float = 0) -> int:
    """Upload, fit, predict, download and a refused bad file against a running service.

    ``wait_s``: first wait up to this many seconds for the API to answer (a fresh deploy's DNS,
    certificate and load balancer; app/local/reachability.py). The uploads use the POST form,
    as every user's do: a store that refuses it fails the smoke test, naming the store's answer.
    """
    import tempfile

    from app.local.reachability import wait_until_reachable

    with tempfile.TemporaryDirectory(prefix="tabjob-smoke-") as tmp, tabjob.Client(url, api_key) as client:
        if wait_s > 0:
            try:
                wait_until_reachable(client.url, timeout_s=wait_s, report=console.print)
            except TimeoutError as exc:
                console.print(f"[red]smoke test failed[/]: {exc}")
                return 1
        paths = make_seed_data(Path(tmp), rows=rows, features=10)
        try:
            train = client.upload(paths["train"])
            test = client.upload(paths["test"])
            fit = client.wait(client.fit(train.id).id, timeout_s=900, raise_on_failure=False)
            if fit.status != "finished":
                console.print(f"[red]fit {fit.status}[/]: {fit.error}")
                return 1
            pred = client.wait(client.predict(test.id, fit.id).id, timeout_s=900, raise_on_failure=False)
            if pred.status != "finished":
                console.print(f"[red]predict {pred.status}[/]: {pred.error}")
                return 1
            out = client.download(pred.id, Path(tmp) / "predictions.parquet")
            score = accuracy(out, paths["truth"])
            bad = client.upload(paths["train_without_y"])
            try:
                client.fit(bad.id)
                console.print("[red]a training set without y was accepted[/]")
                return 1
            except ApiError as exc:
                if exc.code != "dataset.missing_target":
                    raise
        except ApiError as exc:
            if exc.code == "upload.failed":
                console.print(f"[red]smoke test failed: the object store refused the POST-form upload[/]: {exc}")
                return 1
            console.print(f"[red]smoke test failed[/]: {exc}")
            return 1
    console.print(f"smoke test against {client.url}: accuracy {score:.3f} (minimum {min_accuracy})")
    return 0 if score >= min_accuracy else 1
