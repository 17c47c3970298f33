"""The object store's ranged reads: only the ranges read are fetched, pinned to the version
that was checked."""

from __future__ import annotations

import io
import secrets

import pytest

from app.core.errors import Conflict
from app.core.storage import Store


@pytest.fixture
def store(settings) -> Store:
    return Store.from_settings(settings)


def put(store: Store, key: str, data: bytes) -> None:
    store.client.put_object(store.bucket, key, io.BytesIO(data), len(data))


def test_a_ranged_reader_reads_the_checked_version_only(store):
    key = f"tests/ranged-{secrets.token_hex(4)}.bin"
    put(store, key, b"a" * 1000)
    info = store.stat(key)
    assert info is not None
    reader = store.open_ranged(key, info)
    reader.seek(990)
    assert reader.read(10) == b"a" * 10
    assert store.read_range(key, 0, 4, etag=info.etag) == b"aaaa"
    # When the object is replaced after its check
    put(store, key, b"b" * 1000)
    # Then a read pinned to the checked ETag is refused, never served the new bytes
    with pytest.raises(Conflict) as refused:
        store.read_range(key, 0, 4, etag=info.etag)
    assert refused.value.code == "dataset.changed"
    assert store.read_range(key, 0, 4) == b"bbbb"
