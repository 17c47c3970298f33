"""Fixtures of the ``ml`` tests: Parquet files written into tmp_path, and a loopback HTTP object store."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

WriteParquet = Callable[..., str]


def classification_frames(rows: int = 2000, features: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seed job's shape (as app.local.demo makes it: columns col_0.., y), split 75/25 into train and test."""
    X, y = make_classification(n_samples=rows, n_features=features, n_informative=max(2, features // 5), random_state=0)
    frame = pd.DataFrame(X, columns=[f"col_{i}" for i in range(features)])
    frame["y"] = y
    return train_test_split(frame, test_size=0.25, random_state=0)


@pytest.fixture(scope="session")
def seed_frames() -> Callable[..., tuple[pd.DataFrame, pd.DataFrame]]:
    """``seed_frames(rows=2000, features=20)``: train and test frames of the seed job's shape."""
    return classification_frames


@pytest.fixture
def write_parquet(tmp_path: Path) -> WriteParquet:
    """``write_parquet(name, data, **write_table_kwargs)`` writes a DataFrame or Arrow table; returns its path."""

    def write(name: str, data: pd.DataFrame | pa.Table, **kwargs) -> str:
        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        path = tmp_path / name
        pq.write_table(table, path, **kwargs)
        return str(path)

    return write


@pytest.fixture
def read_predictions() -> Callable[[str], list]:
    """The predicted labels in a result file, checking it has exactly one column ``y``."""

    def read(path: str) -> list:
        table = pq.read_table(path)
        assert table.column_names == ["y"]
        return table.column("y").to_pylist()

    return read


@dataclass
class HttpStore:
    """A directory served over HTTP on 127.0.0.1: GET reads a file, PUT writes one (like presigned URLs)."""

    root: Path
    base_url: str
    # (method, path, headers) of every request, in arrival order.
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


def _handler_for(store: HttpStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> Path:
            store.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            return store.root / self.path.lstrip("/").split("?")[0]

        def do_GET(self) -> None:
            path = self._record()
            if not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            path = self._record()
            length = int(self.headers["Content-Length"])
            path.write_bytes(self.rfile.read(length))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def http_store(tmp_path: Path) -> Iterator[HttpStore]:
    """An HttpStore over ``tmp_path/store``, listening on loopback only, stopped after the test."""
    root = tmp_path / "store"
    root.mkdir()
    store = HttpStore(root=root, base_url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(store))
    store.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield store
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
