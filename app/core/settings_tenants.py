"""Settings that bound what one tenant can make the service hold, read or do.

Part of ``app.core.settings.Settings`` (inherited, with its ``TABJOB_`` prefix); kept apart so the
settings module stays small. docs/configuration.md lists them with the others; docs/security.md
says which threat each one answers.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class TenantLimitSettings(BaseSettings):
    """Inspection in a bounded child process, caps on what records hold, per-tenant quotas."""

    # Inspection of an upload (app/inspection/pool.py, app/inspection/limits.py).
    inspection_memory_bytes: int = Field(256 * 1024**2, ge=32 * 1024**2, description=(
        "Address space one inspection child may add to what it holds idle (RLIMIT_AS): a file that needs more "
        "is refused with 413 `dataset.inspection_too_large`, and the API process itself never reads the file."
    ))  # fmt: skip
    inspection_warm_children: int = Field(4, ge=0, description=(
        "Inspection children the API starts with it (at most `TABJOB_MAX_CONCURRENT_INSPECTIONS`); more start "
        "in the background when submissions need them. The test suite sets 1; `tabjob stack` sets this and "
        "`TABJOB_MAX_CONCURRENT_INSPECTIONS` to its cores (up to 4) unless you set them."
    ))  # fmt: skip
    inspection_timeout_s: float = Field(60.0, gt=0, description=(
        "Wall-clock limit of one inspection; the child is killed past it and the submission answers 503."
    ))  # fmt: skip
    max_target_chunk_bytes: int = Field(64 * 1024**2, gt=0, description=(
        "Largest uncompressed target column chunk (`total_uncompressed_size` in the footer) the API or a worker "
        "decodes; larger is refused with 413 `dataset.target_chunk_too_large`."
    ))  # fmt: skip
    target_scan_bytes: int = Field(64 * 1024**2, gt=0, description=(
        "Uncompressed bytes of the target the API decodes at submission, whatever the row count (the row "
        "groups' statistics decide past them; the worker checks every row)."
    ))  # fmt: skip
    max_label_chars: int = Field(256, ge=1, description=(
        "Longest class label (a value of the target column), in characters; longer is refused with 422 "
        "`dataset.label_too_long` (labels are kept in job records and sent to webhooks)."
    ))  # fmt: skip
    max_column_name_chars: int = Field(256, ge=1, description=(
        "Longest column name; longer is refused with 422 `dataset.column_name_too_long`."
    ))  # fmt: skip
    max_column_names_bytes: int = Field(256 * 1024, ge=1024, description=(
        "All column names of a dataset together, in UTF-8 bytes; more is refused with 413 "
        "`dataset.column_names_too_large` (they are kept in the dataset's and model's records)."
    ))  # fmt: skip
    max_category_chars: int = Field(256, ge=1, description=(
        "Longest category of a categorical feature, checked by the worker (which reads every row); longer "
        "fails the job with `dataset.category_too_long`."
    ))  # fmt: skip
    max_result_record_bytes: int = Field(1024**2, ge=64 * 1024, description=(
        "Largest job result (features, categories, classes) a worker writes into the job record; larger "
        "fails the job with `job.record_too_large`."
    ))  # fmt: skip
    dataset_upload_grace_s: int = Field(3600, ge=0, description=(
        "A dataset record never uploaded is deleted this long after its upload URL expired (the "
        "retention sweep), and no longer counts towards the tenant's datasets."
    ))  # fmt: skip

    # Per-tenant quotas (app/tenancy/quotas.py): defaults; `tabjob-admin quota set` overrides them per tenant.
    quota_datasets: int = Field(1000, ge=1, description=(
        "Datasets one tenant may hold; one more is refused with 429 `quota.datasets` (defaults; per tenant: "
        "`tabjob-admin quota set`)."
    ))  # fmt: skip
    quota_stored_bytes: int = Field(50 * 1024**3, ge=1, description=(
        "Bytes of datasets one tenant may hold in the store; a dataset that would pass it is refused with 413 "
        "`quota.stored_bytes` at upload (the form's size bound) and at submission."
    ))  # fmt: skip
    quota_jobs_per_minute: int = Field(120, ge=1, description=(
        "Jobs one tenant may submit in a minute; more are refused with 429 `quota.jobs_per_minute` and "
        "`Retry-After` (the seconds until the minute frees)."
    ))  # fmt: skip
    quota_concurrent_uploads: int = Field(20, ge=1, description=(
        "Datasets one tenant may have waiting for their upload (URL still valid) at once; more are refused "
        "with 429 `quota.concurrent_uploads` and `Retry-After`."
    ))  # fmt: skip

    webhook_sealing_key: SecretStr | None = Field(None, description=(
        "Key that seals webhook secrets in job records (unset: derived from `TABJOB_S3_SECRET_KEY`; changing "
        "either makes the secrets of jobs still running unreadable, and their notifications are not sent)."
    ))  # fmt: skip

    # Observability endpoints.
    metrics_token: SecretStr | None = Field(None, description=(
        "When set, `/metrics` and `/readyz` answer only requests with `Authorization: Bearer <token>` (the "
        "chart's ServiceMonitor sends it; the public Ingress routes neither path)."
    ))  # fmt: skip
