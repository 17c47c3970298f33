"""The name of a dataset's prepared matrix in the store: found again by content, so a second
model on the same data skips ``prepare``.

``ml.prepared.prepared_cache_key`` is the recipe; the API cannot import ``ml.prepared`` (it
loads the model families), so the recipe is repeated here and a test keeps both giving the same
key. The content digest is the store's ETag with the size, hashed: see ``content_digest``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from app.core.storage import ObjectInfo

# ml.prepared.PREPARED_FORMAT_VERSION (a test keeps them equal): a new format makes new keys.
PREPARED_FORMAT_VERSION = 1


def content_digest(info: ObjectInfo) -> str:
    """A digest of a dataset's bytes from what the store says of them, without reading them.

    The ETag of a single PUT is the MD5 of the bytes; a multipart upload's is the MD5 of the
    parts' MD5s with the part count, still a function of the bytes (and of the part size: the
    same bytes uploaded in other parts only miss the cache). With the size, two different files
    share it only through a crafted MD5 collision, and prepared files live under the tenant's
    own prefix, so only a tenant's own uploads could ever meet. The worker also refuses a
    dataset whose ETag changed after the job was checked (``dataset.changed``)."""
    material = json.dumps({"etag": info.etag.strip('"'), "size": info.size}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def cache_key(
    dataset_digest: str,
    *,
    kind: str,
    feature_schema: Mapping[str, Any] | None = None,
    target: str = "y",
    task: str = "classification",
    passthrough: Sequence[str] = (),
) -> str:
    """``ml.prepared.prepared_cache_key``, without importing ``ml``."""
    recipe: dict[str, Any] = {"format": PREPARED_FORMAT_VERSION, "dataset_sha256": dataset_digest, "kind": kind}
    if feature_schema is not None:
        recipe["columns"] = [[name, kind_] for name, kind_ in feature_schema["columns"].items()]
        recipe["categories"] = {name: list(cats) for name, cats in feature_schema.get("categories", {}).items()}
    if target != "y":
        recipe["target"] = target
    if task != "classification":
        recipe["task"] = task
    if passthrough:
        recipe["passthrough"] = list(passthrough)
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
