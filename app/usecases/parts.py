"""Datasets in parts: K Parquet files with one schema, uploaded side by side, used as one dataset.

``POST /v1/datasets {"parts": K}`` hands out K size-bounded upload forms; the dataset is
``uploaded`` once every part is in the store and each has passed the checks a single file passes
(``app.inspection.pool``: size, footer, rows, columns, in a memory-limited child) and all
parts share one schema; its rows are the parts' sum. Only the Dask engine reads a dataset in parts
(``app.engines``): each Dask worker downloads its own parts.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from typing import Any

from app.core.domain import Dataset
from app.core.errors import Conflict, TabjobError, UserError
from app.core.storage import ObjectInfo, dataset_part_key
from app.inspection.pool import InspectRequest, inspect
from app.inspection.record_limits import check_size, data_error, upload_form
from app.tenancy.revocation import refuse_revoked_upload
from app.usecases.services import Services
from ml.errors import DataProblem
from ml.names import TARGET


def create_parts_dataset(
    svc: Services, tenant: str, name: str | None, parts: int, *, key_id: str | None = None
) -> tuple[Dataset, list[dict[str, object]], float]:
    """A new dataset of ``parts`` parts and a size-bounded upload form for each, in part order."""
    if parts > svc.settings.max_dataset_parts:
        raise UserError(
            f"A dataset may have at most {svc.settings.max_dataset_parts:,} parts; {parts:,} were asked for.",
            code="dataset.too_many_parts",
            hint="Write fewer, larger parts (each may be up to the dataset size limit).",
            status=422,
        )
    expires_at = time.time() + svc.store.presign_expiry_s
    dataset = svc.state.datasets.create(tenant, name=name, key_id=key_id, upload_expires_at=expires_at)
    svc.state.datasets.update(dataset.id, parts=parts)
    limit = svc.settings.max_dataset_bytes  # each part is bounded as one upload is
    forms = [upload_form(svc.store, dataset_part_key(tenant, dataset.id, i), limit) for i in range(parts)]
    return replace(dataset, parts=parts), forms, expires_at


def combined_etag(infos: list[ObjectInfo]) -> str:
    """One version string for a dataset in parts: changes when any part changes."""
    return hashlib.sha256("|".join(f"{i.etag}:{i.size}" for i in infos).encode()).hexdigest()[:32]


def part_infos(svc: Services, dataset: Dataset) -> list[ObjectInfo | None]:
    """What the store holds for each part now (None: not uploaded yet)."""
    assert dataset.parts
    return [svc.store.stat(dataset_part_key(dataset.tenant, dataset.id, i)) for i in range(dataset.parts)]


def parts_view(svc: Services, dataset: Dataset) -> Dataset:
    """A dataset in parts as the store holds it now: ``awaiting_upload`` until every part is there,
    then checked part by part once (again after any part changes): ``uploaded`` with the rows summed
    and the columns, or ``invalid`` with the first part's problem."""
    infos = part_infos(svc, dataset)
    if any(i is None for i in infos):
        return replace(dataset, state="awaiting_upload")
    present: list[ObjectInfo] = [i for i in infos if i is not None]
    etag = combined_etag(present)
    if dataset.etag == etag:
        return dataset
    fields: dict[str, Any] = {
        "state": "uploaded", "etag": etag, "size_bytes": sum(i.size for i in present),
        "part_etags": [i.etag for i in present], "part_sizes": [i.size for i in present], "problem": None,
    }  # fmt: skip
    try:
        fields.update(_describe_parts(svc, dataset, present))
    except TabjobError as exc:
        if exc.retryable:
            raise
        fields.update(state="invalid", problem=exc.to_dict(), rows=None, columns=None)
    svc.state.datasets.update(dataset.id, **fields)
    return replace(dataset, **fields)


def _describe_parts(svc: Services, dataset: Dataset, infos: list[ObjectInfo]) -> dict[str, Any]:
    first: dict[str, Any] | None = None
    rows = 0
    for i, info in enumerate(infos):
        key = dataset_part_key(dataset.tenant, dataset.id, i)
        try:  # in a memory-limited child, as a single file's (app/inspection/pool.py)
            described = inspect(svc.settings, InspectRequest("describe", key, info))["described"]
        except TabjobError as exc:
            exc.message = f"Part {i}: {exc.message}"
            raise
        if first is None:
            first = described
        elif described["columns"] != first["columns"]:
            raise UserError(
                f"Part {i} does not have the columns of part 0 (names, order and types must be equal).",
                code="dataset.parts_differ",
                hint="Write every part from the same table schema and upload the differing part again.",
                status=422,
            )
        rows += described["rows"]
    assert first is not None
    return {"rows": rows, "columns": first["columns"], "has_target": first["has_target"]}


def uploaded_parts(svc: Services, tenant: str, dataset_id: str) -> tuple[Dataset, ObjectInfo]:
    """The checked dataset in parts and one ObjectInfo for all of it (sizes summed, the combined
    ETag); refused when a part is missing, the parts differ, or a part is too large."""
    dataset = svc.state.datasets.get(tenant, dataset_id)
    refuse_revoked_upload(svc, dataset)
    viewed = parts_view(svc, dataset)
    if viewed.state == "awaiting_upload":
        missing = sum(i is None for i in part_infos(svc, dataset))
        raise Conflict(
            f"Dataset '{dataset_id}' has {missing} of its {dataset.parts} parts still to upload.",
            code="dataset.not_uploaded",
            hint="Upload every part with its upload form (tabjob upload --parts does), then submit the job.",
        )
    if viewed.state == "invalid" and viewed.problem:
        problem = viewed.problem
        raise UserError(problem["message"], code=problem["code"], hint=problem["hint"], status=422)
    for size in viewed.part_sizes or []:
        check_size(ObjectInfo(size=size, etag=""), svc.settings.max_dataset_bytes)
    assert viewed.etag is not None and viewed.size_bytes is not None
    return viewed, ObjectInfo(size=viewed.size_bytes, etag=viewed.etag)


def validate_parts(
    svc: Services, tenant: str, dataset_id: str, *, target: str = TARGET, features: dict[str, str] | None = None,
    task: str | None = None,
) -> tuple[Dataset, ObjectInfo, int, int]:  # fmt: skip
    """A fit's (``features`` None) or a predict's checks on every part: the footer checks a single
    file gets, then the training schema (target present, usable columns, numeric for a ``task``
    of regression) or the model's columns.
    The classes are counted on the Dask workers, over all parts (one part may hold one class).
    Returns the dataset, its combined info, rows and columns."""
    # Here, not at the top: the parts' schemas are Arrow objects, and the API and the workers
    # import pyarrow only when a dataset in parts is checked (about 20 MiB each otherwise).
    from ml.schema import check_predict_schema, check_training_schema
    from ml.tasks import check_task

    dataset, info = uploaded_parts(svc, tenant, dataset_id)
    for i, size in enumerate(dataset.part_sizes or []):
        part = ObjectInfo(size=size, etag=(dataset.part_etags or [])[i])
        found = inspect(svc.settings, InspectRequest("schema", dataset_part_key(tenant, dataset_id, i), part))
        try:
            if features is None:
                check_training_schema(found["schema"], found["rows"], target)
                check_task(task, found["schema"].field(target).type, target)
            else:
                check_predict_schema(found["schema"], found["rows"], features, target)
        except DataProblem as problem:
            error = data_error(problem)
            error.message = f"Part {i}: {error.message}"
            raise error from problem
    assert dataset.rows is not None and dataset.columns is not None
    return dataset, info, dataset.rows, len(dataset.columns)


def remove_parts(svc: Services, dataset: Dataset) -> None:
    """Delete every part's bytes (with the dataset)."""
    for i in range(dataset.parts or 0):
        svc.store.remove(dataset_part_key(dataset.tenant, dataset.id, i))
