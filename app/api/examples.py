"""Example bodies the OpenAPI document shows for each request and response (``/docs``).

Realistic values of one story: a dataset uploaded, a fit trained on it, a predict with that model.
"""

from __future__ import annotations

from typing import Any

DATASET_ID = "ds_5f0c2a9e81b34d7fa1c0"
FIT_ID = "job_8d1e6b2c07a94f35b2e1"
PREDICT_ID = "job_c3a7f19d2e6b48c0a5d4"
URL = "https://s3.example.com/tabjob/tenants/acme/...?X-Amz-Signature=..."

ERROR: dict[str, Any] = {
    "error": {
        "code": "dataset.missing_target",
        "message": "The training data has no column named 'y' (the target). Columns found: 'a', 'b', 'label'.",
        "hint": (
            "Name your label column as the fit's target: `tabjob fit DATASET --target COLUMN`, or "
            "`client.fit(dataset_id, target=\"COLUMN\")` (the API's `target` field); the default is 'y'."
        ),
        "retryable": False,
    }
}
DATASET: dict[str, Any] = {
    "id": DATASET_ID, "name": "train.parquet", "state": "uploaded", "created_at": "2026-12-01T08:00:00Z",
    "size_bytes": 1_048_576, "rows": 3000,
    "columns": [
        {"name": "col_0", "type": "double", "kind": "numeric"}, {"name": "y", "type": "int64", "kind": "numeric"},
    ],
    "problem": None,
}  # fmt: skip
DATASET_CREATED: dict[str, Any] = {
    "id": DATASET_ID, "name": "train.parquet", "state": "awaiting_upload", "created_at": "2026-12-01T08:00:00Z",
    "size_bytes": None, "rows": None, "columns": None, "problem": None,
    "upload_url": URL, "upload_expires_at": "2026-12-01T09:00:00Z",
    "upload_form": {
        "url": "https://s3.example.com/tabjob", "max_bytes": 2_147_483_648,
        "fields": {"key": f"tenants/acme/datasets/{DATASET_ID}.parquet", "policy": "eyJleHBpcmF0aW9uIjog...",
                   "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-signature": "..."},
    },
}  # fmt: skip
FIT_REQUEST: dict[str, Any] = {
    "kind": "fit", "dataset_id": DATASET_ID, "params": {"max_iter": 200, "learning_rate": 0.05}, "lane": "auto",
}  # fmt: skip
PREDICT_REQUEST: dict[str, Any] = {"kind": "predict", "dataset_id": DATASET_ID, "model_id": FIT_ID}
VALIDATION: dict[str, Any] = {"score": 0.9433, "metric": "accuracy", "split": "early_stopping", "rows": 300}
FIT_RESULT: dict[str, Any] = {
    "target": "y", "classes": [0, 1], "rows": 3000, "iterations": 87, "family": "hgb",
    "params": {"max_iter": 200, "learning_rate": 0.05, "random_state": 0},
    "validation": VALIDATION, "duration_s": 2.41, "model_bytes": 215_330,
}  # fmt: skip
JOB: dict[str, Any] = {
    "id": FIT_ID, "kind": "fit", "status": "finished", "lane": "small", "phase": "finished", "progress": 1.0,
    "attempts": 1, "dataset_id": DATASET_ID, "model_id": None, "params": {"max_iter": 200},
    "created_at": "2026-12-01T08:01:00Z", "started_at": "2026-12-01T08:01:01Z", "ended_at": "2026-12-01T08:01:03Z",
    "cancel_requested": False, "error": None, "result": FIT_RESULT, "queue": None, "deduplicated": False,
    "webhook": None,
}  # fmt: skip
EVENTS: dict[str, Any] = {
    "items": [
        {"seq": 0, "at": "2026-12-01T08:01:00Z", "type": "queued", "message": "Queued on the small lane."},
        {"seq": 1, "at": "2026-12-01T08:01:01Z", "type": "started", "message": "Started on worker w-1."},
        {"seq": 2, "at": "2026-12-01T08:01:01Z", "type": "progress", "phase": "training",
         "message": "Training on 3,000 rows x 20 features."},
    ],
    "next_after": 3,
}  # fmt: skip
DOWNLOAD: dict[str, Any] = {"url": URL, "expires_at": "2026-12-01T09:05:00Z"}
FEATURES: list[dict[str, Any]] = [
    {"name": "col_0", "kind": "numeric", "categories": None},
    {"name": "country", "kind": "categorical", "categories": ["fr", "de"]},
]
MODEL: dict[str, Any] = {
    "id": FIT_ID, "dataset_id": DATASET_ID, "created_at": "2026-12-01T08:01:00Z",
    "trained_at": "2026-12-01T08:01:03Z", "target": "y", "classes": [0, 1], "features": FEATURES, "rows": 3000,
    "iterations": 87, "family": "hgb", "validation": VALIDATION, "duration_s": 2.41, "size_bytes": 215_330,
    "params": {"max_iter": 200},
}  # fmt: skip
MODEL_EXPORT: dict[str, Any] = {
    "model_id": FIT_ID, "url": URL, "expires_at": "2026-12-01T09:05:00Z", "filename": f"{FIT_ID}.pkl",
    "format": "cloudpickle of tabjob's ml.bundle.ModelBundle ...",
    "schema": {"target": "y", "classes": [0, 1], "features": FEATURES},
}  # fmt: skip
LEGACY_STATUS: dict[str, Any] = {
    "id": FIT_ID, "status": "finished", "enqueued_at": 1796112060.0, "started_at": 1796112061.0,
    "ended_at": 1796112063.0, "kind": "fit", "lane": "small", "phase": "finished", "progress": 1.0,
    "attempts": 1, "error": None,
}  # fmt: skip

OVERVIEW: dict[str, Any] = {
    "generated_at": 1796112070.0,
    "viewer": {"tenant": "acme", "admin": False},
    "lanes": [{"lane": "small", "queued": 1, "running": 1, "messages": 2, "pending_messages": 1,
               "delayed_messages": 0, "oldest_queued_age_s": 4.2, "workers": 1, "busy_workers": 1}],
    "running": [{"id": FIT_ID, "kind": "fit", "lane": "small", "status": "started", "step": "fit",
                 "phase": "training", "progress": None, "attempts": 1, "for_s": 12.5, "worker": "w-1",
                 "cancel_requested": False, "queue": None}],
    "waiting": [],
    "failures": {"dataset.changed": 1},
    "failure_window_s": 3600,
    "workers": [{"id": "w-1", "lane": "small", "busy": True, "job_id": FIT_ID, "heartbeat_age_s": 1.1}],
}  # fmt: skip


def listing(item: dict[str, Any]) -> dict[str, Any]:
    """A page of one item, newest first."""
    return {"items": [item], "next_cursor": None}


def examples(*bodies: dict[str, Any]) -> dict[str, Any]:
    """``json_schema_extra`` of a model: these bodies as its examples."""
    return {"examples": list(bodies)}
